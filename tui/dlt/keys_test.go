package dlt_test

import (
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/tui/tuitest"
)

// TestDLTLiveFilter: on the records screen the `/` filter narrows the list while it is typed,
// before enter, and esc in the filter brings every record of the group back.
func TestDLTLiveFilter(t *testing.T) {
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	openRecords(t, p)
	p.Type("/1") // no enter: keys 10, 12, 14, 16, 18 in this group
	p.WaitFor("5 matching of 30 scanned")
	p.Type("6")
	p.WaitFor("1 matching of 30 scanned")
	p.Key(tea.KeyEsc)
	p.WaitFor("15 matching of 30 scanned")
	p.Quit()
}
