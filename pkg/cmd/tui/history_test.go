package tui

import (
	"context"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/tui/tuitest"
)

// TestHistoryRoutes: `:history` lists every DLT's replay runs, `:history TOPIC` one DLT's, and
// h on the DLT topics list opens the selected topic's.
func TestHistoryRoutes(t *testing.T) {
	t.Parallel()
	f, _ := env(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := newSession(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	m, err := s.model("history")
	if err != nil {
		t.Fatal(err)
	}
	p := tuitest.Start(t, m, 120, 40)
	p.WaitFor("RUN", "CAME BACK", "no replay in the ledger yet")
	p.Type(":history orders-failed.DLT")
	p.Key(tea.KeyEnter)
	p.WaitFor("history › orders-failed.DLT", "no replay of orders-failed.DLT in the ledger yet")
	p.Type(":dlt")
	p.Key(tea.KeyEnter)
	p.WaitFor("orders-failed.DLT", "ORIGIN LAG", "h replay history")
	p.Type("h")
	p.WaitFor("history › ")
	p.Quit()
}
