// Package modal is the TUI's dialog: a box drawn over a view that states what an action will
// do, takes the inputs it needs (a reason, a weight, a target group), asks for confirmation,
// then shows the action's progress and keeps its result on screen until dismissed.
//
// Every destructive action of the TUI goes through one, k9s style: the box names what will
// happen (the commit that will be pushed, the topics that will receive records) before anything
// is written. A modal never performs I/O itself; its owner runs the action in a tea.Cmd and feeds
// progress back through Progress, Log and Finish.
package modal

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/theme"
)

// State is where a modal is in its life.
type State int

// States of a modal.
const (
	// Asking shows the plan and the inputs and waits for confirm or cancel.
	Asking State = iota
	// Running shows progress; keys are ignored until the action finishes.
	Running
	// Done shows the result until the user dismisses it.
	Done
)

// Outcome is what a key press did to the modal.
type Outcome int

// Outcomes of Update.
const (
	// None: nothing for the owner to do.
	None Outcome = iota
	// Confirmed: the user confirmed and every input is valid; the owner starts the action.
	Confirmed
	// Cancelled: the user backed out before anything ran; nothing was changed.
	Cancelled
	// Closed: the user dismissed the result.
	Closed
)

// Keys of a modal, declared once for the help bar.
var (
	KeyConfirm = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "confirm"))
	KeyCancel  = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))
	KeyNext    = key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab", "next field"))
	KeyPrev    = key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab", "previous field"))
	KeyYes     = key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes"))
	KeyNo      = key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "no"))
	KeyClose   = key.NewBinding(key.WithKeys("enter", "esc"), key.WithHelp("enter/esc", "close"))
)

// Field is one input of a modal.
type Field struct {
	Label    string
	input    textinput.Model
	validate func(string) error
	err      string
}

// Model is one dialog. Build it with New, add inputs with Field, then hand it key messages.
type Model struct {
	title   string
	lines   []string
	fields  []*Field
	focus   int
	state   State
	action  string
	danger  bool
	bar     progress.Model
	frac    float64
	barText string
	log     []string
	result  []string
	failed  bool
}

// New returns a modal titled title whose body shows lines (sanitised when drawn; a line may
// hold several lines of text, such as a diff).
func New(title string, lines ...string) *Model {
	bar := progress.New(progress.WithSolidFill(string(theme.Accent)), progress.WithColorProfile(lipgloss.ColorProfile()),
		progress.WithFillCharacters('█', '░'))
	return &Model{title: title, lines: lines, action: "confirm", bar: bar, frac: -1}
}

// Action names the confirm key's action in the box ("commit and push", "replay 3 records").
func (m *Model) Action(label string) *Model { m.action = label; return m }

// Danger draws the box in the error colour, for rollbacks and other one-way doors.
func (m *Model) Danger() *Model { m.danger = true; return m }

// Field adds a text input. validate, when set, must accept the value before Confirmed is
// returned; its error is shown under the input.
func (m *Model) Field(label, placeholder, value string, validate func(string) error) *Model {
	in := textinput.New()
	in.Cursor.SetMode(cursor.CursorStatic) // no blink ticks: stable screens, no timers
	in.Prompt = ""
	in.Placeholder = placeholder
	in.CharLimit = 300
	in.SetValue(value)
	f := &Field{Label: label, input: in, validate: validate}
	if len(m.fields) == 0 {
		f.input.Focus()
	}
	m.fields = append(m.fields, f)
	return m
}

// Value returns the value of the i-th field (trimmed).
func (m *Model) Value(i int) string {
	if i < 0 || i >= len(m.fields) {
		return ""
	}
	return strings.TrimSpace(m.fields[i].input.Value())
}

// State returns the modal's state.
func (m *Model) State() State { return m.state }

// SetLines replaces the body, e.g. when a plan computed in the background arrives.
func (m *Model) SetLines(lines ...string) { m.lines = lines }

// Start switches to Running with a first progress line.
func (m *Model) Start(text string) {
	m.state = Running
	m.barText = text
	for _, f := range m.fields {
		f.input.Blur()
	}
}

// Progress sets the bar (frac in 0..1; negative hides the bar) and its caption.
func (m *Model) Progress(frac float64, text string) {
	m.frac = frac
	if text != "" {
		m.barText = text
	}
}

// Log appends a progress line (the last few are shown).
func (m *Model) Log(line string) {
	m.log = append(m.log, line)
	if len(m.log) > 50 {
		m.log = m.log[len(m.log)-50:]
	}
}

// Finish switches to Done and shows the result lines; failed draws them as an error.
func (m *Model) Finish(failed bool, lines ...string) {
	m.state = Done
	m.failed = failed
	m.result = lines
}

// Keys are the bindings active in the current state, for the help bar.
func (m *Model) Keys() []key.Binding {
	switch m.state {
	case Running:
		return nil
	case Done:
		return []key.Binding{KeyClose}
	}
	if len(m.fields) > 1 {
		return []key.Binding{KeyConfirm, KeyNext, KeyCancel}
	}
	if len(m.fields) == 0 {
		return []key.Binding{KeyConfirm, KeyYes, KeyCancel}
	}
	return []key.Binding{KeyConfirm, KeyCancel}
}

// Update handles a message (keys and the inputs' cursor blinks) and says what happened.
func (m *Model) Update(msg tea.Msg) (Outcome, tea.Cmd) {
	km, isKey := msg.(tea.KeyMsg)
	switch m.state {
	case Running:
		return None, nil
	case Done:
		if isKey && key.Matches(km, KeyClose) {
			return Closed, nil
		}
		return None, nil
	}
	if !isKey {
		if len(m.fields) == 0 {
			return None, nil
		}
		var cmd tea.Cmd
		m.fields[m.focus].input, cmd = m.fields[m.focus].input.Update(msg)
		return None, cmd
	}
	switch {
	case key.Matches(km, KeyCancel):
		return Cancelled, nil
	case len(m.fields) == 0 && key.Matches(km, KeyNo):
		return Cancelled, nil
	case len(m.fields) == 0 && key.Matches(km, KeyYes, KeyConfirm):
		return Confirmed, nil
	case len(m.fields) > 0 && key.Matches(km, KeyNext):
		return None, m.move(1)
	case len(m.fields) > 0 && key.Matches(km, KeyPrev):
		return None, m.move(-1)
	case key.Matches(km, KeyConfirm):
		if m.focus < len(m.fields)-1 {
			if m.check(m.focus) {
				return None, m.move(1)
			}
			return None, nil
		}
		for i := range m.fields {
			if !m.check(i) {
				m.setFocus(i)
				return None, nil
			}
		}
		return Confirmed, nil
	}
	var cmd tea.Cmd
	f := m.fields[m.focus]
	f.input, cmd = f.input.Update(msg)
	f.err = ""
	return None, cmd
}

func (m *Model) check(i int) bool {
	f := m.fields[i]
	f.err = ""
	if f.validate != nil {
		if err := f.validate(strings.TrimSpace(f.input.Value())); err != nil {
			f.err = err.Error()
			return false
		}
	}
	return true
}

func (m *Model) move(d int) tea.Cmd {
	return m.setFocus((m.focus + d + len(m.fields)) % len(m.fields))
}

func (m *Model) setFocus(i int) tea.Cmd {
	m.fields[m.focus].input.Blur()
	m.focus = i
	return m.fields[i].input.Focus()
}

// View draws the box for a screen of width×height: as wide as its content needs, at most the
// screen less a margin, and never taller than the screen (the body is cut with a marker).
func (m *Model) View(width, height int) string {
	maxW := max(width-2, 20)
	inner := maxW - 4 // border and padding
	var body []string
	for _, l := range m.lines {
		for _, s := range strings.Split(termsafe.Block(strings.TrimRight(l, "\n")), "\n") {
			body = append(body, clip(s, inner))
		}
	}
	var tail []string
	for i, f := range m.fields {
		in := f.input
		in.Width = max(inner-lipgloss.Width(f.Label)-3, 8)
		label := theme.Column.Render(f.Label + ": ")
		if i == m.focus && m.state == Asking {
			label = theme.Selected.Render(f.Label + ": ")
		}
		tail = append(tail, label+in.View())
		if f.err != "" {
			tail = append(tail, theme.Error.Render(clip("  "+termsafe.String(f.err), inner)))
		}
	}
	switch m.state {
	case Running, Done:
		if m.frac >= 0 {
			bar := m.bar
			bar.Width = min(inner, 60)
			tail = append(tail, bar.ViewAs(min(m.frac, 1)))
		}
		// Progress lines matter while the action runs; once it is done the result replaces them.
		if m.state == Running {
			if m.barText != "" {
				tail = append(tail, theme.Dim.Render(clip(termsafe.String(m.barText), inner)))
			}
			for _, l := range lastN(m.log, 6) {
				tail = append(tail, clip("· "+termsafe.String(l), inner))
			}
		}
	}
	if m.state == Done {
		st := theme.OK
		mark := "✓ "
		if m.failed {
			st, mark = theme.Error, "✗ "
		}
		for i, l := range m.result {
			p := "  "
			if i == 0 {
				p = mark
			}
			for _, s := range strings.Split(termsafe.Block(l), "\n") {
				tail = append(tail, st.Render(clip(p+s, inner)))
				p = "  "
			}
		}
	}
	tail = append(tail, "", theme.Dim.Render(m.hint()))

	// Keep the inputs, progress and result visible: cut the body first. The box spends 2 lines
	// on its border, 2 on the title and 1 between body and tail.
	room := max(height-5-len(tail), 1)
	if len(body) > room {
		cut := len(body) - room + 1
		body = append(body[:room-1], theme.Dim.Render(fmt.Sprintf("… %d more lines", cut)))
	}
	content := strings.Join(append(append([]string{theme.Title.Render(clip(m.title, inner)), ""}, body...), append([]string{""}, tail...)...), "\n")
	w := 0
	for _, l := range strings.Split(content, "\n") {
		w = max(w, lipgloss.Width(l))
	}
	style := theme.Modal
	if m.danger {
		style = style.BorderForeground(theme.Bad)
	}
	return style.Width(min(max(w, 30), inner) + 2).Render(content)
}

func (m *Model) hint() string {
	switch m.state {
	case Running:
		return "running…"
	case Done:
		return "enter/esc close"
	}
	if len(m.fields) == 0 {
		return "enter/y " + m.action + " · esc/n cancel"
	}
	if len(m.fields) > 1 {
		return "enter " + m.action + " · tab next field · esc cancel"
	}
	return "enter " + m.action + " · esc cancel"
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// clip cuts an already sanitised line to w cells with a marker.
func clip(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// Overlay draws box centred over bg, a width×height screen. The lines above and below the box
// stay visible so the user keeps their bearings; the lines the box covers are blanked beside
// it, so half-hidden words do not read as part of the dialog.
func Overlay(bg, box string, width, height int) string {
	lines := strings.Split(bg, "\n")
	for len(lines) < height {
		lines = append(lines, "")
	}
	bl := strings.Split(box, "\n")
	bw := lipgloss.Width(box)
	top := max((height-len(bl))/2, 0)
	left := max((width-bw)/2, 0)
	for i, b := range bl {
		y := top + i
		if y >= len(lines) {
			break
		}
		lines[y] = strings.Repeat(" ", left) + b
	}
	return strings.Join(lines[:height], "\n")
}
