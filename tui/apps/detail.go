package apps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Detail is one application: source, sync, health, operation, conditions and resources.
type Detail struct {
	o    Options
	ctx  context.Context
	app  argocd.App
	res  table.Model
	sync *syncFlow
	w, h int
}

type appMsg struct {
	owner *Detail
	app   argocd.App
}

func newDetail(o Options, ctx context.Context, a argocd.App) *Detail {
	t := table.New(
		table.Column{Title: "KIND", Width: 14},
		table.Column{Title: "NAME", Grow: 2},
		table.Column{Title: "SYNC", Width: 10},
		table.Column{Title: "HEALTH", Width: 11},
		table.Column{Title: "MESSAGE"},
	)
	t.Empty = "no resources"
	t.SetStyler(statusStyler(2, 3))
	d := &Detail{o: o, ctx: ctx, app: a, res: t}
	d.fill()
	return d
}

// Init fetches the application with its resources.
func (d *Detail) Init() tea.Cmd {
	ctx, apps, name := d.ctx, d.o.Apps, d.app.Name
	return view.Do(func() (tea.Msg, error) {
		a, err := apps.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		return appMsg{owner: d, app: a}, nil
	})
}

// Update follows the list's watch for this application and handles keys.
func (d *Detail) Update(msg tea.Msg) (view.View, tea.Cmd) {
	if d.sync != nil {
		if done, cmd, handled := d.sync.update(msg); handled {
			if done {
				d.sync = nil
			}
			return d, cmd
		}
	}
	switch msg := msg.(type) {
	case appMsg:
		if msg.owner == d {
			d.app = msg.app
			d.fill()
		}
	case EventMsg:
		if msg.Event.App.Name == d.app.Name && msg.Event.Type != argocd.EventDeleted {
			d.app = msg.Event.App
			d.fill()
			if d.sync != nil {
				d.sync.observe(d.app)
			}
		}
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, KeySync):
			if d.o.Readonly {
				return d, view.Error(errors.New("read-only: syncing is disabled (--readonly); nothing was changed"))
			}
			d.sync = newSyncFlow(d.o, d.ctx, d.app)
			return d, nil
		case key.Matches(msg, KeyHistory):
			return d, view.Push(newHistory(d.o, d.ctx, d.app.Name))
		case key.Matches(msg, KeyYAML), key.Matches(msg, KeyDiff):
			i := d.res.Cursor()
			if i < 0 || i >= len(d.app.Resources) {
				return d, nil
			}
			return d, view.Push(newResource(d.o, d.ctx, d.app.Name, d.app.Resources[i], key.Matches(msg, KeyDiff)))
		}
		var cmd tea.Cmd
		d.res, cmd = d.res.Update(msg)
		return d, cmd
	case tea.MouseMsg:
		var cmd tea.Cmd
		d.res, cmd = d.res.Update(msg)
		return d, cmd
	}
	return d, nil
}

func (d *Detail) fill() {
	var rows [][]string
	var keys []string
	for _, r := range d.app.Resources {
		msg := r.HealthMessage
		if r.RequiresPruning {
			msg = strings.TrimSpace("requires pruning " + msg)
		}
		rows = append(rows, []string{r.Kind, r.Name, termsafe.Dash(r.Sync), termsafe.Dash(r.Health), msg})
		keys = append(keys, resourceKey(r.Group, r.Kind, r.Namespace, r.Name))
	}
	d.res.SetAll(rows, keys)
	d.layout()
}

// header returns the fixed lines above the resources table.
func (d *Detail) header() []string {
	a := d.app
	w := d.w
	now := d.o.Now()
	field := func(k, v string) string {
		return theme.HeaderKey.Render(fmt.Sprintf("%-12s", k)) + termsafe.Truncate(v, max(w-13, 10))
	}
	state := func(k, word, v string) string {
		return theme.HeaderKey.Render(fmt.Sprintf("%-12s", k)) + verdictStyle(word).Render(termsafe.Truncate(v, max(w-13, 10)))
	}
	src := a.RepoURL
	if a.Path != "" {
		src += "  " + a.Path
	}
	if a.Chart != "" {
		src += "  chart " + a.Chart
	}
	if a.TargetRevision != "" {
		src += " @ " + a.TargetRevision
	}
	sync := termsafe.Dash(a.Sync)
	if a.Revision != "" {
		sync += " at " + argocd.ShortRevision(a.Revision)
	}
	auto := "off"
	if a.AutoSync {
		auto = "on"
	}
	health := termsafe.Dash(a.Health)
	if a.HealthMessage != "" {
		health += ": " + a.HealthMessage
	}
	last := "-"
	if a.LastSync != nil {
		last = a.LastSync.UTC().Format("2006-01-02 15:04:05Z") + " (" + table.Ago(now, a.LastSync) + " ago)"
	}
	lines := []string{
		field("Project", a.Project+"   auto-sync "+auto),
		field("Source", src),
		field("Destination", a.DestServer+" / "+a.DestNamespace),
		state("Sync", a.Sync, sync),
		state("Health", a.Health, health),
		field("Last sync", last),
		field("Operation", operationLine(a.Operation)),
	}
	if len(a.Conditions) > 0 {
		lines = append(lines, theme.Column.Render(fmt.Sprintf("CONDITIONS (%d)", len(a.Conditions))))
		for i, c := range a.Conditions {
			if i == 3 {
				lines = append(lines, theme.Dim.Render(fmt.Sprintf("  … %d more", len(a.Conditions)-3)))
				break
			}
			line := fmt.Sprintf("  %-22s %-4s %s", termsafe.Truncate(c.Type, 22), table.Ago(now, c.Since), termsafe.String(c.Message))
			lines = append(lines, theme.Warning.Render(termsafe.Truncate(line, max(w, 10))))
		}
	}
	return lines
}

func (d *Detail) layout() {
	d.res.SetSize(d.w, max(d.h-len(d.header())-1, 3))
}

// View draws the header lines and the resources table.
func (d *Detail) View() string {
	lines := d.header()
	lines = append(lines, theme.Column.Render(fmt.Sprintf("RESOURCES (%d)", len(d.app.Resources))))
	bg := strings.Join(lines, "\n") + "\n" + d.res.View()
	if d.sync != nil {
		return modal.Overlay(bg, d.sync.modal.View(d.w, d.h), d.w, d.h)
	}
	return bg
}

// Title names the application.
func (d *Detail) Title() string { return termsafe.Truncate(d.app.Name, 40) }

// SetSize sets the body size.
func (d *Detail) SetSize(w, h int) {
	d.w, d.h = w, h
	d.layout()
}

// Keys lists the bindings.
func (d *Detail) Keys() []key.Binding {
	if d.sync != nil {
		return d.sync.modal.Keys()
	}
	ks := []key.Binding{KeyYAML, KeyDiff, KeyHistory}
	if !d.o.Readonly {
		ks = append(ks, KeySync)
	}
	return ks
}

// Capturing is true while the sync dialog is open.
func (d *Detail) Capturing() bool { return d.sync != nil }

// operationLine describes the current or last operation.
func operationLine(op *argocd.Operation) string {
	if op == nil {
		return "-"
	}
	parts := []string{"sync " + op.Phase}
	if op.Revision != "" {
		parts = append(parts, "to "+argocd.ShortRevision(op.Revision))
	}
	if op.InitiatedBy != "" {
		parts = append(parts, "by "+op.InitiatedBy)
	}
	s := strings.Join(parts, " ")
	if op.Message != "" {
		s += ": " + op.Message
	}
	return s
}
