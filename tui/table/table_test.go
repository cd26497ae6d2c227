package table

import (
	"fmt"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

func TestVirtualWindows(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	m := New(Column{Title: "A", Width: 3}, Column{Title: "B"})
	m.SetSize(20, 4)
	m.SetAll([][]string{{"toolongvalue", "주문주문주문주문주문주문"}}, []string{"k"})
	for i, l := range strings.Split(m.View(), "\n") {
		if w := lipgloss.Width(l); w > 20 {
			t.Fatalf("line %d width %d: %q", i, w, l)
		}
	}
}

func TestMouseWheelAndGrowth(t *testing.T) {
	t.Parallel()
	m := New(Column{Title: "K", Width: 4}, Column{Title: "V"}, Column{Title: "HIDDEN", Width: 6})
	m.SetSize(30, 5)
	var asked [][2]int
	m.SetNeed(10, func(from, to int) tea.Cmd {
		asked = append(asked, [2]int{from, to})
		return func() tea.Msg { return nil }
	})
	m.Extend(5) // a scan found 5 rows so far
	m.Load()
	m.SetWindow(0, [][]string{{"0", "a", "x"}, {"1", "b", "x"}, {"2", "c", "x"}, {"3", "d", "x"}, {"4", "e", "x"}}, []string{"0", "1", "2", "3", "4"})
	m.Extend(50) // it found more: the loaded rows stay
	if r, ok := m.Row(4); !ok || r[1] != "e" {
		t.Fatalf("row 4 lost on growth: %v %v", r, ok)
	}
	m, _ = m.Update(tea.MouseMsg{Button: tea.MouseButtonWheelDown, Action: tea.MouseActionPress})
	m, _ = m.Update(tea.MouseMsg{Button: tea.MouseButtonWheelDown, Action: tea.MouseActionPress})
	if m.Cursor() != 6 {
		t.Fatalf("wheel: cursor %d, want 6", m.Cursor())
	}
	if last := asked[len(asked)-1]; last[0] != 0 || last[1] != 10 {
		t.Fatalf("rows 5-9 are on screen but were not asked for: %v", asked)
	}
	m.Rewrite(func(_ int, k string, row []string) []string { return []string{row[0], row[1] + "!", row[2]} })
	if r, _ := m.Row(2); r[1] != "c!" {
		t.Fatalf("rewrite: %v", r)
	}
	m.SetHidden(2, true)
	if out := m.View(); strings.Contains(out, "HIDDEN") || !strings.Contains(out, "d!") {
		t.Fatalf("hidden column drawn:\n%s", out)
	}
	m, _ = m.Update(tea.MouseMsg{Button: tea.MouseButtonWheelUp, Action: tea.MouseActionPress})
	if m.Cursor() != 3 {
		t.Fatalf("wheel up: cursor %d, want 3", m.Cursor())
	}
}

// TestFitColumns: content-sized columns take what their cells need (a long source is not cut
// while an empty code column sits wide), the message takes the rest, and on a narrow screen
// they give room back so the flexible column keeps some.
func TestFitColumns(t *testing.T) {
	t.Parallel()
	m := New(Column{Title: "SOURCE", Fit: 28}, Column{Title: "CODE", Fit: 32}, Column{Title: "MESSAGE"})
	m.SetSize(80, 4)
	m.SetAll([][]string{{"notification-service-group", "", "mail server down"}, {"order-service", "", "lock"}}, nil)
	w := m.widths()
	if w[0] != len("notification-service-group") || w[1] != len("CODE") || w[2] != 80-2-3-w[0]-w[1] {
		t.Fatalf("widths %v", w)
	}
	if out := m.View(); !strings.Contains(out, "notification-service-group") {
		t.Fatalf("the source is cut:\n%s", out)
	}
	m.SetSize(40, 4)
	w = m.widths()
	if w[2] < 12 || w[0]+w[1]+w[2]+2+3 > 40 {
		t.Fatalf("narrow widths %v", w)
	}
}
