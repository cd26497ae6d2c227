// Package history is the TUI's replay-history screen: the replay runs the ledger records,
// newest first — when, who, why, which DLT, how many records and how the run ended — with what
// became of each run's records: how many came back to a dead-letter topic (and their new error
// code), and whether the consumer groups of the target topics have read past them. Enter opens
// one run: what came back per error code, and per consumer group how far it has read.
//
// Runs show at once; their outcomes take a scan of the DLTs and are computed in the background
// ("…" until they arrive), so a slow cluster never holds the table. Both come from pkg/replay's
// History and Outcomes, the functions `opsctl dlt history` and `opsctl dlt outcome` call.
package history

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

	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Backend is what the screen reads; *replay.Engine implements it.
type Backend interface {
	History(ctx context.Context, dltTopic string) ([]replay.Run, error)
	Outcomes(ctx context.Context, runs []replay.Run) (map[string]*replay.Outcome, error)
}

// Options configure the history views.
type Options struct {
	// Ctx bounds every read; each view's own work also ends at its Close.
	Ctx     context.Context
	Backend Backend
	// Now is the clock of the ages (default time.Now).
	Now func() time.Time
	// Tick is how often the ages are redrawn (default 1s; negative: never).
	Tick time.Duration
	// Timeout bounds each read: the runs, and their outcomes (default DefaultTimeout).
	Timeout time.Duration
	// Limit is how many runs are shown, the newest (default DefaultLimit, as `dlt history`).
	Limit int
}

// DefaultTimeout bounds a read of the history or of the outcomes: an outcome scans every DLT
// since the oldest run shown, which takes seconds on large DLTs, never minutes.
const DefaultTimeout = 30 * time.Second

// DefaultLimit is how many runs the screen shows, as `opsctl dlt history` does by default.
const DefaultLimit = 50

func (o *Options) defaults() {
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
}

// Keys of the history views.
var (
	KeyOpen   = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "outcome"))
	KeyReload = key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "reload"))
)

// pending and unknown are the outcome cells while outcomes are computed, and after they
// could not be.
const (
	pending = "…"
	unknown = "?"
)

// List is the table of replay runs.
type List struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	// topic is the one DLT shown, "" for all.
	topic    string
	tbl      table.Model
	runs     []replay.Run
	outcomes map[string]*replay.Outcome
	// outErr is why the outcomes are unknown; nil while they are computed or once they are in.
	outErr error
	loaded bool
	// gen numbers the loads, so a reload's answers replace an older one's, never the reverse.
	gen    int
	filter string
	shown  []int
}

// titles are the list's column titles.
var titles = []string{"RUN", "AGE", "OPERATOR", "DLT", "REPLAYED", "STATE", "CAME BACK", "CONSUMED", "REASON"}

// Column indexes.
const (
	colRun = iota
	colAge
	colActor
	colDLT
	colReplayed
	colState
	colCameBack
	colConsumed
	colReason
)

type runsMsg struct {
	owner *List
	gen   int
	runs  []replay.Run
	err   error
}

type outcomesMsg struct {
	owner    *List
	gen      int
	outcomes map[string]*replay.Outcome
	err      error
}

type tickMsg struct{ owner *List }

// New returns the replay runs of topic ("" for every DLT), newest first.
func New(o Options, topic string) *List {
	o.defaults()
	ctx, cancel := context.WithCancel(o.Ctx)
	t := table.New(
		table.Column{Title: titles[colRun], Width: 13},
		table.Column{Title: titles[colAge], Width: 4},
		table.Column{Title: titles[colActor], Fit: 24},
		table.Column{Title: titles[colDLT], Fit: 28, Hidden: topic != ""},
		table.Column{Title: titles[colReplayed], Fit: 9},
		table.Column{Title: titles[colState], Fit: 11},
		table.Column{Title: titles[colCameBack], Fit: 30},
		table.Column{Title: titles[colConsumed], Fit: 16},
		table.Column{Title: titles[colReason]},
	)
	t.Empty = "reading the replay ledger…"
	t.SetStyler(styler)
	return &List{o: o, ctx: ctx, cancel: cancel, topic: topic, tbl: t}
}

// styler colours a run's state and what came back of it.
func styler(col int, v string) (lipgloss.Style, bool) {
	switch col {
	case colState:
		return stateStyle(v), true
	case colCameBack:
		if v != "0" && v != "-" && v != pending && v != unknown {
			return theme.Error, true
		}
	}
	return lipgloss.Style{}, false
}

func stateStyle(s string) lipgloss.Style {
	switch s {
	case replay.RunCompleted:
		return theme.OK
	case replay.RunFailed, replay.RunFenced, replay.RunCancelled:
		return theme.Error
	case replay.RunPartial, replay.RunRunning:
		return theme.Warning
	}
	return theme.Dim
}

// Init reads the runs and starts the clock of the ages.
func (l *List) Init() tea.Cmd { return tea.Batch(l.load(), l.tick()) }

// Close abandons the reads.
func (l *List) Close() { l.cancel() }

func (l *List) tick() tea.Cmd {
	if l.o.Tick < 0 {
		return nil
	}
	return view.After(l.ctx, l.o.Tick, tickMsg{owner: l})
}

// load reads the runs from the ledger, within the timeout.
func (l *List) load() tea.Cmd {
	l.gen++
	ctx, be, topic, gen, timeout, limit := l.ctx, l.o.Backend, l.topic, l.gen, l.o.Timeout, l.o.Limit
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		runs, err := be.History(ctx, topic)
		if errors.Is(err, context.Canceled) {
			return nil // the view closed
		}
		if len(runs) > limit {
			runs = runs[:limit]
		}
		return runsMsg{owner: l, gen: gen, runs: runs, err: err}
	}
}

// loadOutcomes computes what became of the runs' records, within the timeout.
func (l *List) loadOutcomes() tea.Cmd {
	ctx, be, runs, gen, timeout := l.ctx, l.o.Backend, l.runs, l.gen, l.o.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		outs, err := be.Outcomes(ctx, runs)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return outcomesMsg{owner: l, gen: gen, outcomes: outs, err: err}
	}
}

// Update handles the reads, the clock and keys.
func (l *List) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case runsMsg:
		if msg.owner != l || msg.gen != l.gen {
			return l, nil
		}
		if msg.err != nil {
			l.tbl.Empty = "the replay history could not be read; ctrl+r tries again"
			l.fill()
			return l, view.Error(fmt.Errorf("read the replay history: %w", msg.err))
		}
		l.runs, l.outcomes, l.outErr, l.loaded = msg.runs, nil, nil, true
		l.fill()
		if len(l.runs) == 0 {
			return l, nil
		}
		return l, l.loadOutcomes()
	case outcomesMsg:
		if msg.owner != l || msg.gen != l.gen {
			return l, nil
		}
		l.outcomes, l.outErr = msg.outcomes, msg.err
		l.fill()
		if msg.err != nil {
			return l, view.Error(fmt.Errorf("what became of the replayed records is unknown (the runs stand; ctrl+r tries again): %w", msg.err))
		}
		return l, nil
	case tickMsg:
		if msg.owner != l {
			return l, nil
		}
		l.fill()
		return l, l.tick()
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, KeyReload):
			return l, l.load()
		case key.Matches(msg, KeyOpen):
			r, ok := l.current()
			if !ok {
				return l, nil
			}
			var out *replay.Outcome
			if l.outErr == nil && l.outcomes != nil {
				out = l.outcomes[r.RunID]
			}
			return l, view.Push(newDetail(l.o, r, out))
		}
		var cmd tea.Cmd
		l.tbl, cmd = l.tbl.Update(msg)
		return l, cmd
	case tea.MouseMsg:
		var cmd tea.Cmd
		l.tbl, cmd = l.tbl.Update(msg)
		return l, cmd
	}
	return l, nil
}

func (l *List) current() (replay.Run, bool) {
	i := l.tbl.Cursor()
	if i < 0 || i >= len(l.shown) {
		return replay.Run{}, false
	}
	return l.runs[l.shown[i]], true
}

// fill rebuilds the rows, keeping the cursor on the same run.
func (l *List) fill() {
	var at string
	if r, ok := l.current(); ok {
		at = r.RunID
	}
	now := l.o.Now()
	f := strings.ToLower(l.filter)
	l.shown = l.shown[:0]
	var rows [][]string
	var keys []string
	for i, r := range l.runs {
		if f != "" && !matches(r, f) {
			continue
		}
		started := r.Started
		row := make([]string, len(titles))
		row[colRun] = ShortID(r.RunID)
		row[colAge] = table.Ago(now, &started)
		row[colActor] = r.Actor
		row[colDLT] = dltName(r)
		row[colReplayed] = strconv.Itoa(r.Counts.Replayed)
		row[colState] = r.Status
		row[colCameBack], row[colConsumed] = l.outcomeCells(r)
		row[colReason] = r.Reason
		l.shown = append(l.shown, i)
		rows = append(rows, row)
		keys = append(keys, r.RunID)
	}
	if l.loaded {
		switch {
		case f != "":
			l.tbl.Empty = "no run matches the filter"
		case l.topic != "":
			l.tbl.Empty = "no replay of " + termsafe.Truncate(l.topic, 60) + " in the ledger yet"
		default:
			l.tbl.Empty = "no replay in the ledger yet"
		}
	}
	l.tbl.SetAll(rows, keys)
	l.tbl.CursorTo(at)
}

// outcomeCells are a run's CAME BACK and CONSUMED cells.
func (l *List) outcomeCells(r replay.Run) (cameBack, consumed string) {
	switch {
	case l.outErr != nil:
		return unknown, unknown
	case l.outcomes == nil:
		return pending, pending
	}
	o := l.outcomes[r.RunID]
	return CameBack(o), Consumed(o)
}

// matches says whether the filter (lower case) is in the run's id, operator, DLT, state or
// reason: what an operator looks a run up by, never a count.
func matches(r replay.Run, f string) bool {
	for _, s := range []string{r.RunID, r.Actor, r.DLT, r.Status, r.Reason} {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

// ShortID is the start of a run id that tells runs apart and that `opsctl dlt outcome` takes:
// run ids are UUIDv7, whose first 13 characters are the millisecond the run started (the
// first 8 change only every 65 seconds).
func ShortID(id string) string {
	const n = 13
	if len(id) > n {
		return id[:n]
	}
	return id
}

// dltName is the run's DLT, marked when the topic of that name has been deleted since.
func dltName(r replay.Run) string {
	if r.Recreated {
		return r.DLT + " (deleted since)"
	}
	return r.DLT
}

// CameBack is a run's CAME BACK cell: how many of its replayed records failed again, and their
// most frequent new error code ("-" when it replayed nothing).
func CameBack(o *replay.Outcome) string {
	if o == nil || o.Replayed == 0 {
		return "-"
	}
	if o.CameBack == 0 {
		return "0"
	}
	cell := fmt.Sprintf("%d %s", o.CameBack, o.ByError[0].ErrorCode)
	if n := len(o.ByError) - 1; n > 0 {
		cell += fmt.Sprintf(" +%d", n)
	}
	return cell
}

// Consumed is a run's CONSUMED cell for the consumer group that matters (the run's --group,
// else the one furthest behind, see replay.Outcome.Slowest): "yes" when it has read past every
// replayed record, "no" when past none, "4/6" between, then its lag on the partitions the run
// wrote to.
func Consumed(o *replay.Outcome) string {
	if o == nil || o.Replayed == 0 {
		return "-"
	}
	g, of, ok := o.Slowest()
	if !ok {
		return "no group"
	}
	read := fmt.Sprintf("%d/%d", g.Consumed, of)
	switch {
	case g.Pending == 0:
		read = "yes"
	case g.Consumed == 0:
		read = "no"
	}
	return fmt.Sprintf("%s lag %d", read, g.Lag)
}

// View draws the table.
func (l *List) View() string { return l.tbl.View() }

// Title names the view.
func (l *List) Title() string {
	if l.topic != "" {
		return "history › " + termsafe.Truncate(l.topic, 60)
	}
	return "history"
}

// narrow is the width below which the operator and record-count columns give their room to
// the outcome and the reason; the run's view shows them.
const narrow = 100

// SetSize sets the body size.
func (l *List) SetSize(w, h int) {
	l.tbl.SetHidden(colActor, w < narrow)
	l.tbl.SetHidden(colReplayed, w < narrow)
	l.tbl.SetSize(w, h)
}

// Keys lists the bindings.
func (l *List) Keys() []key.Binding { return []key.Binding{KeyOpen, KeyReload} }

// Capturing is never true: the list has no inputs.
func (l *List) Capturing() bool { return false }

// SetFilter narrows the runs by id, operator, DLT, state or reason.
func (l *List) SetFilter(s string) tea.Cmd { l.filter = s; l.fill(); return nil }

// Filter returns the filter.
func (l *List) Filter() string { return l.filter }
