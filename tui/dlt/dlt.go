// Package dlt is the TUI's dead-letter console: DLT topics (count, records in the last hour
// with a sparkline, age of the newest) → error groups (errorSource × errorCode) → records,
// fetched in windows as they scroll into view so a million-record DLT opens at once → one
// record with its headers decoded, its value pretty-printed and its secrets masked (`v`
// reveals them).
//
// In the records list `space` selects, `a` selects everything the filter matches, `r` replays
// the selection behind a dialog that shows the plan (count, targets, refusals), asks for an
// optional target group and the reason, then runs the replay with a progress bar and keeps the
// outcome on screen; `R` is the same plan as a dry run. Every read and the replay itself go
// through pkg/replay, exactly as `opsctl dlt` does.
package dlt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Backend is what the views read and do; *replay.Engine implements it.
type Backend interface {
	Topics(ctx context.Context) ([]replay.TopicInfo, error)
	TopicsOutline(ctx context.Context) ([]replay.TopicInfo, error)
	Histogram(ctx context.Context, topics []string, end time.Time, bucket time.Duration, n int) (map[string][]int64, error)
	StatsProgress(ctx context.Context, topic string, sel *replay.Selection, progress func(*replay.Stats)) (*replay.Stats, error)
	Spans(ctx context.Context, topic string) ([]replay.Span, error)
	Index(ctx context.Context, topic string, sel *replay.Selection, keep func(*dlt.Record) bool,
		progress func(replay.IndexProgress), fn func(replay.Coord) error) (map[int32]int64, replay.ScanSummary, error)
	Window(ctx context.Context, topic string, coords []replay.Coord) ([]*dlt.Record, error)
	Get(ctx context.Context, topic string, partition int32, offset int64) (*dlt.Record, error)
	Replayed(ctx context.Context, dltTopic string) (*replay.Replays, error)
	Plan(ctx context.Context, req replay.Request) (*replay.Plan, error)
	Replay(ctx context.Context, req replay.Request) (*replay.Summary, error)
	OriginLags(ctx context.Context, dlts []string) (map[string]*replay.OriginLag, error)
}

// Options configure the DLT views.
type Options struct {
	// Ctx bounds every read and replay; each view's own work also ends at its Close.
	Ctx     context.Context
	Backend Backend
	// Readonly hides and refuses `r` (R, the dry run, stays).
	Readonly bool
	// Secrets are the value fields masked in the record view until `v`.
	Secrets secret.Fields
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Window is how many records a virtualised list fetches at a time (default 200).
	Window int
	// Refresh is how often the topic list is re-read (default 15s; negative: never).
	Refresh time.Duration
	// History, when set, opens the replay history of a DLT (`h` on the topics list).
	History func(topic string) view.View
	// Outline shows the topics from their offsets at once (upper-bound counts, the other
	// columns "…") while the counted list is read, which on a DLT of millions takes a second
	// or more; `opsctl tui` sets it.
	Outline bool
}

func (o *Options) defaults() {
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Window <= 0 {
		o.Window = 200
	}
	if o.Refresh == 0 {
		o.Refresh = 15 * time.Second
	}
}

// Keys of the DLT views.
var (
	KeyOpen     = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open"))
	KeyAll      = key.NewBinding(key.WithKeys("A"), key.WithHelp("A", "all records"))
	KeySelect   = key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "select"))
	KeySelAll   = key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "select all matching"))
	KeyClear    = key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "clear selection"))
	KeyReplay   = key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "replay"))
	KeyDryRun   = key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "dry run"))
	KeyReveal   = key.NewBinding(key.WithKeys("v"), key.WithHelp("v", "reveal secrets"))
	KeyReload   = key.NewBinding(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "reload"))
	KeyHistory  = key.NewBinding(key.WithKeys("h"), key.WithHelp("h", "replay history"))
	KeyScrollDn = key.NewBinding(key.WithKeys("down", "j", "pgdown", "ctrl+f", "end", "G"))
)

// Topics is the list of dead-letter topics.
type Topics struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	tbl    table.Model
	topics []replay.TopicInfo
	spark  map[string][]int64
	shown  []int
	filter string
	loaded bool
	// counting is true while the outline is shown and the counted list is being read.
	counting bool
	// open is the topic whose error groups open once the list is read (`:dlt TOPIC`).
	open string
	sort table.Sort
	// lags is the consumer lag on each DLT's original topic; nil until first read.
	lags  map[string]*replay.OriginLag
	width int
}

// topicTitles are the topics' column titles; shift+T, R, H, N and L sort by them.
var topicTitles = []string{"TOPIC", "RECORDS", "LAST HOUR", "5-MIN BUCKETS", "NEWEST", "REPLAYED", "ORIGIN LAG"}

// colLag is the column of the consumer lag on the DLT's original topic; below lagNarrow cells
// of width its title is "LAG".
const (
	colLag    = 6
	lagNarrow = 100
)

// lagTimeout bounds the read of the consumer groups' lag: the list stands without it.
const lagTimeout = 10 * time.Second

type topicsMsg struct {
	owner  *Topics
	topics []replay.TopicInfo
	spark  map[string][]int64
	// outline: the list from the offsets alone, shown until the counted one arrives.
	outline bool
}

type lagsMsg struct {
	owner *Topics
	lags  map[string]*replay.OriginLag
	err   error
}

type topicsTickMsg struct{ owner *Topics }

// sparkBuckets × sparkBucket is the last hour.
const (
	sparkBuckets = 12
	sparkBucket  = 5 * time.Minute
)

// New returns the DLT topics view, the DLT console's first screen.
func New(o Options) *Topics {
	o.defaults()
	ctx, cancel := context.WithCancel(o.Ctx)
	t := table.New(
		table.Column{Title: "TOPIC", Grow: 2},
		table.Column{Title: "RECORDS", Width: 9},
		table.Column{Title: "LAST HOUR", Width: 9},
		table.Column{Title: "5-MIN BUCKETS", Width: sparkBuckets + 1},
		table.Column{Title: "NEWEST", Width: 6},
		table.Column{Title: "REPLAYED", Width: 8},
		table.Column{Title: "ORIGIN LAG", Width: 11},
	)
	t.Empty = "reading dead-letter topics…"
	t.SetStyler(func(col int, v string) (lipgloss.Style, bool) {
		if col == 3 {
			return theme.Warning, true
		}
		return lipgloss.Style{}, false
	})
	return &Topics{o: o, ctx: ctx, cancel: cancel, tbl: t,
		sort: table.Sort{Col: -1, Keys: map[string]int{"T": 0, "R": 1, "H": 2, "N": 4, "L": colLag}, Desc: func(col int) bool { return col > 0 }}}
}

// NewAt returns the DLT topics view with topic's error groups opened on top of it once the
// list is read, as `:dlt TOPIC` asks; esc goes back to the list. A topic that is not among the
// dead-letter topics leaves the list with an error that says so.
func NewAt(o Options, topic string) *Topics {
	v := New(o)
	v.open = topic
	return v
}

// Init lists the topics with the counts of what a read_committed consumer sees; with
// Options.Outline, first at once from their offsets (replay.Engine.TopicsOutline).
func (v *Topics) Init() tea.Cmd {
	if !v.o.Outline {
		return v.load()
	}
	return tea.Batch(v.loadOutline(), v.load())
}

func (v *Topics) loadOutline() tea.Cmd {
	ctx, be := v.ctx, v.o.Backend
	return func() tea.Msg {
		ts, err := be.TopicsOutline(ctx)
		if err != nil {
			return nil // the counted list says what is wrong
		}
		return topicsMsg{owner: v, topics: ts, outline: true}
	}
}

// Close stops the refresh.
func (v *Topics) Close() { v.cancel() }

func (v *Topics) load() tea.Cmd {
	ctx, be, now := v.ctx, v.o.Backend, v.o.Now
	return view.Do(func() (tea.Msg, error) {
		ts, err := be.Topics(ctx)
		if err != nil {
			return nil, fmt.Errorf("list dead-letter topics: %w", err)
		}
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Topic
		}
		spark, err := be.Histogram(ctx, names, now(), sparkBucket, sparkBuckets)
		if err != nil {
			spark = nil // the sparkline is a nicety; the counts stand without it
		}
		return topicsMsg{owner: v, topics: ts, spark: spark}, nil
	})
}

// Update handles the list and keys.
func (v *Topics) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case topicsMsg:
		if msg.owner != v {
			return v, nil
		}
		if msg.outline {
			if v.loaded || v.counting {
				return v, nil // the counted list is here (or an outline already is)
			}
			v.topics, v.counting = msg.topics, true
			v.fill()
			return v, view.Status("counting the records of each dead-letter topic…")
		}
		wasCounting := v.counting
		v.topics, v.spark, v.loaded, v.counting = msg.topics, msg.spark, true, false
		v.fill()
		var cmds []tea.Cmd
		if wasCounting {
			cmds = append(cmds, view.Status(""))
		}
		if v.o.Refresh > 0 {
			cmds = append(cmds, view.After(v.ctx, v.o.Refresh, topicsTickMsg{owner: v}))
		}
		if name := v.open; name != "" {
			v.open = ""
			cmds = append(cmds, v.openTopic(name))
		}
		cmds = append(cmds, v.loadLags())
		return v, tea.Batch(cmds...)
	case lagsMsg:
		if msg.owner != v {
			return v, nil
		}
		if msg.err != nil {
			if v.lags == nil {
				v.lags = map[string]*replay.OriginLag{} // unknown: "-"
			}
			v.fill()
			return v, view.Error(fmt.Errorf("consumer lag of the original topics: %w", msg.err))
		}
		v.lags = msg.lags
		v.fill()
		return v, nil
	case topicsTickMsg:
		if msg.owner == v {
			return v, v.load()
		}
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && v.sort.Press(msg.String()) {
			at := v.tbl.Key(v.tbl.Cursor())
			v.fill()
			v.tbl.CursorTo(at)
			return v, nil
		}
		switch {
		case key.Matches(msg, KeyReload):
			return v, v.load()
		case key.Matches(msg, KeyOpen):
			if t, ok := v.current(); ok {
				return v, view.Push(newGroups(v.o, t))
			}
			return v, nil
		case key.Matches(msg, KeyHistory) && v.o.History != nil:
			if t, ok := v.current(); ok {
				return v, view.Push(v.o.History(t.Topic))
			}
			return v, nil
		case key.Matches(msg, KeyAll):
			if t, ok := v.current(); ok {
				r := newRecords(v.o, t.Topic, Filter{})
				r.withTopic = true
				return v, view.Push(r)
			}
			return v, nil
		}
		var cmd tea.Cmd
		v.tbl, cmd = v.tbl.Update(msg)
		return v, cmd
	case tea.MouseMsg:
		var cmd tea.Cmd
		v.tbl, cmd = v.tbl.Update(msg)
		return v, cmd
	}
	return v, nil
}

// loadLags reads the consumer lag on the listed DLTs' original topics, through the engine's
// OriginLags as `opsctl dlt topics` does. A failure says so on the status line and leaves the
// figures of the last read, or "-" when there are none.
func (v *Topics) loadLags() tea.Cmd {
	names := make([]string, len(v.topics))
	for i, t := range v.topics {
		names[i] = t.Topic
	}
	ctx, be := v.ctx, v.o.Backend
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, lagTimeout)
		defer cancel()
		lags, err := be.OriginLags(ctx, names)
		if errors.Is(err, context.Canceled) {
			return nil // the view closed
		}
		return lagsMsg{owner: v, lags: lags, err: err}
	}
}

// lagOf is the summed consumer lag on topic's original topic, -1 when unknown.
func (v *Topics) lagOf(topic string) int64 {
	if l := v.lags[topic]; l.Known() {
		return l.Lag
	}
	return -1
}

// lagCell is the ORIGIN LAG cell: "…" before the first read, "-" when unknown.
func (v *Topics) lagCell(topic string) string {
	if v.lags == nil {
		return "…"
	}
	if n := v.lagOf(topic); n >= 0 {
		return count(n)
	}
	return "-"
}

// openTopic opens name's error groups, or says it is not a dead-letter topic here.
func (v *Topics) openTopic(name string) tea.Cmd {
	for i, t := range v.topics {
		if t.Topic == name {
			for row, j := range v.shown {
				if j == i {
					v.tbl.SetCursor(row)
				}
			}
			return view.Push(newGroups(v.o, t))
		}
	}
	return view.Error(fmt.Errorf("%s is not a dead-letter topic of this context; pick one from the list", termsafe.Truncate(name, 60)))
}

func (v *Topics) current() (replay.TopicInfo, bool) {
	i := v.tbl.Cursor()
	if i < 0 || i >= len(v.shown) {
		return replay.TopicInfo{}, false
	}
	return v.topics[v.shown[i]], true
}

func (v *Topics) fill() {
	now := v.o.Now()
	var rows [][]string
	var keys []string
	v.shown = v.shown[:0]
	f := strings.ToLower(v.filter)
	for i, t := range v.topics {
		if f != "" && !strings.Contains(strings.ToLower(t.Topic), f) {
			continue
		}
		v.shown = append(v.shown, i)
	}
	if col := v.sort.Col; col >= 0 {
		desc := v.sort.Descending()
		slices.SortStableFunc(v.shown, func(i, j int) int {
			a, b := v.topics[i], v.topics[j]
			var c int
			switch col {
			case 0:
				c = strings.Compare(a.Topic, b.Topic)
			case 1:
				c = cmp.Compare(a.Records, b.Records)
			case 2:
				c = cmp.Compare(a.LastHour, b.LastHour)
			case 4:
				c = timeOf(a.Newest).Compare(timeOf(b.Newest))
			case colLag:
				c = cmp.Compare(v.lagOf(a.Topic), v.lagOf(b.Topic))
			}
			if desc {
				return -c
			}
			return c
		})
	}
	for _, i := range v.shown {
		t := v.topics[i]
		if t.Outline {
			rows = append(rows, []string{t.Topic, atMost(t.Records), "…", "", "…", "…", v.lagCell(t.Topic)})
			keys = append(keys, t.Topic)
			continue
		}
		rows = append(rows, []string{t.Topic, count(t.Records), count(t.LastHour), Sparkline(v.spark[t.Topic]),
			table.Ago(now, t.Newest), count(int64(t.Replayed)), v.lagCell(t.Topic)})
		keys = append(keys, t.Topic)
	}
	if v.loaded {
		v.tbl.Empty = "no dead-letter topics (names matching the context's dlt.pattern)"
		if f != "" {
			v.tbl.Empty = "no topic matches the filter"
		}
	}
	titles := slices.Clone(topicTitles)
	if v.width < lagNarrow {
		titles[colLag] = "LAG"
	}
	for i, t := range v.sort.Mark(titles) {
		v.tbl.SetTitle(i, t)
	}
	v.tbl.SetAll(rows, keys)
}

// timeOf is t, or the zero time for none (an empty topic sorts as the oldest).
func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// View draws the table.
func (v *Topics) View() string { return v.tbl.View() }

// Title names the view.
func (v *Topics) Title() string { return "dlt" }

// SetSize sets the body size; a narrow screen titles the lag column "LAG" and gives it less
// room.
func (v *Topics) SetSize(w, h int) {
	v.width = w
	lagWidth := 11 // "ORIGIN LAG↓"
	if w < lagNarrow {
		lagWidth = 7
	}
	v.tbl.SetWidth(colLag, lagWidth)
	v.tbl.SetSize(w, h)
	v.fill()
}

// Keys lists the bindings.
func (v *Topics) Keys() []key.Binding {
	keys := []key.Binding{
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "error groups")),
		KeyAll, KeyReload, v.sort.Help(),
	}
	if v.o.History != nil {
		keys = append(keys[:1], append([]key.Binding{KeyHistory}, keys[1:]...)...)
	}
	return keys
}

// Capturing is never true: the list has no inputs.
func (v *Topics) Capturing() bool { return false }

// SetFilter narrows the topics by name.
func (v *Topics) SetFilter(s string) tea.Cmd { v.filter = s; v.fill(); return nil }

// Filter returns the filter.
func (v *Topics) Filter() string { return v.filter }

// Sparkline draws counts as block characters scaled to the largest; empty buckets are a dot,
// so "nothing" and "little" look different.
func Sparkline(counts []int64) string {
	if len(counts) == 0 {
		return ""
	}
	const bars = "▁▂▃▄▅▆▇█"
	levels := []rune(bars)
	var top int64
	for _, c := range counts {
		top = max(top, c)
	}
	var b strings.Builder
	for _, c := range counts {
		switch {
		case c <= 0:
			b.WriteRune('·')
		default:
			i := int((c*int64(len(levels)) - 1) / top)
			b.WriteRune(levels[min(max(i, 0), len(levels)-1)])
		}
	}
	return b.String()
}

// count renders n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// ignoreCancel drops errors of work cancelled because its view closed.
func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// atMost is an outline's upper-bound count in the RECORDS column's nine cells: "≤30",
// "≤1.00M".
func atMost(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("≤%.1fM", float64(n)/1e6)
	case n >= 1_000_000:
		return fmt.Sprintf("≤%.2fM", float64(n)/1e6)
	}
	return "≤" + count(n)
}
