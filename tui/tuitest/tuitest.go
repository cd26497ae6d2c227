// Package tuitest drives TUI views in tests the way a user does: a real Bubble Tea program
// (teatest) at a fixed terminal size, keys typed into it, and the final screen compared with a
// golden file named after the test and the size (testdata/TestCanaryBoard/80x24.golden).
// Golden files are rewritten with `go test -update` (the flag teatest's golden package
// registers).
package tuitest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/come2us/opsctl/pkg/goldentest"
)

// Sizes are the terminal sizes every screen is checked at.
var Sizes = [][2]int{{80, 24}, {120, 40}}

// Timeout bounds every wait of a test; a screen that never appears fails the test. It is generous
// because a loaded 2-core machine (the whole suite running) can take many seconds for a first screen.
const Timeout = 60 * time.Second

// Program is a running Bubble Tea program under test.
type Program struct {
	t  testing.TB
	tm *teatest.TestModel
	W  int
	H  int
}

// Start runs m in a teatest program of w×h cells.
func Start(t testing.TB, m tea.Model, w, h int) *Program {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	return &Program{t: t, tm: tm, W: w, H: h}
}

// Size is "80x24", as used in golden file names.
func (p *Program) Size() string { return fmt.Sprintf("%dx%d", p.W, p.H) }

// WaitFor waits until the drawn output contains every one of texts (escape sequences
// removed, so a coloured word still matches).
func (p *Program) WaitFor(texts ...string) {
	p.t.Helper()
	var seen []byte
	teatest.WaitFor(p.t, p.tm.Output(), func(b []byte) bool {
		seen = b
		plain := ansi.Strip(string(b))
		for _, s := range texts {
			if !strings.Contains(plain, s) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(Timeout), teatest.WithCheckInterval(20*time.Millisecond))
	_ = seen
}

// Type sends the runes of s as key presses.
func (p *Program) Type(s string) { p.tm.Type(s) }

// Key sends one special key (tea.KeyEnter, tea.KeyEsc, tea.KeySpace...).
func (p *Program) Key(k tea.KeyType) { p.tm.Send(tea.KeyMsg{Type: k}) }

// Send sends any message.
func (p *Program) Send(m tea.Msg) { p.tm.Send(m) }

// Quit ends the program with ctrl+c and returns the final model.
func (p *Program) Quit() tea.Model {
	p.t.Helper()
	p.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	return p.tm.FinalModel(p.t, teatest.WithFinalTimeout(Timeout))
}

// Screen quits and returns the final screen as plain text.
func (p *Program) Screen() string {
	p.t.Helper()
	return Plain(p.Quit().View())
}

// Plain strips escape sequences and trailing spaces of each line.
func Plain(s string) string {
	lines := strings.Split(ansi.Strip(s), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// Golden compares got with testdata/<TestName>/<name>.golden (pkg/goldentest, on
// charmbracelet/x/exp/golden); go test -update rewrites it.
func Golden(t *testing.T, name, got string) {
	t.Helper()
	goldentest.Equal(t, name, []byte(got))
}

// CheckSize fails the test when screen is not exactly h lines of at most w cells.
func CheckSize(t testing.TB, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Errorf("screen has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d cells wide (max %d): %q", i, n, w, l)
		}
	}
}

// EachSize runs fn as a subtest per size of Sizes, named "80x24" and so on.
func EachSize(t *testing.T, fn func(t *testing.T, w, h int)) {
	t.Helper()
	for _, s := range Sizes {
		t.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(t *testing.T) { fn(t, s[0], s[1]) })
	}
}

// GoldenScreen checks screen against testdata/<Test>/<size>.golden, the path of the subtest
// (TestCanaryBoard/80x24 → testdata/TestCanaryBoard/80x24.golden), and checks its size.
func GoldenScreen(t *testing.T, screen string, w, h int) {
	t.Helper()
	CheckSize(t, screen, w, h)
	golden.RequireEqual(t, []byte(screen))
}

// Driver runs a model synchronously, without a terminal: each message goes to Update and the
// commands Update returns run one after another (each must finish within Timeout), their
// messages fed back until none is left. A test can then look at View() after every key, which
// a running program does not let it do. Commands that wait for something that never comes (a
// refresh timer, a watch) would stall it: drive views configured without them.
type Driver struct {
	t testing.TB
	// Model is the model after the last message.
	Model tea.Model
}

// Drive starts m at w×h cells and runs its Init.
func Drive(t testing.TB, m tea.Model, w, h int) *Driver {
	t.Helper()
	d := &Driver{t: t, Model: m}
	d.Send(tea.WindowSizeMsg{Width: w, Height: h})
	d.run(m.Init())
	return d
}

// Send delivers msg and everything the commands it starts send back.
func (d *Driver) Send(msg tea.Msg) {
	d.t.Helper()
	var cmd tea.Cmd
	d.Model, cmd = d.Model.Update(msg)
	d.run(cmd)
}

// Screen is the model's view as plain text.
func (d *Driver) Screen() string { return Plain(d.Model.View()) }

func (d *Driver) run(cmd tea.Cmd) {
	d.t.Helper()
	if cmd == nil {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-timer.C:
		d.t.Fatalf("a command did not finish within %s", Timeout)
	}
	switch msg := msg.(type) {
	case nil, tea.QuitMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	default:
		d.Send(msg)
	}
}

// CheckDrawn fails the test when screen (as View returns it, styled) is not exactly h lines of
// at most w cells, or holds a control character other than the line breaks and the SGR escapes
// of its styles: a raw tab or carriage return moves the terminal's cursor where the renderer does
// not expect, and the screen scrolls or keeps old text.
func CheckDrawn(t testing.TB, screen string, w, h int) {
	t.Helper()
	CheckSize(t, screen, w, h)
	for i, l := range strings.Split(ansi.Strip(screen), "\n") {
		for _, r := range l {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Errorf("line %d holds control character %U: %q", i, r, l)
				break
			}
		}
	}
}
