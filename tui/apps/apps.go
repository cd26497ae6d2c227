// Package apps is the TUI's Argo CD view: the platform's applications with sync and health in
// colour, kept live by a watch, ages ticking; enter opens an application's resources and
// conditions (`y` a resource's YAML, `d` its diff from git), `h` its sync history with each
// entry's commit (`R` rolls back to an entry, refused while auto-sync is on), `S` asks Argo CD
// to sync it (behind a confirmation) and follows the operation until the application is Synced
// and Healthy or the sync fails.
//
// It talks to Argo CD only through pkg/argocd, as `opsctl apps` does.
package apps

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Options configure the view.
type Options struct {
	// Ctx bounds every request and the watch; the view's own work also ends at Close.
	Ctx context.Context
	// Apps is the Argo CD client (argocd-server or core mode).
	Apps argocd.Apps
	// Readonly hides and refuses `S` (a sync, even a dry run, records an operation).
	Readonly bool
	// Now is the clock for ages (default time.Now).
	Now func() time.Time
	// Retry is how long to wait before re-opening a watch that failed (default 5s).
	Retry time.Duration
	// WaitTimeout bounds how long a sync is followed (default argocd.DefaultWaitTimeout).
	WaitTimeout time.Duration
	// Tick is how often the ages are redrawn from Now (default 1s), so "SYNCED 2m" keeps
	// counting between watch events.
	Tick time.Duration
}

func (o *Options) defaults() {
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retry <= 0 {
		o.Retry = 5 * time.Second
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = argocd.DefaultWaitTimeout
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
}

// Keys of the applications views.
var (
	KeyOpen     = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "resources"))
	KeySync     = key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "sync"))
	KeyHistory  = key.NewBinding(key.WithKeys("h"), key.WithHelp("h", "history"))
	KeyRollback = key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "roll back to this entry"))
)

// EventMsg carries one change seen by the list's watch. Every applications view on the stack
// receives it, so a detail view stays as live as the list.
type EventMsg struct {
	Event argocd.Event
	owner *List
}

// watchErrMsg reports a watch that ended with an error; it is retried.
type watchErrMsg struct {
	owner *List
	err   error
}

type listMsg struct {
	owner *List
	apps  []argocd.App
}

type retryMsg struct{ owner *List }

// tickMsg redraws the ages.
type tickMsg struct{ owner *List }

// List is the applications table.
type List struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	tbl    table.Model
	apps   map[string]argocd.App
	order  []string
	shown  []string
	filter string
	events chan tea.Msg
	loaded bool
	sync   *syncFlow
	w, h   int
}

// New returns the applications list.
func New(o Options) *List {
	o.defaults()
	ctx, cancel := context.WithCancel(o.Ctx)
	t := table.New(
		table.Column{Title: "NAME"},
		table.Column{Title: "SYNC", Width: 9},
		table.Column{Title: "HEALTH", Width: 11},
		table.Column{Title: "REV", Width: 7},
		table.Column{Title: "OPERATION", Width: 14},
		table.Column{Title: "SYNCED", Width: 6},
	)
	t.Empty = "loading applications…"
	t.SetStyler(statusStyler(1, 2))
	return &List{o: o, ctx: ctx, cancel: cancel, tbl: t, apps: map[string]argocd.App{}, events: make(chan tea.Msg, 64)}
}

// statusStyler colours the sync and health columns.
func statusStyler(cols ...int) table.Styler {
	return func(col int, v string) (lipgloss.Style, bool) {
		for _, c := range cols {
			if c == col {
				return verdictStyle(v), true
			}
		}
		return lipgloss.Style{}, false
	}
}

func verdictStyle(v string) lipgloss.Style {
	switch v {
	case argocd.SyncSynced, argocd.HealthHealthy, argocd.PhaseSucceeded:
		return theme.OK
	case argocd.SyncOutOfSync, argocd.HealthDegraded, argocd.HealthMissing, argocd.PhaseFailed, argocd.PhaseError:
		return theme.Error
	case argocd.HealthProgressing, argocd.HealthSuspended, argocd.PhaseRunning, argocd.PhaseRequested:
		return theme.Warning
	}
	return theme.Dim
}

// Init lists the applications and starts the watch.
func (l *List) Init() tea.Cmd {
	return tea.Batch(l.load(), l.startWatch(), view.After(l.ctx, l.o.Tick, tickMsg{owner: l}))
}

func (l *List) load() tea.Cmd {
	ctx, apps := l.ctx, l.o.Apps
	return view.Do(func() (tea.Msg, error) {
		as, err := apps.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list Argo CD applications: %w", err)
		}
		return listMsg{owner: l, apps: as}, nil
	})
}

// startWatch runs the watch in its own goroutine; events reach Update through Listen. The
// goroutine ends when the view is closed.
func (l *List) startWatch() tea.Cmd {
	ctx, apps, ch := l.ctx, l.o.Apps, l.events
	go func() {
		err := apps.Watch(ctx, "", func(ev argocd.Event) error {
			select {
			case ch <- EventMsg{Event: ev, owner: l}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the watch ended")
		}
		select {
		case ch <- watchErrMsg{owner: l, err: err}:
		case <-ctx.Done():
		}
	}()
	return view.Listen(ctx, ch)
}

// Close ends the watch and any sync being followed.
func (l *List) Close() { l.cancel() }

// Update handles loads, watch events and keys.
func (l *List) Update(msg tea.Msg) (view.View, tea.Cmd) {
	if l.sync != nil {
		if done, cmd, handled := l.sync.update(msg); handled {
			if done {
				l.sync = nil
			}
			return l, cmd
		}
	}
	switch msg := msg.(type) {
	case listMsg:
		if msg.owner != l {
			return l, nil
		}
		for _, a := range msg.apps {
			l.apps[a.Name] = a
		}
		l.loaded = true
		l.refresh()
		return l, nil
	case EventMsg:
		if msg.owner != l {
			return l, nil
		}
		a := msg.Event.App
		if msg.Event.Type == argocd.EventDeleted {
			delete(l.apps, a.Name)
		} else {
			l.apps[a.Name] = a
		}
		l.loaded = true
		l.refresh()
		if l.sync != nil {
			l.sync.observe(a)
		}
		return l, view.Listen(l.ctx, l.events)
	case watchErrMsg:
		if msg.owner != l {
			return l, nil
		}
		return l, tea.Batch(view.Error(fmt.Errorf("Argo CD watch: %w (retrying in %s)", msg.err, l.o.Retry)),
			view.After(l.ctx, l.o.Retry, retryMsg{owner: l}))
	case retryMsg:
		if msg.owner != l {
			return l, nil
		}
		return l, tea.Batch(l.load(), l.startWatch())
	case tickMsg:
		if msg.owner != l {
			return l, nil
		}
		l.refresh()
		return l, view.After(l.ctx, l.o.Tick, tickMsg{owner: l})
	case tea.KeyMsg:
		return l.key(msg)
	case tea.MouseMsg:
		var cmd tea.Cmd
		l.tbl, cmd = l.tbl.Update(msg)
		return l, cmd
	}
	return l, nil
}

func (l *List) key(msg tea.KeyMsg) (view.View, tea.Cmd) {
	name := l.current()
	switch {
	case key.Matches(msg, KeyOpen):
		if name == "" {
			return l, nil
		}
		return l, view.Push(newDetail(l.o, l.ctx, l.apps[name]))
	case key.Matches(msg, KeyHistory):
		if name == "" {
			return l, nil
		}
		return l, view.Push(newHistory(l.o, l.ctx, name))
	case key.Matches(msg, KeySync):
		if l.o.Readonly {
			return l, view.Error(errors.New("read-only: syncing is disabled (--readonly); nothing was changed"))
		}
		if name == "" {
			return l, nil
		}
		l.sync = newSyncFlow(l.o, l.ctx, l.apps[name])
		return l, nil
	}
	var cmd tea.Cmd
	l.tbl, cmd = l.tbl.Update(msg)
	return l, cmd
}

func (l *List) current() string {
	i := l.tbl.Cursor()
	if i < 0 || i >= len(l.shown) {
		return ""
	}
	return l.shown[i]
}

// refresh rebuilds the rows from the known applications, keeping the cursor on the same name.
func (l *List) refresh() {
	cur := l.current()
	l.order = l.order[:0]
	for n := range l.apps {
		l.order = append(l.order, n)
	}
	sort.Strings(l.order)
	l.shown = l.shown[:0]
	now := l.o.Now()
	var rows [][]string
	f := strings.ToLower(l.filter)
	for _, n := range l.order {
		a := l.apps[n]
		row := []string{a.Name, termsafe.Dash(a.Sync), termsafe.Dash(a.Health), termsafe.Dash(argocd.ShortRevision(a.Revision)), a.Operation.Summary(), table.Ago(now, a.LastSync)}
		// The filter matches the name: "prod" must not select a dev app whose operation
		// message or revision happens to contain it.
		if f != "" && !strings.Contains(strings.ToLower(a.Name), f) {
			continue
		}
		l.shown = append(l.shown, n)
		rows = append(rows, row)
	}
	l.tbl.SetAll(rows, l.shown)
	if l.loaded {
		l.tbl.Empty = "no applications"
		if f != "" {
			l.tbl.Empty = "no application matches the filter"
		}
	}
	for i, n := range l.shown {
		if n == cur {
			l.tbl.SetCursor(i)
		}
	}
}

// View draws the table, with the sync dialog over it when one is open.
func (l *List) View() string {
	bg := l.tbl.View()
	if l.sync != nil {
		return modal.Overlay(bg, l.sync.modal.View(l.w, l.h), l.w, l.h)
	}
	return bg
}

// Title names the view.
func (l *List) Title() string { return "apps" }

// SetSize sets the body size.
func (l *List) SetSize(w, h int) {
	l.w, l.h = w, h
	l.tbl.SetSize(w, h)
}

// Keys lists the bindings (S only when writable).
func (l *List) Keys() []key.Binding {
	if l.sync != nil {
		return l.sync.modal.Keys()
	}
	ks := []key.Binding{KeyOpen, KeyHistory}
	if !l.o.Readonly {
		ks = append(ks, KeySync)
	}
	return ks
}

// Capturing is true while the sync dialog is open.
func (l *List) Capturing() bool { return l.sync != nil }

// SetFilter narrows the rows to those containing s.
func (l *List) SetFilter(s string) tea.Cmd {
	l.filter = s
	l.refresh()
	return nil
}

// Filter returns the filter.
func (l *List) Filter() string { return l.filter }

// syncFlow is the `S` dialog — confirm, request the sync, follow it to Synced and Healthy —
// and the history's `R`: confirm, request the rollback, follow it to Healthy at the entry's
// revision.
type syncFlow struct {
	o     Options
	ctx   context.Context
	app   argocd.App
	modal *modal.Model
	// verb is "sync" or "rollback"; start asks Argo CD; until is what the follow waits for.
	verb  string
	start func(ctx context.Context) (argocd.App, error)
	until argocd.WaitFor
}

type syncDoneMsg struct {
	flow *syncFlow
	app  argocd.App
	err  error
}

type syncAcceptedMsg struct {
	flow *syncFlow
	app  argocd.App
}

func newSyncFlow(o Options, ctx context.Context, a argocd.App) *syncFlow {
	target := a.TargetRevision
	if target == "" {
		target = "HEAD"
	}
	lines := []string{
		fmt.Sprintf("Argo CD will sync %s to %s of", termsafe.String(a.Name), termsafe.String(target)),
		"  " + termsafe.String(a.RepoURL+"  "+a.Path),
		fmt.Sprintf("now: %s, %s at %s", termsafe.Dash(a.Sync), termsafe.Dash(a.Health), termsafe.Dash(argocd.ShortRevision(a.Revision))),
	}
	if a.AutoSync {
		lines = append(lines, "auto-sync is on: Argo CD would sync this on its own")
	}
	m := modal.New("Sync "+termsafe.String(a.Name)+"?", lines...).Action("sync")
	name := a.Name
	return &syncFlow{o: o, ctx: ctx, app: a, modal: m, verb: "sync",
		start: func(ctx context.Context) (argocd.App, error) { return o.Apps.Sync(ctx, name, argocd.SyncOptions{}) },
		until: argocd.WaitFor{Synced: true, Healthy: true, OperationDone: true}}
}

// newRollbackFlow is the dialog of a rollback to history entry h, which the caller checked
// with argocd.CheckRollback.
func newRollbackFlow(o Options, ctx context.Context, a argocd.App, h argocd.Deployment) *syncFlow {
	lines := []string{
		fmt.Sprintf("Argo CD will redeploy %s at history entry %d:", termsafe.String(a.Name), h.ID),
		fmt.Sprintf("  revision %s, deployed %s", termsafe.Dash(argocd.ShortRevision(h.Revision)), h.DeployedAt.UTC().Format("2006-01-02 15:04:05Z")),
	}
	if h.Commit != nil {
		lines = append(lines, "  "+termsafe.Line(h.Commit.Subject()))
	}
	lines = append(lines, fmt.Sprintf("now: %s, %s at %s; git stays as it is, so the application is OutOfSync afterwards",
		termsafe.Dash(a.Sync), termsafe.Dash(a.Health), termsafe.Dash(argocd.ShortRevision(a.Revision))))
	m := modal.New(fmt.Sprintf("Roll back %s to entry %d?", termsafe.String(a.Name), h.ID), lines...).Action("roll back").Danger()
	name, id := a.Name, h.ID
	return &syncFlow{o: o, ctx: ctx, app: a, modal: m, verb: "rollback",
		start: func(ctx context.Context) (argocd.App, error) {
			return o.Apps.Rollback(ctx, name, id, argocd.RollbackOptions{})
		},
		until: argocd.WaitFor{Healthy: true, OperationDone: true, Revision: h.Revision}}
}

// update handles a message for the dialog; handled is false for messages it does not own
// (watch events still reach the list). done means the dialog closed.
func (s *syncFlow) update(msg tea.Msg) (done bool, cmd tea.Cmd, handled bool) {
	switch msg := msg.(type) {
	case syncAcceptedMsg:
		if msg.flow != s {
			return false, nil, false
		}
		s.modal.Log(fmt.Sprintf("%s accepted (%s)", s.verb, termsafe.Dash(phase(msg.app.Operation))))
		if s.until.Synced {
			s.modal.Progress(-1, "waiting for Synced and Healthy…")
		} else {
			s.modal.Progress(-1, "waiting for Healthy at "+termsafe.Dash(argocd.ShortRevision(s.until.Revision))+"…")
		}
		return false, s.wait(), true
	case syncDoneMsg:
		if msg.flow != s {
			return false, nil, false
		}
		if msg.err != nil {
			s.modal.Finish(true, s.verb+" of "+termsafe.String(s.app.Name)+" did not finish: "+termsafe.String(msg.err.Error()))
			return false, nil, true
		}
		a := msg.app
		s.modal.Finish(false, fmt.Sprintf("%s is %s and %s at %s", termsafe.String(a.Name), a.Sync, a.Health, termsafe.Dash(argocd.ShortRevision(a.Revision))))
		return false, nil, true
	case tea.KeyMsg:
		out, cmd := s.modal.Update(msg)
		switch out {
		case modal.Cancelled:
			return true, view.Status(s.verb + " cancelled; nothing was changed"), true
		case modal.Closed:
			return true, nil, true
		case modal.Confirmed:
			s.modal.Start("requesting a " + s.verb + " of " + termsafe.String(s.app.Name) + "…")
			return false, s.request(), true
		}
		return false, cmd, true
	}
	return false, nil, false
}

// observe logs the followed application's changes while the sync runs.
func (s *syncFlow) observe(a argocd.App) {
	if s.modal.State() != modal.Running || a.Name != s.app.Name {
		return
	}
	line := fmt.Sprintf("%s, %s at %s", termsafe.Dash(a.Sync), termsafe.Dash(a.Health), termsafe.Dash(argocd.ShortRevision(a.Revision)))
	if op := a.Operation; op.Running() {
		line += ", sync " + op.Phase
	}
	s.modal.Log(line)
}

func (s *syncFlow) request() tea.Cmd {
	ctx, start := s.ctx, s.start
	return func() tea.Msg {
		a, err := start(ctx)
		if err != nil {
			return syncDoneMsg{flow: s, err: err}
		}
		return syncAcceptedMsg{flow: s, app: a}
	}
}

func (s *syncFlow) wait() tea.Cmd {
	ctx, apps, name, until := s.ctx, s.o.Apps, s.app.Name, s.until
	until.Timeout = s.o.WaitTimeout
	return func() tea.Msg {
		a, err := argocd.Wait(ctx, apps, name, until)
		return syncDoneMsg{flow: s, app: a, err: err}
	}
}

func phase(op *argocd.Operation) string {
	if op == nil {
		return ""
	}
	return "operation " + op.Phase
}
