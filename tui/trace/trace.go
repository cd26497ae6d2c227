// Package trace is the TUI's order trace (`:trace ORDER_ID`): every record carrying the order
// across payments-paid, payments-failed, orders-failed and their dead-letter topics on one
// time-ordered timeline, the order's current state from order-service when the context names
// its URL, and for each dead letter whether the replay ledger says it was replayed.
package trace

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

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/termsafe"
	tuidlt "github.com/come2us/opsctl/tui/dlt"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Backend finds an order's records and reads the replay ledger; *replay.Engine implements it.
type Backend interface {
	Find(ctx context.Context, q replay.FindQuery) (*replay.Found, error)
	Replayed(ctx context.Context, dltTopic string) (*replay.Replays, error)
}

// Options configure the trace.
type Options struct {
	Ctx     context.Context
	Backend Backend
	// Order reads the order's current state (order-service's GET /orders/{id}); nil when the
	// context configures no services.order URL.
	Order func(ctx context.Context, id int64) (orderapi.Order, error)
	// DLT are the options of the dead-letter record view opened with enter.
	DLT tuidlt.Options
	// Topics are searched (default: the SAGA topics and their DLTs).
	Topics []string
	// Since limits the scan to recent records (zero: everything retained).
	Since time.Time
	Now   func() time.Time
}

// Topics returns the topics a trace searches: payments-paid, payments-failed, orders-failed and
// their DLTs.
func Topics() []string {
	out := append([]string(nil), event.Topics()...)
	for _, t := range event.Topics() {
		out = append(out, event.DLT(t))
	}
	return out
}

// ParseOrderID reads a palette argument as an order id.
func ParseOrderID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not an order id (a positive number); usage: :trace ORDER_ID", termsafe.Truncate(s, 30))
	}
	return id, nil
}

// Trace is one order's timeline.
type Trace struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	id     int64
	tbl    table.Model
	found  *replay.Found
	marks  *replay.Replays
	order  *orderapi.Order
	ordErr error
	err    error
	w, h   int
}

type foundMsg struct {
	owner *Trace
	found *replay.Found
	marks *replay.Replays
	err   error
}

type orderMsg struct {
	owner *Trace
	ord   orderapi.Order
	err   error
}

// New returns the trace of order id.
func New(o Options, id int64) *Trace {
	if o.Ctx == nil {
		o.Ctx = context.Background()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Topics) == 0 {
		o.Topics = Topics()
	}
	ctx, cancel := context.WithCancel(o.Ctx)
	t := table.New(
		table.Column{Title: "TIME (UTC)", Width: 14},
		table.Column{Title: "TOPIC", Width: 19},
		table.Column{Title: "P@OFFSET", Width: 9},
		table.Column{Title: "WHAT", Width: 17},
		table.Column{Title: "DETAIL", Grow: 3},
		table.Column{Title: "REPLAY", Grow: 2},
	)
	t.Empty = fmt.Sprintf("searching %d topics for order %d…", len(o.Topics), id)
	t.SetStyler(func(col int, v string) (lipgloss.Style, bool) {
		switch {
		case col == 1 && strings.HasSuffix(v, event.DLTSuffix):
			return theme.Error, true
		case col == 5 && strings.HasPrefix(v, "replayed"):
			return theme.OK, true
		case col == 5 && strings.HasPrefix(v, "not replayed"):
			return theme.Warning, true
		}
		return lipgloss.Style{}, false
	})
	return &Trace{o: o, ctx: ctx, cancel: cancel, id: id, tbl: t}
}

// Init searches the topics and asks order-service.
func (t *Trace) Init() tea.Cmd {
	ctx, be, id, q := t.ctx, t.o.Backend, t.id, replay.FindQuery{Topics: t.o.Topics, Key: strconv.FormatInt(t.id, 10), Field: "orderId", Since: t.o.Since}
	cmds := []tea.Cmd{func() tea.Msg {
		f, err := be.Find(ctx, q)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		var marks *replay.Replays
		if err == nil {
			marks, err = be.Replayed(ctx, "")
		}
		return foundMsg{owner: t, found: f, marks: marks, err: err}
	}}
	if get := t.o.Order; get != nil {
		cmds = append(cmds, func() tea.Msg {
			o, err := get(ctx, id)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return orderMsg{owner: t, ord: o, err: err}
		})
	}
	return tea.Batch(cmds...)
}

// Close abandons the search.
func (t *Trace) Close() { t.cancel() }

// Update handles the search, the order and keys.
func (t *Trace) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case foundMsg:
		if msg.owner != t {
			return t, nil
		}
		t.found, t.marks, t.err = msg.found, msg.marks, msg.err
		if msg.err != nil {
			t.tbl.Empty = "the search failed"
			return t, view.Error(fmt.Errorf("trace order %d: %w", t.id, msg.err))
		}
		t.fill()
	case orderMsg:
		if msg.owner == t {
			if msg.err != nil {
				t.ordErr = msg.err
			} else {
				o := msg.ord
				t.order = &o
			}
		}
	case tea.KeyMsg:
		if key.Matches(msg, tuidlt.KeyOpen) {
			if r := t.current(); r != nil {
				if strings.HasSuffix(r.Topic, event.DLTSuffix) {
					return t, view.Push(tuidlt.NewDetail(t.o.DLT, r.Topic, r.Partition, r.Offset))
				}
				return t, view.Push(tuidlt.NewEventDetail(t.o.DLT, r.Topic, r.Partition, r.Offset))
			}
			return t, nil
		}
		var cmd tea.Cmd
		t.tbl, cmd = t.tbl.Update(msg)
		return t, cmd
	case tea.MouseMsg:
		var cmd tea.Cmd
		t.tbl, cmd = t.tbl.Update(msg)
		return t, cmd
	}
	return t, nil
}

func (t *Trace) current() *dlt.Record {
	if t.found == nil {
		return nil
	}
	i := t.tbl.Cursor()
	if i < 0 || i >= len(t.found.Records) {
		return nil
	}
	return t.found.Records[i]
}

func (t *Trace) fill() {
	var rows [][]string
	var keys []string
	for _, r := range t.found.Records {
		rows = append(rows, t.cells(r))
		keys = append(keys, fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset))
	}
	t.tbl.Empty = fmt.Sprintf("no record of order %d in %s", t.id, strings.Join(t.o.Topics, ", "))
	t.tbl.SetAll(rows, keys)
}

func (t *Trace) cells(r *dlt.Record) []string {
	what := r.Field("eventType")
	detail := ""
	replayCell := ""
	isDLT := strings.HasSuffix(r.Topic, event.DLTSuffix)
	switch {
	case isDLT:
		what = termsafe.Dash(r.ErrorCode)
		detail = r.ErrorSource
		if r.ErrorMessage != "" {
			detail += ": " + r.ErrorMessage
		}
		replayCell = "not replayed"
		if m, ok := t.marks.Lookup(replay.Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}); ok {
			replayCell = fmt.Sprintf("replayed ×%d, run %s", m.Count, shortID(m.RunID))
		}
	default:
		detail = eventDetail(r)
		for _, h := range r.Raw {
			if h.Key == dlt.HeaderReplayedFrom {
				replayCell = "replay of " + string(h.Value)
			}
		}
	}
	return []string{r.Timestamp.UTC().Format("01-02 15:04:05"), r.Topic, fmt.Sprintf("%d@%d", r.Partition, r.Offset), what, detail, replayCell}
}

// eventDetail picks the fields that tell one event from another.
func eventDetail(r *dlt.Record) string {
	var parts []string
	for _, f := range []string{"amount", "reasonCode", "reason", "orderDetailId", "optionValueId", "quantity"} {
		if v := r.Field(f); v != "" {
			parts = append(parts, f+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// header is the lines above the timeline: the order's state and the search's summary.
func (t *Trace) header() []string {
	w := max(t.w, 20)
	var state string
	switch {
	case t.o.Order == nil:
		state = theme.Dim.Render("order state: no services.order URL in this context")
	case t.ordErr != nil:
		state = theme.Error.Render(termsafe.Truncate("order state: "+t.ordErr.Error(), w))
	case t.order == nil:
		state = theme.Dim.Render("order state: asking order-service…")
	default:
		o := t.order
		s := fmt.Sprintf("order %d: %s · amount %d", o.ID, o.Status, o.Amount)
		if o.FailureCode != "" {
			s += " · " + o.FailureCode
			if o.FailureReason != "" {
				s += ": " + o.FailureReason
			}
		}
		if !o.UpdatedAt.IsZero() {
			u := o.UpdatedAt
			s += " · updated " + table.Ago(t.o.Now(), &u) + " ago"
		}
		st := theme.OK
		if strings.Contains(strings.ToUpper(o.Status), "FAIL") || strings.Contains(strings.ToUpper(o.Status), "CANCEL") {
			st = theme.Error
		}
		state = st.Render(termsafe.Truncate(s, w))
	}
	sum := theme.Dim.Render("searching…")
	if f := t.found; f != nil {
		per := map[string]int{}
		dlts, replayed := 0, 0
		for _, r := range f.Records {
			per[r.Topic]++
			if strings.HasSuffix(r.Topic, event.DLTSuffix) {
				dlts++
				if _, ok := t.marks.Lookup(replay.Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}); ok {
					replayed++
				}
			}
		}
		var parts []string
		for _, topic := range t.o.Topics {
			if n := per[topic]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", topic, n))
			}
		}
		s := fmt.Sprintf("%d records", len(f.Records))
		if dlts > 0 {
			s += fmt.Sprintf(" · %d dead letters, %d replayed", dlts, replayed)
		}
		if len(parts) > 0 {
			s += " · " + strings.Join(parts, ", ")
		}
		if len(f.Missing) > 0 {
			s += " · missing topics: " + strings.Join(f.Missing, ", ")
		}
		if len(f.Limited) > 0 {
			s += " · cut short in: " + strings.Join(f.Limited, ", ")
		}
		sum = termsafe.Truncate(s, w)
	}
	return []string{state, sum}
}

// View draws the header and the timeline.
func (t *Trace) View() string {
	return strings.Join(append(t.header(), t.tbl.View()), "\n")
}

// Title names the orderapi.
func (t *Trace) Title() string { return fmt.Sprintf("trace %d", t.id) }

// SetSize sets the body size; the header takes two lines. Below 100 columns the offsets go
// (enter shows them) so the replay column keeps room.
func (t *Trace) SetSize(w, h int) {
	t.w, t.h = w, h
	t.tbl.SetHidden(2, w < 100)
	if w < 100 {
		t.tbl.SetWidth(5, 14)
	} else {
		t.tbl.SetWidth(5, 0)
	}
	t.tbl.SetSize(w, max(h-2, 2))
}

// Keys lists the bindings.
func (t *Trace) Keys() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "record"))}
}

// Capturing is never true.
func (t *Trace) Capturing() bool { return false }
