package apps

import (
	"context"
	"fmt"
	"strconv"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/view"
)

// History is an application's sync history, newest first: which revision was deployed when,
// and by whom.
type History struct {
	o    Options
	ctx  context.Context
	name string
	tbl  table.Model
}

type historyMsg struct {
	owner *History
	app   argocd.App
}

func newHistory(o Options, ctx context.Context, name string) *History {
	t := table.New(
		table.Column{Title: "ID", Width: 4},
		table.Column{Title: "DEPLOYED", Width: 20},
		table.Column{Title: "AGO", Width: 5},
		table.Column{Title: "REVISION", Width: 8},
		table.Column{Title: "BY", Width: 14},
		table.Column{Title: "SOURCE"},
	)
	t.Empty = "loading history…"
	return &History{o: o, ctx: ctx, name: name, tbl: t}
}

// Init reads the application's history.
func (h *History) Init() tea.Cmd {
	ctx, apps, name := h.ctx, h.o.Apps, h.name
	return view.Do(func() (tea.Msg, error) {
		a, err := apps.Get(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", name, err)
		}
		return historyMsg{owner: h, app: a}, nil
	})
}

// Update fills the table and scrolls it.
func (h *History) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case historyMsg:
		if msg.owner != h {
			return h, nil
		}
		now := h.o.Now()
		var rows [][]string
		var keys []string
		for i := len(msg.app.History) - 1; i >= 0; i-- {
			d := msg.app.History[i]
			at := d.DeployedAt
			rows = append(rows, []string{strconv.FormatInt(d.ID, 10), at.UTC().Format("2006-01-02 15:04:05Z"), table.Ago(now, &at),
				dash(argocd.ShortRevision(d.Revision)), dash(d.InitiatedBy), d.Source})
			keys = append(keys, strconv.FormatInt(d.ID, 10))
		}
		h.tbl.Empty = "no sync recorded yet"
		h.tbl.SetAll(rows, keys)
	case tea.KeyMsg, tea.MouseMsg:
		var cmd tea.Cmd
		h.tbl, cmd = h.tbl.Update(msg)
		return h, cmd
	}
	return h, nil
}

// View draws the table.
func (h *History) View() string { return h.tbl.View() }

// Title names the view.
func (h *History) Title() string { return "history " + termsafe.Truncate(h.name, 40) }

// SetSize sets the body size.
func (h *History) SetSize(w, ht int) { h.tbl.SetSize(w, ht) }

// Keys lists the bindings.
func (h *History) Keys() []key.Binding { return nil }

// Capturing is never true: the history has no inputs.
func (h *History) Capturing() bool { return false }
