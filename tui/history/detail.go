package history

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Detail is one run and what became of its records: those that came back to a dead-letter
// topic by error source and code, with a sample of each, and per target topic and consumer
// group how many of the replayed records it has read and its lag there, as `opsctl dlt outcome`
// prints them.
type Detail struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	run    replay.Run
	out    *replay.Outcome
	err    error
	gen    int
	vp     viewport.Model
	w, h   int
}

type detailTickMsg struct{ owner *Detail }

type outcomeMsg struct {
	owner *Detail
	gen   int
	out   *replay.Outcome
	err   error
}

// newDetail opens run; out is its outcome when the list has it already, else it is computed.
func newDetail(o Options, run replay.Run, out *replay.Outcome) *Detail {
	ctx, cancel := context.WithCancel(o.Ctx)
	vp := view.NewViewport()
	return &Detail{o: o, ctx: ctx, cancel: cancel, run: run, out: out, vp: vp}
}

// Init computes the outcome unless the list had it, and starts the clock of the run's age.
func (d *Detail) Init() tea.Cmd {
	if d.out != nil {
		return d.tick()
	}
	return tea.Batch(d.load(), d.tick())
}

func (d *Detail) tick() tea.Cmd {
	if d.o.Tick < 0 {
		return nil
	}
	return view.After(d.ctx, d.o.Tick, detailTickMsg{owner: d})
}

// load computes the run's outcome through the engine's Outcomes, within the timeout.
func (d *Detail) load() tea.Cmd {
	d.gen++
	d.err = nil
	ctx, be, run, gen, timeout := d.ctx, d.o.Backend, d.run, d.gen, d.o.Timeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		outs, err := be.Outcomes(ctx, []replay.Run{run})
		if errors.Is(err, context.Canceled) {
			return nil
		}
		var out *replay.Outcome
		if err == nil {
			out = outs[run.RunID]
		}
		return outcomeMsg{owner: d, gen: gen, out: out, err: err}
	}
}

// Close abandons the read.
func (d *Detail) Close() { d.cancel() }

// Update handles the outcome, the clock and scrolling.
func (d *Detail) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case outcomeMsg:
		if msg.owner != d || msg.gen != d.gen {
			return d, nil
		}
		d.out, d.err = msg.out, msg.err
		d.layout()
		if msg.err != nil {
			return d, view.Error(fmt.Errorf("what became of run %s is unknown (ctrl+r tries again): %w", ShortID(d.run.RunID), msg.err))
		}
	case detailTickMsg:
		if msg.owner != d {
			return d, nil
		}
		d.layout()
		return d, d.tick()
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, KeyReload):
			cmd := d.load()
			d.layout()
			return d, cmd
		}
		return d, view.Scroll(&d.vp, msg)
	case tea.MouseMsg:
		return d, view.Scroll(&d.vp, msg)
	}
	return d, nil
}

// fieldWidth is the width of a field's label ("Reason    ").
const fieldWidth = 10

// lines draws the run and its outcome; every value from Kafka is sanitised to one line.
func (d *Detail) lines() []string {
	var out []string
	field := func(k, v string) {
		out = append(out, theme.HeaderKey.Render(fmt.Sprintf("%-*s", fieldWidth, k))+termsafe.Line(v))
	}
	r := d.run
	now := d.o.Now()
	started := r.Started
	field("Run", r.RunID)
	field("DLT", dltName(r))
	out = append(out, theme.HeaderKey.Render(fmt.Sprintf("%-*s", fieldWidth, "State"))+stateStyle(r.Status).Render(termsafe.Line(r.Status)))
	field("Started", started.UTC().Format("2006-01-02 15:04:05Z")+" ("+table.Ago(now, &started)+" ago) by "+r.Actor)
	if r.Finished != nil {
		field("Finished", r.Finished.UTC().Format("2006-01-02 15:04:05Z"))
	}
	field("Reason", termsafe.Dash(r.Reason))
	field("Records", fmt.Sprintf("%d replayed, %d skipped (replayed before), %d refused, %d failed",
		r.Counts.Replayed, r.Counts.Skipped, r.Counts.Refused, r.Counts.Failed))
	if r.Group != "" {
		field("Group", r.Group+" (the only group meant to process them)")
	}
	if r.Error != "" {
		out = append(out, theme.HeaderKey.Render(fmt.Sprintf("%-*s", fieldWidth, "Error"))+theme.Error.Render(termsafe.Line(r.Error)))
	}
	out = append(out, "")
	switch {
	case d.err != nil:
		return append(out, theme.Error.Render(termsafe.Line("what became of the records is unknown: "+d.err.Error())))
	case d.out == nil:
		return append(out, theme.Dim.Render("reading what became of the replayed records "+pending))
	}
	o := d.out
	out = append(out, theme.Title.Render("Came back"), fmt.Sprintf("%d of %d replayed records failed again and came back (%d dead letters read)",
		o.CameBack, o.Replayed, o.Scanned))
	if o.Replayed >= replay.DoesNotHelpMin && replay.DoesNotHelp(int64(o.Replayed), int64(o.CameBack)) {
		out = append(out, theme.Error.Render("Most of them failed again: replaying did not help; fix the cause first."))
	}
	if o.CameBack > 0 {
		rows := [][]string{{"COUNT", "ERROR SOURCE", "ERROR CODE", "SAMPLE"}}
		for _, ec := range o.ByError {
			rows = append(rows, []string{fmt.Sprint(ec.Count), ec.ErrorSource, ec.ErrorCode, ec.Sample.String()})
		}
		out = append(out, grid(rows)...)
	}
	out = append(out, "", theme.Title.Render("Consumed"))
	if len(o.Targets) == 0 {
		return append(out, theme.Dim.Render("no target topic in the ledger for this run"))
	}
	for _, tp := range o.Targets {
		out = append(out, termsafe.Line(fmt.Sprintf("%s: %d replayed records", tp.Topic, tp.Replayed)))
		if len(tp.Groups) == 0 {
			out = append(out, theme.Dim.Render("  no consumer group has committed offsets here: none of them is consumed"))
			continue
		}
		rows := [][]string{{"CONSUMER GROUP", "CONSUMED", "PENDING", "LAG"}}
		for _, g := range tp.Groups {
			name := g.Group
			if g.Targeted {
				name += " (--group)"
			}
			rows = append(rows, []string{name, fmt.Sprint(g.Consumed), fmt.Sprint(g.Pending), fmt.Sprint(g.Lag)})
		}
		out = append(out, grid(rows)...)
	}
	return out
}

// grid lays rows out in columns sized to their widest cell; the first row is the header.
// Cells are sanitised to one line first.
func grid(rows [][]string) []string {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], ansi.StringWidth(termsafe.Line(c)))
		}
	}
	out := make([]string, len(rows))
	for n, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			c = termsafe.Line(c)
			if i < len(r)-1 {
				c += strings.Repeat(" ", widths[i]-ansi.StringWidth(c))
			}
			cells[i] = c
		}
		line := "  " + strings.Join(cells, "  ")
		if n == 0 {
			line = theme.Column.Render(line)
		}
		out[n] = line
	}
	return out
}

// layout fits the lines to the width (cut, never wrapped: the tables stay aligned).
func (d *Detail) layout() {
	w := max(d.w, 20)
	lines := d.lines()
	for i, l := range lines {
		lines[i] = termsafe.Cut(l, w)
	}
	d.vp.Width = w
	d.vp.Height = max(d.h, 1)
	d.vp.SetContent(strings.Join(lines, "\n"))
	if d.vp.TotalLineCount() > d.vp.Height && d.h > 1 {
		d.vp.Height = d.h - 1
		d.vp.SetContent(strings.Join(lines, "\n"))
	}
}

// View draws the run and, when it is longer than the screen, where the view is.
func (d *Detail) View() string {
	body := d.vp.View()
	if d.vp.Height >= d.h {
		return body
	}
	first := d.vp.YOffset + 1
	last := min(d.vp.YOffset+d.vp.Height, d.vp.TotalLineCount())
	pos := fmt.Sprintf("lines %d–%d of %d · g/G top/end", first, last, d.vp.TotalLineCount())
	return body + "\n" + theme.Dim.Render(termsafe.Cut(pos, max(d.w, 1)))
}

// Title names the run.
func (d *Detail) Title() string { return "run " + termsafe.Truncate(ShortID(d.run.RunID), 13) }

// SetSize sets the body size and lays the run out again for the width.
func (d *Detail) SetSize(w, h int) {
	d.w, d.h = w, h
	d.layout()
}

// Keys lists the bindings.
func (d *Detail) Keys() []key.Binding {
	return []key.Binding{KeyReload, key.NewBinding(key.WithKeys("j"), key.WithHelp("↑↓/pgup/pgdn/g/G", "scroll"))}
}

// Capturing is never true.
func (d *Detail) Capturing() bool { return false }
