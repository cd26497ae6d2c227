package apps

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/view"
)

// History is an application's sync history, newest first: which revision was deployed when,
// by whom, and its commit (as `opsctl apps history` shows it); `R` rolls the application back
// to the selected entry, as `opsctl apps rollback` does — refused while auto-sync is on.
type History struct {
	o       Options
	ctx     context.Context
	name    string
	app     argocd.App
	entries []argocd.Deployment // newest first, as drawn
	tbl     table.Model
	flow    *syncFlow
	w, h    int
}

type historyMsg struct {
	owner   *History
	app     argocd.App
	entries []argocd.Deployment
}

func newHistory(o Options, ctx context.Context, name string) *History {
	t := table.New(
		table.Column{Title: "ID", Width: 4},
		table.Column{Title: "DEPLOYED", Width: 20},
		table.Column{Title: "AGO", Width: 5},
		table.Column{Title: "REVISION", Width: 8},
		table.Column{Title: "BY", Width: 14},
		table.Column{Title: "COMMIT", Grow: 2},
		table.Column{Title: "SOURCE"},
	)
	t.Empty = "loading history…"
	return &History{o: o, ctx: ctx, name: name, tbl: t}
}

// Init reads the application's history and the commit of each entry; commits that cannot be
// read (core mode, a revision gone from git) leave "-" and a note.
func (h *History) Init() tea.Cmd {
	ctx, apps, name := h.ctx, h.o.Apps, h.name
	return func() tea.Msg {
		a, err := apps.Get(ctx, name)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return view.StatusMsg{Text: fmt.Sprintf("history of %s: %s", name, err), Err: true}
		}
		entries, cerr := argocd.WithCommits(ctx, apps, name, a.History)
		msg := historyMsg{owner: h, app: a, entries: entries}
		if cerr == nil || ctx.Err() != nil {
			return msg
		}
		return tea.BatchMsg{func() tea.Msg { return msg },
			view.Status("commit messages: " + cerr.Error())}
	}
}

// Update fills the table, scrolls it and runs the rollback dialog.
func (h *History) Update(msg tea.Msg) (view.View, tea.Cmd) {
	if h.flow != nil {
		if done, cmd, handled := h.flow.update(msg); handled {
			if done {
				h.flow = nil
			}
			return h, cmd
		}
	}
	switch msg := msg.(type) {
	case historyMsg:
		if msg.owner != h {
			return h, nil
		}
		h.app = msg.app
		h.fill(msg.entries)
	case EventMsg:
		if msg.Event.App.Name == h.name && msg.Event.Type != argocd.EventDeleted {
			h.app = msg.Event.App
			if h.flow != nil {
				h.flow.observe(h.app)
			}
		}
	case tea.KeyMsg:
		if key.Matches(msg, KeyRollback) {
			return h, h.rollback()
		}
		var cmd tea.Cmd
		h.tbl, cmd = h.tbl.Update(msg)
		return h, cmd
	case tea.MouseMsg:
		var cmd tea.Cmd
		h.tbl, cmd = h.tbl.Update(msg)
		return h, cmd
	}
	return h, nil
}

func (h *History) fill(history []argocd.Deployment) {
	now := h.o.Now()
	h.entries = h.entries[:0]
	var rows [][]string
	var keys []string
	for i := len(history) - 1; i >= 0; i-- {
		d := history[i]
		at := d.DeployedAt
		commit := "-"
		if d.Commit != nil {
			commit = d.Commit.Subject()
		}
		rows = append(rows, []string{strconv.FormatInt(d.ID, 10), at.UTC().Format("2006-01-02 15:04:05Z"), table.Ago(now, &at),
			termsafe.Dash(argocd.ShortRevision(d.Revision)), termsafe.Dash(d.InitiatedBy), commit, d.Source})
		keys = append(keys, strconv.FormatInt(d.ID, 10))
		h.entries = append(h.entries, d)
	}
	h.tbl.Empty = "no sync recorded yet"
	h.tbl.SetAll(rows, keys)
}

// rollback opens the dialog for the selected entry, or says why it cannot.
func (h *History) rollback() tea.Cmd {
	if h.o.Readonly {
		return view.Error(errors.New("read-only: rollback is disabled (--readonly); nothing was changed"))
	}
	i := h.tbl.Cursor()
	if i < 0 || i >= len(h.entries) {
		return nil
	}
	e := h.entries[i]
	if err := argocd.CheckRollback(h.app, e.ID); err != nil {
		return view.Error(err)
	}
	h.flow = newRollbackFlow(h.o, h.ctx, h.app, e)
	return nil
}

// View draws the table, with the rollback dialog over it when one is open.
func (h *History) View() string {
	bg := h.tbl.View()
	if h.flow != nil {
		return modal.Overlay(bg, h.flow.modal.View(h.w, h.h), h.w, h.h)
	}
	return bg
}

// Title names the view.
func (h *History) Title() string { return "history " + termsafe.Truncate(h.name, 40) }

// SetSize sets the body size.
func (h *History) SetSize(w, ht int) {
	h.w, h.h = w, ht
	h.tbl.SetSize(w, ht)
}

// Keys lists the bindings.
func (h *History) Keys() []key.Binding {
	if h.flow != nil {
		return h.flow.modal.Keys()
	}
	if h.o.Readonly {
		return nil
	}
	return []key.Binding{KeyRollback}
}

// Capturing is true while the rollback dialog is open.
func (h *History) Capturing() bool { return h.flow != nil }
