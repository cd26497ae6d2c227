package dlt

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Detail is one dead letter in full: error, original coordinates, headers decoded, the value
// pretty-printed with secret fields masked (`v` reveals them), and the whole stack trace. It
// scrolls in a viewport (↑↓, pgup/pgdn, g/G) and `w` wraps long lines instead of cutting them,
// so every byte the view shows can be read. Every line drawn from the record is sanitised, its
// tabs expanded and its width measured in terminal cells (wide CJK and emoji count two), so
// nothing the record holds can make the terminal wrap or scroll under the screen.
type Detail struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	topic  string
	part   int32
	off    int64
	event  bool // an ordinary event (a trace's row), not a dead letter
	rec    *dlt.Record
	mark   *replay.Mark
	reveal bool
	wrap   bool
	err    error
	// content is the record drawn as logical lines, sanitised and styled, before they are cut
	// or wrapped to the width.
	content []string
	vp      viewport.Model
	w, h    int
}

type recordMsg struct {
	owner *Detail
	rec   *dlt.Record
	mark  *replay.Mark
	err   error
}

// NewDetail returns the view of the dead letter at topic/partition/offset.
func NewDetail(o Options, topic string, partition int32, offset int64) *Detail {
	o.defaults()
	ctx, cancel := context.WithCancel(o.Ctx)
	vp := view.NewViewport()
	// The record view has no d or u of its own: they scroll half a page, as in less.
	vp.KeyMap.HalfPageDown.SetKeys("ctrl+d", "d")
	vp.KeyMap.HalfPageUp.SetKeys("ctrl+u", "u")
	return &Detail{o: o, ctx: ctx, cancel: cancel, topic: topic, part: partition, off: offset, vp: vp}
}

// NewEventDetail returns the view of an ordinary event (a PaymentFailed on payments-failed, as
// a trace lists it): the same record view, which says what the event is instead of reading
// dead-letter metadata the event never carried.
func NewEventDetail(o Options, topic string, partition int32, offset int64) *Detail {
	d := NewDetail(o, topic, partition, offset)
	d.event = true
	return d
}

// Init reads the record and what the ledger says about it.
func (d *Detail) Init() tea.Cmd {
	ctx, be, topic, p, o, event := d.ctx, d.o.Backend, d.topic, d.part, d.off, d.event
	return func() tea.Msg {
		rec, err := be.Get(ctx, topic, p, o)
		if ignoreCancel(err) == nil && err != nil {
			return nil
		}
		var mark *replay.Mark
		if err == nil && !event {
			if rs, lerr := be.Replayed(ctx, topic); lerr == nil {
				if m, ok := rs.Lookup(replay.Coord{Topic: topic, Partition: p, Offset: o}); ok {
					mark = &m
				}
			}
		}
		return recordMsg{owner: d, rec: rec, mark: mark, err: err}
	}
}

// Close abandons the read.
func (d *Detail) Close() { d.cancel() }

// KeyWrap of the record view; the viewport scrolls with ↑↓/jk, pgup/pgdn (b/f, space), ctrl+u/d
// (u/d) and g/G (view.NewViewport, view.Scroll).
var KeyWrap = key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "wrap long lines"))

// Update handles the read and scrolling.
func (d *Detail) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case recordMsg:
		if msg.owner != d {
			return d, nil
		}
		d.rec, d.mark, d.err = msg.rec, msg.mark, msg.err
		d.render()
		if msg.err != nil {
			return d, view.Error(msg.err)
		}
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, KeyReveal):
			d.reveal = !d.reveal
			d.render()
			if d.reveal {
				return d, view.Status("secrets revealed in this record view; v masks them again")
			}
			return d, view.Status("secrets masked")
		case key.Matches(msg, KeyWrap):
			d.wrap = !d.wrap
			d.layout()
			return d, nil
		}
		return d, view.Scroll(&d.vp, msg)
	case tea.MouseMsg:
		return d, view.Scroll(&d.vp, msg)
	}
	return d, nil
}

// valueLimit caps the value bytes rendered, as `opsctl dlt show` does by default: enough for
// any real event, small enough that a 1 MiB payload costs nothing to draw.
const valueLimit = dlt.DefaultViewLimit

// fieldWidth is the width of a field's label ("Original   ").
const fieldWidth = 11

// render draws the record as logical lines, once per record and per reveal; layout then fits
// them to the width.
func (d *Detail) render() {
	d.content = d.lines()
	d.layout()
}

func (d *Detail) lines() []string {
	var out []string
	// add appends text from the record: sanitised, line breaks kept, tabs expanded.
	add := func(prefix string, s string) {
		for _, l := range termsafe.Lines(s) {
			out = append(out, prefix+l)
		}
	}
	field := func(k, v string) {
		label := theme.HeaderKey.Render(fmt.Sprintf("%-*s", fieldWidth, k))
		for i, l := range termsafe.Lines(strings.TrimRight(v, "\r\n")) {
			if i > 0 {
				label = strings.Repeat(" ", fieldWidth)
			}
			out = append(out, label+l)
		}
	}
	if d.err != nil {
		return []string{theme.Error.Render(termsafe.Line(d.err.Error()))}
	}
	r := d.rec
	if r == nil {
		return []string{theme.Dim.Render("reading the record…")}
	}
	now := d.o.Now()
	ts := r.Timestamp
	event := d.event && r.Format == dlt.FormatUnknown
	if event {
		field("Event", fmt.Sprintf("%s [%d] @ %d", r.Topic, r.Partition, r.Offset))
	} else {
		field("Record", fmt.Sprintf("%s [%d] @ %d", r.Topic, r.Partition, r.Offset))
	}
	field("Time", ts.UTC().Format("2006-01-02 15:04:05Z")+" ("+table.Ago(now, &ts)+" ago)")
	field("Key", keyText(r.Key))
	if event {
		// An ordinary event carries no failure: say what it is rather than "unknown · UNKNOWN".
		what := r.Field("eventType")
		if what == "" {
			what = "an event"
		}
		field("Type", what+" on "+r.Topic+": an ordinary event, not a dead letter (nothing to replay)")
		if rc := r.Field("reasonCode"); rc != "" {
			field("Reason", rc)
		}
	} else {
		field("Error", termsafe.Dash(r.ErrorSource)+" · "+termsafe.Dash(r.ErrorCode)+"  ("+string(r.Format)+")")
		if r.ErrorMessage != "" {
			field("Message", r.ErrorMessage)
		}
		orig := "unknown: no original-topic header (a replay is refused)"
		if r.Origin.Topic != "" {
			orig = r.Origin.Topic
			if r.Origin.Partition >= 0 {
				orig += fmt.Sprintf(" [%d]", r.Origin.Partition)
			}
			if r.Origin.Offset >= 0 {
				orig += fmt.Sprintf(" @ %d", r.Origin.Offset)
			}
			if !r.Origin.Timestamp.IsZero() {
				orig += " at " + r.Origin.Timestamp.UTC().Format("2006-01-02 15:04:05Z")
			}
		}
		field("Original", orig)
	}
	if r.Group != "" {
		field("Group", r.Group)
	}
	if r.Exception != "" {
		field("Exception", r.Exception)
	}
	if !event {
		reps := strconv.Itoa(r.ReplayCount) + " (x-opsctl-replay-count)"
		if d.mark != nil {
			reps += fmt.Sprintf("; the ledger has it replayed by run %s (count %d)", d.mark.RunID, d.mark.Count)
		}
		field("Replays", reps)
	}
	if r.TargetGroup != "" {
		field("For group", r.TargetGroup)
	}
	for _, p := range r.Problems {
		out = append(out, theme.Warning.Render("! "+termsafe.Line(p)))
	}

	mask := d.o.Secrets
	if d.reveal {
		mask = nil
	}
	vv := dlt.ViewValue(r.Value, mask, valueLimit)
	note := ""
	if vv.Masked {
		note = ", secrets masked: v reveals"
	} else if d.reveal {
		note = ", secrets revealed: v masks"
	}
	if vv.Truncated {
		note += ", cut: " + strings.Trim(vv.Marker, "[]")
	}
	out = append(out, "", theme.Column.Render(fmt.Sprintf("VALUE (%s, %d bytes%s)", vv.Kind, vv.Size, note)))
	if vv.Text != "" {
		add("", strings.TrimRight(vv.Text, "\r\n"))
	}
	if vv.Truncated {
		out = append(out, theme.Warning.Render(termsafe.Line(vv.Marker+" (opsctl dlt show -o json prints all of it)")))
	}
	headers := dlt.MaskHeaders(r.Headers, mask)
	out = append(out, "", theme.Column.Render(fmt.Sprintf("HEADERS (%d)", len(headers))))
	kw := 0
	for _, h := range headers {
		kw = max(kw, min(ansi.StringWidth(termsafe.String(h.Key)), 32))
	}
	for _, h := range headers {
		text := h.Text
		if h.Key == dlt.HeaderExceptionStacktrace || h.Key == dlt.ConnectExceptionTrace {
			text = firstLine(text) + " (stack trace below)"
		}
		kind := ""
		if h.Kind != "" && h.Kind != "string" {
			kind = theme.Dim.Render("  " + h.Kind)
		}
		k := termsafe.Fit(h.Key, 32)
		out = append(out, "  "+k+strings.Repeat(" ", max(kw-ansi.StringWidth(k), 0))+"  "+termsafe.Line(text)+kind)
	}

	if r.Stacktrace != "" {
		trace := termsafe.Lines(strings.TrimRight(r.Stacktrace, "\r\n"))
		out = append(out, "", theme.Column.Render(fmt.Sprintf("STACK TRACE (%d lines)", len(trace))))
		for _, l := range trace {
			out = append(out, "  "+l)
		}
	}
	return out
}

// layout fits the logical lines to the width, cut with "…" or wrapped (`w`), into the viewport;
// one line below it says where the viewport is when the record does not fit.
func (d *Detail) layout() {
	w := max(d.w, 20)
	var lines []string
	for _, l := range d.content {
		if !d.wrap || ansi.StringWidth(l) <= w {
			lines = append(lines, termsafe.Cut(l, w))
			continue
		}
		lines = append(lines, strings.Split(ansi.Hardwrap(l, w, true), "\n")...)
	}
	d.vp.Width = w
	d.vp.Height = max(d.h, 1)
	d.vp.SetContent(strings.Join(lines, "\n"))
	if d.vp.TotalLineCount() > d.vp.Height && d.h > 1 {
		d.vp.Height = d.h - 1
		d.vp.SetContent(strings.Join(lines, "\n"))
	}
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func keyText(k []byte) string {
	if k == nil {
		return "(none)"
	}
	if utf8.Valid(k) {
		return string(k)
	}
	return fmt.Sprintf("%x (binary)", k)
}

// View draws the viewport and, when the record is longer than the screen, where it is.
func (d *Detail) View() string {
	if d.content == nil {
		d.render()
	}
	body := d.vp.View()
	if d.vp.Height >= d.h {
		return body
	}
	first := d.vp.YOffset + 1
	last := min(d.vp.YOffset+d.vp.Height, d.vp.TotalLineCount())
	wrap := "w wraps long lines"
	if d.wrap {
		wrap = "w cuts long lines"
	}
	pos := fmt.Sprintf("lines %d–%d of %d · %d%% · g/G top/end · %s", first, last, d.vp.TotalLineCount(), int(d.vp.ScrollPercent()*100), wrap)
	return body + "\n" + theme.Dim.Render(termsafe.Cut(pos, max(d.w, 1)))
}

// Title names the record.
func (d *Detail) Title() string {
	if d.event {
		return fmt.Sprintf("event %d/%d", d.part, d.off)
	}
	return fmt.Sprintf("record %d/%d", d.part, d.off)
}

// SetSize sets the body size and lays the record out again for the width.
func (d *Detail) SetSize(w, h int) {
	d.w, d.h = w, h
	d.layout()
}

// Keys lists the bindings.
func (d *Detail) Keys() []key.Binding {
	return []key.Binding{KeyReveal, KeyWrap, key.NewBinding(key.WithKeys("j"), key.WithHelp("↑↓/pgup/pgdn/g/G", "scroll"))}
}

// Capturing is never true.
func (d *Detail) Capturing() bool { return false }
