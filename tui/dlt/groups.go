package dlt

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/view"
)

// Groups is one DLT's records grouped by errorSource × errorCode. Its first row opens every
// record at once, without waiting for the grouping scan.
type Groups struct {
	o       Options
	ctx     context.Context
	cancel  context.CancelFunc
	topic   replay.TopicInfo
	tbl     table.Model
	stats   *replay.Stats
	started time.Time
	filter  string
	shown   []*replay.Group // nil entry: the "all records" row
	sort    table.Sort
}

// groupTitles are the groups' column titles; shift+S, C, N (count), F and L sort by them.
var groupTitles = []string{"SOURCE", "CODE", "COUNT", "FIRST", "LAST", "SAMPLE MESSAGE"}

type statsMsg struct {
	owner *Groups
	stats *replay.Stats
}

func newGroups(o Options, t replay.TopicInfo) *Groups {
	ctx, cancel := context.WithCancel(o.Ctx)
	tbl := table.New(
		table.Column{Title: "SOURCE", Fit: 28},
		table.Column{Title: "CODE", Fit: 40},
		table.Column{Title: "COUNT", Fit: 13},
		table.Column{Title: "FIRST", Width: 5},
		table.Column{Title: "LAST", Width: 5},
		table.Column{Title: "SAMPLE MESSAGE", Grow: 2},
	)
	g := &Groups{o: o, ctx: ctx, cancel: cancel, topic: t, tbl: tbl, started: o.Now(),
		sort: table.Sort{Col: -1, Keys: map[string]int{"S": 0, "C": 1, "N": 2, "F": 3, "L": 4},
			Desc: func(col int) bool { return col >= 2 }}}
	g.fill()
	return g
}

// Init starts the grouping scan.
func (g *Groups) Init() tea.Cmd {
	ctx, be, topic := g.ctx, g.o.Backend, g.topic.Topic
	return view.Do(func() (tea.Msg, error) {
		st, err := be.Stats(ctx, topic, nil)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", topic, err)
		}
		return statsMsg{owner: g, stats: st}, nil
	})
}

// Close stops the scan.
func (g *Groups) Close() { g.cancel() }

// Update handles the scan's result and keys.
func (g *Groups) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case statsMsg:
		if msg.owner == g {
			g.stats = msg.stats
			g.fill()
		}
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && g.sort.Press(msg.String()) {
			at := g.tbl.Key(g.tbl.Cursor())
			g.fill()
			g.tbl.CursorTo(at)
			return g, nil
		}
		if key.Matches(msg, KeyOpen) {
			i := g.tbl.Cursor()
			if i < 0 || i >= len(g.shown) {
				return g, nil
			}
			f := Filter{}
			if gr := g.shown[i]; gr != nil {
				f = Filter{Group: true, Source: gr.ErrorSource, Code: gr.ErrorCode}
			}
			return g, view.Push(newRecords(g.o, g.topic.Topic, f))
		}
		var cmd tea.Cmd
		g.tbl, cmd = g.tbl.Update(msg)
		return g, cmd
	case tea.MouseMsg:
		var cmd tea.Cmd
		g.tbl, cmd = g.tbl.Update(msg)
		return g, cmd
	}
	return g, nil
}

func (g *Groups) fill() {
	now := g.o.Now()
	rows := [][]string{{"(all records)", "", count(g.topic.Records), table.Ago(now, g.topic.Oldest), table.Ago(now, g.topic.Newest), "every record, unfiltered"}}
	keys := []string{"*"}
	g.shown = []*replay.Group{nil}
	if g.stats == nil {
		rows = append(rows, []string{"", "grouping…", "", "", "", fmt.Sprintf("scanning %s records", count(g.topic.Records))})
		keys = append(keys, "…")
		g.shown = append(g.shown, nil)
	} else {
		groups := g.stats.Groups
		if g.stats.Other != nil {
			groups = append(groups[:len(groups):len(groups)], *g.stats.Other)
		}
		f := strings.ToLower(g.filter)
		order := make([]*replay.Group, len(groups))
		for i := range groups {
			order[i] = &groups[i]
		}
		if col := g.sort.Col; col >= 0 {
			desc := g.sort.Descending()
			slices.SortStableFunc(order, func(a, b *replay.Group) int {
				var c int
				switch col {
				case 0:
					c = strings.Compare(a.ErrorSource, b.ErrorSource)
				case 1:
					c = strings.Compare(a.ErrorCode, b.ErrorCode)
				case 2:
					c = cmp.Compare(a.Count, b.Count)
				case 3:
					c = a.FirstSeen.Compare(b.FirstSeen)
				case 4:
					c = a.LastSeen.Compare(b.LastSeen)
				}
				if desc {
					return -c
				}
				return c
			})
		}
		for _, gr := range order {
			first, last := gr.FirstSeen, gr.LastSeen
			row := []string{gr.ErrorSource, gr.ErrorCode, count(gr.Count), table.Ago(now, &first), table.Ago(now, &last), gr.SampleMessage}
			if f != "" && !strings.Contains(strings.ToLower(strings.Join(row, " ")), f) {
				continue
			}
			rows = append(rows, row)
			keys = append(keys, gr.ErrorSource+"\x00"+gr.ErrorCode)
			g.shown = append(g.shown, gr)
		}
	}
	for i, t := range g.sort.Mark(groupTitles) {
		g.tbl.SetTitle(i, t)
	}
	g.tbl.SetAll(rows, keys)
}

// View draws the groups.
func (g *Groups) View() string { return g.tbl.View() }

// Title names the topic.
func (g *Groups) Title() string { return termsafe.Truncate(g.topic.Topic, 40) }

// SetSize sets the body size.
func (g *Groups) SetSize(w, h int) { g.tbl.SetSize(w, h) }

// Keys lists the bindings.
func (g *Groups) Keys() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "records")), g.sort.Help()}
}

// Capturing is never true.
func (g *Groups) Capturing() bool { return false }

// SetFilter narrows the groups.
func (g *Groups) SetFilter(s string) tea.Cmd { g.filter = s; g.fill(); return nil }

// Filter returns the filter.
func (g *Groups) Filter() string { return g.filter }
