package table

import (
	"fmt"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

func TestVirtualWindows(t *testing.T) {
	m := New(Column{Title: "OFFSET", Width: 8}, Column{Title: "VALUE"})
	m.SetSize(40, 6)
	var asked [][2]int
	m.SetNeed(100, func(from, to int) tea.Cmd {
		asked = append(asked, [2]int{from, to})
		return func() tea.Msg { return nil }
	})
	m.SetTotal(1_000_000)
	if cmd := m.Load(); cmd == nil || len(asked) != 1 || asked[0] != [2]int{0, 100} {
		t.Fatalf("first load asked %v", asked)
	}
	if m.Load() != nil {
		t.Fatal("asked again for a pending window")
	}
	m, _ = m.Update(tea.KeyMsg{Type: tea.KeyEnd})
	if m.Cursor() != 999_999 || asked[len(asked)-1] != [2]int{999_900, 1_000_000} {
		t.Fatalf("end: cursor %d asked %v", m.Cursor(), asked)
	}
	rows := make([][]string, 100)
	keys := make([]string, 100)
	for i := range rows {
		rows[i] = []string{fmt.Sprint(999_900 + i), "\x1b[31mred\x1b[0m"}
		keys[i] = fmt.Sprint(999_900 + i)
	}
	m.SetWindow(999_900, rows, keys)
	out := m.View()
	if strings.Contains(out, "\x1b[31m") {
		t.Fatal("raw escape reached the screen")
	}
	if !strings.Contains(out, "999999") || len(strings.Split(out, "\n")) != 6 {
		t.Fatalf("view:\n%s", out)
	}
	m.Toggle()
	if got := m.Selected(); len(got) != 1 || got[0] != "999999" {
		t.Fatalf("selected %v", got)
	}
}

func TestFitWidths(t *testing.T) {
	m := New(Column{Title: "A", Width: 3}, Column{Title: "B"})
	m.SetSize(20, 4)
	m.SetAll([][]string{{"toolongvalue", "주문주문주문주문주문주문"}}, []string{"k"})
	for i, l := range strings.Split(m.View(), "\n") {
		if w := lipgloss.Width(l); w > 20 {
			t.Fatalf("line %d width %d: %q", i, w, l)
		}
	}
}
