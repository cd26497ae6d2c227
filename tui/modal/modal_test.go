package modal

import (
	"errors"
	"os"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

func keys(m *Model, ks ...tea.KeyMsg) Outcome {
	var out Outcome
	for _, k := range ks {
		out, _ = m.Update(k)
	}
	return out
}

func runes(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

var (
	enter = tea.KeyMsg{Type: tea.KeyEnter}
	esc   = tea.KeyMsg{Type: tea.KeyEsc}
	tab   = tea.KeyMsg{Type: tea.KeyTab}
)

func TestFieldsValidateBeforeConfirm(t *testing.T) {
	t.Parallel()
	needed := func(s string) error {
		if s == "" {
			return errors.New("a reason is required")
		}
		return nil
	}
	m := New("Replay 3?", "plan").Field("Group", "", "", nil).Field("Reason", "", "", needed)
	if out := keys(m, enter); out != None { // group is optional: enter moves to the reason
		t.Fatalf("enter on the first field: %v", out)
	}
	if out := keys(m, enter); out != None || !strings.Contains(m.View(80, 24), "a reason is required") {
		t.Fatalf("empty reason accepted: %v\n%s", out, m.View(80, 24))
	}
	if out := keys(m, runes("db fixed"), enter); out != Confirmed || m.Value(1) != "db fixed" || m.Value(0) != "" {
		t.Fatalf("confirm: %v, values %q %q", out, m.Value(0), m.Value(1))
	}
	m2 := New("Sync?")
	if keys(m2, runes("n")) != Cancelled || keys(New("Sync?"), runes("y")) != Confirmed || keys(New("Sync?").Field("x", "", "", nil), esc) != Cancelled {
		t.Fatal("y/n/esc")
	}
	m3 := New("A").Field("one", "", "", nil).Field("two", "", "", nil)
	keys(m3, tab, runes("2"))
	if m3.Value(1) != "2" || m3.Value(0) != "" {
		t.Fatalf("tab moves to the next field: %q %q", m3.Value(0), m3.Value(1))
	}
}

func TestRunningAndDone(t *testing.T) {
	t.Parallel()
	m := New("Replay?", "line")
	m.Start("replaying…")
	if keys(m, esc, enter, runes("q")) != None {
		t.Fatal("keys act while running")
	}
	m.Progress(0.5, "half")
	if v := m.View(80, 24); !strings.Contains(v, "50%") || !strings.Contains(v, "half") {
		t.Fatalf("progress not drawn:\n%s", v)
	}
	m.Finish(true, "failed: \x1b[31mboom")
	v := m.View(80, 24)
	if !strings.Contains(v, `✗ failed: \x1b[31mboom`) || strings.Contains(v, "half") {
		t.Fatalf("result:\n%s", v)
	}
	if keys(m, esc) != Closed {
		t.Fatal("esc does not close the result")
	}
}

// TestViewFitsTheScreen: a long body is cut with a marker so the box, its inputs and its
// result always fit; nothing from the body reaches the terminal raw.
func TestViewFitsTheScreen(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("diff line \x1b]0;title\x07\n", 60) + strings.Repeat("x", 300)
	m := New("Step order/prod?", body).Field("Reason", "", "", nil)
	for _, size := range [][2]int{{80, 24}, {120, 40}, {40, 12}} {
		v := m.View(size[0], size[1])
		lines := strings.Split(v, "\n")
		if len(lines) > size[1] {
			t.Errorf("%dx%d: box is %d lines", size[0], size[1], len(lines))
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > size[0] {
				t.Errorf("%dx%d: line %d wide: %q", size[0], size[1], ansi.StringWidth(l), l)
			}
		}
		if !strings.Contains(v, "more lines") || !strings.Contains(v, "Reason") || strings.ContainsAny(v, "\x1b\x07") {
			t.Errorf("%dx%d:\n%s", size[0], size[1], v)
		}
		screen := Overlay(strings.Repeat("background\n", size[1]), v, size[0], size[1])
		if n := len(strings.Split(screen, "\n")); n != size[1] {
			t.Errorf("overlay is %d lines, want %d", n, size[1])
		}
	}
}
