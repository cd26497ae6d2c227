package dlt_test

import (
	"slices"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/tui/tuitest"
)

// TestDLTLiveFilter: on the records screen the `/` filter narrows the list while it is typed,
// before enter, and esc in the filter brings every record of the group back.
func TestDLTLiveFilter(t *testing.T) {
	t.Parallel()
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

// rowsOf returns the first column (P/OFFSET) of the records table's rows on screen, in order.
func rowsOf(screen string) []string {
	var out []string
	on := false
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, "P/OFFSET") {
			on = true
			continue
		}
		if !on {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(strings.TrimPrefix(l, "●"), " "))
		if len(f) == 0 || !strings.Contains(f[0], "/") {
			break
		}
		out = append(out, f[0])
	}
	return out
}

// TestDLTRecordsOrder: a group's records list newest first, partitions merged by timestamp;
// shift+T reverses that, shift+P lists by partition and offset (the order `opsctl dlt list`
// prints) and again reverses it. The unfiltered list, which has no timestamps before it reads a
// window, lists each partition from its newest offset down. The cursor keeps its record.
func TestDLTRecordsOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cases := []struct {
		keys, title string
		want        []string
	}{
		// Order ids 30, 28, 26… at 03:00:30, :28, :26… on partitions id%3.
		{"", "TIME (UTC)↓", []string{"0/9", "1/9", "2/8", "0/7", "1/7", "2/6"}},
		{"T", "TIME (UTC)↑", []string{"2/0", "1/1", "0/1", "2/2", "1/3", "0/3"}},
		{"P", "P/OFFSET↑", []string{"0/1", "0/3", "0/5", "0/7", "0/9", "1/1"}},
		{"PP", "P/OFFSET↓", []string{"2/8", "2/6", "2/4", "2/2", "2/0", "1/9"}},
	}
	for _, c := range cases {
		p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
		openRecords(t, p)
		if c.keys != "" {
			p.Type(c.keys)
			p.WaitFor(c.title)
		}
		screen := p.Screen()
		if !strings.Contains(screen, c.title) {
			t.Errorf("after %q the list is not marked %s:\n%s", c.keys, c.title, screen)
		}
		got := rowsOf(screen)
		if len(got) != 15 || !slices.Equal(got[:len(c.want)], c.want) {
			t.Errorf("after %q the rows are %v, want them to start %v", c.keys, got, c.want)
		}
	}

	// The cursor stays on its record across a re-sort: the third row (2/8), then P.
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	openRecords(t, p)
	p.Type("jjP")
	p.WaitFor("P/OFFSET↑")
	p.Key(tea.KeyEnter)
	p.WaitFor("record 2/8")
	p.Quit()

	// All records, unfiltered: partition 0 (order ids 3…30 at offsets 0…9) from offset 9 down.
	p = tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor(ordersDLT, "30")
	p.Type("jA")
	p.WaitFor("30 records", "03:00:30")
	if got := rowsOf(p.Screen()); len(got) < 3 || !slices.Equal(got[:3], []string{"0/9", "0/8", "0/7"}) {
		t.Errorf("all records start %v, want 0/9 0/8 0/7", got)
	}
}
