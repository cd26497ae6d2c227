package dlt

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/key"
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
// pretty-printed with secret fields masked (`v` reveals them), and the stack trace. Everything
// from the record is sanitised for the terminal and long values are cut with a marker.
type Detail struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	topic  string
	part   int32
	off    int64
	rec    *dlt.Record
	mark   *replay.ReplayMark
	reveal bool
	err    error
	lines  []string
	top    int
	w, h   int
}

type recordMsg struct {
	owner *Detail
	rec   *dlt.Record
	mark  *replay.ReplayMark
	err   error
}

// NewDetail returns the view of the record at topic/partition/offset.
func NewDetail(o Options, topic string, partition int32, offset int64) *Detail {
	o.defaults()
	ctx, cancel := context.WithCancel(o.Ctx)
	return &Detail{o: o, ctx: ctx, cancel: cancel, topic: topic, part: partition, off: offset}
}

// Init reads the record and what the ledger says about it.
func (d *Detail) Init() tea.Cmd {
	ctx, be, topic, p, o := d.ctx, d.o.Backend, d.topic, d.part, d.off
	return func() tea.Msg {
		rec, err := be.Get(ctx, topic, p, o)
		if ignoreCancel(err) == nil && err != nil {
			return nil
		}
		var mark *replay.ReplayMark
		if err == nil {
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

// Keys of the record view.
var (
	keyUp   = key.NewBinding(key.WithKeys("up", "k"))
	keyDown = key.NewBinding(key.WithKeys("down", "j"))
	keyPgUp = key.NewBinding(key.WithKeys("pgup", "ctrl+b", "b"))
	keyPgDn = key.NewBinding(key.WithKeys("pgdown", "ctrl+f", "f", " "))
	keyHome = key.NewBinding(key.WithKeys("home", "g"))
	keyEnd  = key.NewBinding(key.WithKeys("end", "G"))
)

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
		page := max(d.h-1, 1)
		switch {
		case key.Matches(msg, KeyReveal):
			d.reveal = !d.reveal
			d.render()
			if d.reveal {
				return d, view.Status("secrets revealed in this record view; v masks them again")
			}
			return d, view.Status("secrets masked")
		case key.Matches(msg, keyUp):
			d.top--
		case key.Matches(msg, keyDown):
			d.top++
		case key.Matches(msg, keyPgUp):
			d.top -= page
		case key.Matches(msg, keyPgDn):
			d.top += page
		case key.Matches(msg, keyHome):
			d.top = 0
		case key.Matches(msg, keyEnd):
			d.top = len(d.lines)
		}
		d.clamp()
	case tea.MouseMsg:
		switch msg.Button {
		case tea.MouseButtonWheelUp:
			d.top -= 3
		case tea.MouseButtonWheelDown:
			d.top += 3
		}
		d.clamp()
	}
	return d, nil
}

func (d *Detail) clamp() {
	d.top = min(d.top, max(len(d.lines)-d.h, 0))
	d.top = max(d.top, 0)
}

// valueLimit caps the value bytes rendered: enough for any real event, small enough that a
// 1 MiB payload costs nothing to draw.
const valueLimit = 16 << 10

// render builds the lines once per record (and per reveal), sanitised and cut to the width.
func (d *Detail) render() {
	d.lines = nil
	w := max(d.w, 20)
	add := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			if ansi.StringWidth(l) > w {
				l = ansi.Truncate(l, w, "…")
			}
			d.lines = append(d.lines, l)
		}
	}
	field := func(k, v string) {
		add(theme.HeaderKey.Render(fmt.Sprintf("%-10s ", k)) + termsafe.Truncate(v, max(w-11, 10)))
	}
	if d.err != nil {
		add(theme.Error.Render(termsafe.String(d.err.Error())))
		return
	}
	r := d.rec
	if r == nil {
		add(theme.Dim.Render("reading the record…"))
		return
	}
	now := d.o.Now()
	ts := r.Timestamp
	field("Record", fmt.Sprintf("%s [%d] @ %d", r.Topic, r.Partition, r.Offset))
	field("Time", ts.UTC().Format("2006-01-02 15:04:05Z")+" ("+table.Ago(now, &ts)+" ago)")
	field("Key", keyText(r.Key))
	field("Error", dash(r.ErrorSource)+" · "+dash(r.ErrorCode)+"  ("+string(r.Format)+")")
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
	if r.Group != "" {
		field("Group", r.Group)
	}
	if r.Exception != "" {
		field("Exception", r.Exception)
	}
	reps := strconv.Itoa(r.ReplayCount) + " (x-opsctl-replay-count)"
	if d.mark != nil {
		reps += fmt.Sprintf("; the ledger has it replayed by run %s (count %d)", d.mark.RunID, d.mark.Count)
	}
	field("Replays", reps)
	if r.TargetGroup != "" {
		field("For group", r.TargetGroup)
	}
	for _, p := range r.Problems {
		add(theme.Warning.Render(termsafe.Truncate("! "+p, w)))
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
	add("")
	add(theme.Column.Render(fmt.Sprintf("VALUE (%s, %d bytes%s)", vv.Kind, vv.Size, note)))
	if vv.Text != "" {
		add(termsafe.Block(strings.TrimRight(vv.Text, "\n")))
	}
	if vv.Truncated {
		add(theme.Warning.Render(vv.Marker))
	}
	headers := dlt.MaskHeaders(r.Headers, mask)
	add("")
	add(theme.Column.Render(fmt.Sprintf("HEADERS (%d)", len(headers))))
	kw := 0
	for _, h := range headers {
		kw = max(kw, min(utf8.RuneCountInString(termsafe.String(h.Key)), 32))
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
		k := termsafe.Truncate(h.Key, 32)
		add("  " + k + strings.Repeat(" ", max(kw-utf8.RuneCountInString(k), 0)) + "  " + termsafe.Truncate(text, max(w-kw-4, 10)) + kind)
	}

	if r.Stacktrace != "" {
		lines := strings.Split(termsafe.Block(r.Stacktrace), "\n")
		add("")
		add(theme.Column.Render("STACK TRACE"))
		if len(lines) > 40 {
			more := len(lines) - 40
			lines = append(lines[:40], fmt.Sprintf("… %d more lines", more))
		}
		add("  " + strings.Join(lines, "\n  "))
	}
	d.clamp()
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// View draws the visible lines, exactly the body's height.
func (d *Detail) View() string {
	if d.lines == nil {
		d.render()
	}
	end := min(d.top+d.h, len(d.lines))
	out := append([]string(nil), d.lines[d.top:end]...)
	for len(out) < d.h {
		out = append(out, "")
	}
	return strings.Join(out, "\n")
}

// Title names the record.
func (d *Detail) Title() string {
	return fmt.Sprintf("record %d/%d", d.part, d.off)
}

// SetSize sets the body size and re-renders for the width.
func (d *Detail) SetSize(w, h int) {
	d.w, d.h = w, h
	d.render()
}

// Keys lists the bindings.
func (d *Detail) Keys() []key.Binding {
	return []key.Binding{KeyReveal, key.NewBinding(key.WithKeys("j"), key.WithHelp("↑↓/pgup/pgdn", "scroll"))}
}

// Capturing is never true.
func (d *Detail) Capturing() bool { return false }
