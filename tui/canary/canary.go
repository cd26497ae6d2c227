// Package canary is the TUI's canary board: every env × service with its stable and canary
// tags, the weight git asks for next to the weight Envoy has live, the phase, whether git, Argo
// CD and the mesh agree, and the gate criteria of the selected canary coloured per verdict.
//
// `s` steps, `w` sets a weight, `p` promotes and `b` rolls back. Each opens a dialog that names
// the commit it will push (subject, trailers, diff) and asks for the reason; once confirmed the
// dialog shows the push and then the Argo CD sync until the live weights match. Everything goes
// through pkg/canary and pkg/rollout, as `opsctl canary` does.
package canary

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/rollout"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Options configure the board.
type Options struct {
	// Ctx bounds every read and change; the board's own work also ends at Close.
	Ctx     context.Context
	Backend Backend
	// Readonly hides and refuses s, w, p and b.
	Readonly bool
	// Now is the clock for ages (default time.Now).
	Now func() time.Time
	// Refresh is how often the board re-reads git, Argo CD, the mesh and the gates (default
	// 15s; negative turns it off).
	Refresh time.Duration
}

// Keys of the board.
var (
	KeyStart    = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "start canary"))
	KeyStep     = key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "step"))
	KeyWeight   = key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "set weight"))
	KeyPromote  = key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "promote"))
	KeyRollback = key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "rollback"))
	KeyReload   = key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "reload"))
)

// Board is the canary view.
type Board struct {
	o       Options
	ctx     context.Context
	cancel  context.CancelFunc
	tbl     table.Model
	gateTbl table.Model
	rows    []Row
	loaded  bool
	loading bool
	gates   map[string]gateState
	act     *action
	filter  string
	shown   []int
	w, h    int
}

type gateState struct {
	rep     canary.GateReport
	err     error
	loading bool
}

type boardMsg struct {
	owner *Board
	rows  []Row
	err   error
}

type gatesMsg struct {
	owner *Board
	key   string
	rep   canary.GateReport
	err   error
}

type tickMsg struct{ owner *Board }

// New returns the board.
func New(o Options) *Board {
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh == 0 {
		o.Refresh = 15 * time.Second
	}
	ctx, cancel := context.WithCancel(o.Ctx)
	t := table.New(
		table.Column{Title: "ENV", Width: 4},
		table.Column{Title: "SERVICE", Width: 7},
		table.Column{Title: "STABLE", Width: 9},
		table.Column{Title: "CANARY", Width: 9},
		table.Column{Title: "GIT", Width: 4},
		table.Column{Title: "LIVE", Width: 4},
		table.Column{Title: "PHASE", Width: 11},
		table.Column{Title: "DRIFT"},
	)
	t.Empty = "reading the GitOps repository…"
	t.SetStyler(func(col int, v string) (lipgloss.Style, bool) {
		if col != 7 {
			return lipgloss.Style{}, false
		}
		return verdictStyle(v), true
	})
	g := table.New(
		table.Column{Title: "CRITERION", Grow: 3},
		table.Column{Title: "VALUE", Grow: 2},
		table.Column{Title: "THRESHOLD", Width: 24},
		table.Column{Title: "VERDICT", Width: 7},
	)
	g.Empty = ""
	g.SetStyler(func(col int, v string) (lipgloss.Style, bool) {
		if col != 3 {
			return lipgloss.Style{}, false
		}
		return verdictStyle(v), true
	})
	return &Board{o: o, ctx: ctx, cancel: cancel, tbl: t, gateTbl: g, gates: map[string]gateState{}}
}

func verdictStyle(v string) lipgloss.Style {
	switch {
	case v == string(canary.VerdictPass) || v == "in sync":
		return theme.OK
	case v == string(canary.VerdictFail) || v == "drift" || strings.HasPrefix(v, "error"):
		return theme.Error
	case v == "sync pending":
		return theme.Warning
	}
	return theme.Dim
}

// Init reads the board.
func (b *Board) Init() tea.Cmd { return b.load() }

// Close stops refreshes and any change being followed.
func (b *Board) Close() { b.cancel() }

func (b *Board) load() tea.Cmd {
	if b.loading {
		return nil
	}
	b.loading = true
	ctx, be := b.ctx, b.o.Backend
	return func() tea.Msg {
		rows, err := be.Board(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return boardMsg{owner: b, rows: rows, err: err}
	}
}

func rowKey(r Row) string { return r.Service + "/" + r.Env }

// loadGates reads the gates of the selected row when a canary runs there and they are not
// loaded yet (or force).
func (b *Board) loadGates(force bool) tea.Cmd {
	r, ok := b.current()
	if !ok || r.Err != nil || r.Status.Phase == nil {
		return nil
	}
	k := rowKey(r)
	if gs, ok := b.gates[k]; ok && (gs.loading || !force) {
		return nil
	}
	b.gates[k] = gateState{loading: true, rep: b.gates[k].rep}
	ctx, be, st := b.ctx, b.o.Backend, r.Status
	return func() tea.Msg {
		rep, err := be.Gates(ctx, st)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return gatesMsg{owner: b, key: k, rep: rep, err: err}
	}
}

// Update handles loads, refreshes, the action dialog and keys.
func (b *Board) Update(msg tea.Msg) (view.View, tea.Cmd) {
	if b.act != nil {
		if cmd, handled := b.updateAction(msg); handled {
			return b, cmd
		}
	}
	switch msg := msg.(type) {
	case boardMsg:
		if msg.owner != b {
			return b, nil
		}
		b.loading = false
		var cmds []tea.Cmd
		if b.o.Refresh > 0 {
			cmds = append(cmds, view.After(b.ctx, b.o.Refresh, tickMsg{owner: b}))
		}
		if msg.err != nil {
			cmds = append(cmds, view.Error(fmt.Errorf("canary board: %w", msg.err)))
			b.tbl.Empty = "could not read the GitOps repository"
			return b, tea.Batch(cmds...)
		}
		b.rows, b.loaded = msg.rows, true
		// Gates are re-read with the board: a canary's figures move.
		for k, gs := range b.gates {
			if !gs.loading {
				delete(b.gates, k)
			}
		}
		b.fill()
		cmds = append(cmds, b.loadGates(false))
		return b, tea.Batch(cmds...)
	case gatesMsg:
		if msg.owner != b {
			return b, nil
		}
		b.gates[msg.key] = gateState{rep: msg.rep, err: msg.err}
		b.fillGates()
		return b, nil
	case tickMsg:
		if msg.owner != b {
			return b, nil
		}
		return b, b.load()
	case tea.KeyMsg:
		return b.key(msg)
	case tea.MouseMsg:
		var cmd tea.Cmd
		b.tbl, cmd = b.tbl.Update(msg)
		b.fillGates()
		return b, tea.Batch(cmd, b.loadGates(false))
	}
	return b, nil
}

func (b *Board) key(msg tea.KeyMsg) (view.View, tea.Cmd) {
	var op *canary.Op
	switch {
	case key.Matches(msg, KeyReload):
		return b, b.load()
	case key.Matches(msg, KeyStart):
		op = &canary.Op{Action: canary.ActionStart}
	case key.Matches(msg, KeyStep):
		op = &canary.Op{Action: canary.ActionStep}
	case key.Matches(msg, KeyPromote):
		op = &canary.Op{Action: canary.ActionPromote}
	case key.Matches(msg, KeyRollback):
		op = &canary.Op{Action: canary.ActionRollback}
	case key.Matches(msg, KeyWeight):
		op = &canary.Op{Action: canary.ActionSet}
	}
	if op != nil {
		if b.o.Readonly {
			return b, view.Error(fmt.Errorf("read-only: canary %s is disabled (--readonly); nothing was changed", op.Action))
		}
		r, ok := b.current()
		if !ok {
			return b, nil
		}
		return b, b.begin(r, *op)
	}
	var cmd tea.Cmd
	b.tbl, cmd = b.tbl.Update(msg)
	b.fillGates()
	return b, tea.Batch(cmd, b.loadGates(false))
}

func (b *Board) current() (Row, bool) {
	i := b.tbl.Cursor()
	if i < 0 || i >= len(b.shown) {
		return Row{}, false
	}
	return b.rows[b.shown[i]], true
}

func (b *Board) fill() {
	var cells [][]string
	var keys []string
	f := strings.ToLower(b.filter)
	b.shown = b.shown[:0]
	for i, r := range b.rows {
		row := boardCells(r)
		if f != "" && !strings.Contains(strings.ToLower(strings.Join(row, " ")), f) {
			continue
		}
		b.shown = append(b.shown, i)
		cells = append(cells, row)
		keys = append(keys, rowKey(r))
	}
	if b.loaded {
		b.tbl.Empty = "nothing matches the filter"
	}
	b.tbl.SetAll(cells, keys)
	b.fillGates()
}

func boardCells(r Row) []string {
	if r.Err != nil {
		return []string{r.Env, r.Service, "", "", "", "", "", "error: " + r.Err.Error()}
	}
	rel := r.Status.Release
	canaryTag, gitW, phase := "-", "0%", "-"
	if rel.Canary.Enabled {
		canaryTag = rel.Canary.Tag
		gitW = fmt.Sprintf("%d%%", rel.Canary.Weight)
	}
	if p := r.Status.Phase; p != nil {
		phase = fmt.Sprintf("%d (%d→%d%%)", p.Number, p.From, p.To)
	}
	live, drift := "", "-"
	if ag := r.Live; ag != nil {
		live = "?"
		if ag.LiveV2 != nil {
			live = fmt.Sprintf("%d%%", *ag.LiveV2)
		}
		drift = driftWord(ag.Verdict)
	}
	return []string{r.Env, r.Service, termsafe.Dash(rel.StableTag), canaryTag, gitW, live, phase, drift}
}

func driftWord(v rollout.Verdict) string {
	switch v {
	case rollout.InSync:
		return "in sync"
	case rollout.SyncPending:
		return "sync pending"
	case rollout.Drift:
		return "drift"
	}
	return "unknown"
}

func (b *Board) fillGates() {
	r, ok := b.current()
	if !ok {
		b.gateTbl.SetAll(nil, nil)
		return
	}
	gs := b.gates[rowKey(r)]
	var rows [][]string
	for _, res := range gs.rep.Results {
		v := res.Display
		if res.Value == nil && v == "" {
			v = "no data"
		}
		rows = append(rows, []string{res.Criterion.Name, v, res.Criterion.ThresholdText(), string(res.Verdict)})
	}
	switch {
	case r.Status.Phase == nil:
		b.gateTbl.Empty = "no canary is running"
	case gs.loading:
		b.gateTbl.Empty = "reading the gates…"
	case gs.err != nil:
		b.gateTbl.Empty = "gates: " + gs.err.Error()
	default:
		b.gateTbl.Empty = "no criteria"
	}
	b.gateTbl.SetAll(rows, nil)
}

// detail is the three lines about the selected row.
func (b *Board) detail() []string {
	r, ok := b.current()
	if !ok {
		return []string{"", "", ""}
	}
	w := b.w
	line := func(s string) string { return termsafe.Truncate(s, max(w, 10)) }
	head := r.Service + "/" + r.Env + "  " + gitops.ApplicationName(r.Service, r.Env)
	if r.Err != nil {
		return []string{theme.Title.Render(line(head)), theme.Error.Render(line(r.Err.Error())), ""}
	}
	st := r.Status
	if p := st.Phase; p != nil {
		head += fmt.Sprintf("  canary %s at %d%%, phase %d: %s", st.Release.Canary.Tag, st.Release.Canary.Weight, p.Number, p.Action)
	} else {
		head += "  no canary: all traffic on " + termsafe.Dash(st.Release.StableTag)
	}
	live := "git at " + short(st.Commit)
	if ag := r.Live; ag != nil {
		if ag.ArgoSync != "" {
			live += fmt.Sprintf(" · Argo CD %s %s at %s", ag.ArgoSync, ag.ArgoHealth, termsafe.Dash(short(ag.ArgoRevision)))
		}
		if ag.LiveV1 != nil && ag.LiveV2 != nil {
			live += fmt.Sprintf(" · live v1 %d%% / v2 %d%%", *ag.LiveV1, *ag.LiveV2)
		}
		if ag.Detail != "" {
			live += " · " + ag.Detail
		}
	} else {
		live += " · Argo CD not configured: no live weights"
	}
	last := "last change: -"
	if c := st.LastChange; c != nil {
		what := c.Subject
		if c.Action != "" {
			what = c.Action
			if c.Reason != "" {
				what += ": " + c.Reason
			}
		}
		t := c.Time
		last = fmt.Sprintf("last change: %s %s %s ago %s", short(c.Commit), c.Author, table.Ago(b.o.Now(), &t), what)
	}
	if len(st.Warnings) > 0 {
		last += "  (!) " + strings.Join(st.Warnings, "; ")
	}
	return []string{theme.Title.Render(line(head)), line(live), theme.Dim.Render(line(last))}
}

// gatesTitle heads the gate table with the overall verdict.
func (b *Board) gatesTitle() string {
	r, ok := b.current()
	if !ok || r.Status.Phase == nil {
		return theme.Column.Render("GATES")
	}
	gs := b.gates[rowKey(r)]
	t := fmt.Sprintf("GATES rollback criteria + phase %d", r.Status.Phase.Number)
	if len(gs.rep.Results) == 0 {
		return theme.Column.Render(t)
	}
	v := string(gs.rep.Verdict())
	return theme.Column.Render(t+" · verdict ") + verdictStyle(v).Render(v)
}

// View draws the board, the selected row's detail and its gates, and the dialog over them.
func (b *Board) View() string {
	lines := []string{b.tbl.View()}
	lines = append(lines, b.detail()...)
	lines = append(lines, b.gatesTitle(), b.gateTbl.View())
	bg := strings.Join(lines, "\n")
	if b.act != nil && b.act.modal != nil {
		return modal.Overlay(bg, b.act.modal.View(b.w, b.h), b.w, b.h)
	}
	return bg
}

// Title names the view.
func (b *Board) Title() string { return "canary" }

// SetSize sets the body size: the board keeps one row per env × service, the gates take the
// rest.
func (b *Board) SetSize(w, h int) {
	b.w, b.h = w, h
	boardH := 1 + len(gitops.Environments())*len(gitops.Services())
	b.tbl.SetSize(w, boardH)
	b.gateTbl.SetSize(w, max(h-boardH-4, 2))
}

// Keys lists the bindings (the mutating ones only when writable).
func (b *Board) Keys() []key.Binding {
	if b.act != nil && b.act.modal != nil {
		return b.act.modal.Keys()
	}
	if b.o.Readonly {
		return []key.Binding{KeyReload}
	}
	return []key.Binding{KeyStep, KeyWeight, KeyPromote, KeyRollback, KeyStart, KeyReload}
}

// Capturing is true while a dialog is open.
func (b *Board) Capturing() bool { return b.act != nil && b.act.modal != nil }

// SetFilter narrows the rows.
func (b *Board) SetFilter(s string) tea.Cmd {
	b.filter = s
	b.fill()
	return b.loadGates(false)
}

// Filter returns the filter.
func (b *Board) Filter() string { return b.filter }

// short abbreviates a commit to the 7 characters Argo CD and git show.
func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

func atoi(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number of percent", s)
	}
	if n < 0 || n > 100 {
		return 0, fmt.Errorf("%d is outside 0-100", n)
	}
	return n, nil
}
