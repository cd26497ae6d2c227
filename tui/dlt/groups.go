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
	// partial is true while the scan runs: stats holds the groups counted so far.
	partial bool
	events  chan tea.Msg
}

// groupTitles are the groups' column titles; shift+S, C, N (count), F and L sort by them.
var groupTitles = []string{"SOURCE", "CODE", "COUNT", "FIRST", "LAST", "SAMPLE MESSAGE"}

type statsMsg struct {
	owner   *Groups
	stats   *replay.Stats
	partial bool
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
	g := &Groups{o: o, ctx: ctx, cancel: cancel, topic: t, tbl: tbl, started: o.Now(), events: make(chan tea.Msg, 1),
		sort: table.Sort{Col: -1, Keys: map[string]int{"S": 0, "C": 1, "N": 2, "F": 3, "L": 4},
			Desc: func(col int) bool { return col >= 2 }}}
	g.fill()
	return g
}

// Init starts the grouping scan. The groups counted so far arrive as the scan goes
// (replay.StatsProgress), so a large DLT shows its counts growing instead of a blank screen; a
// snapshot the screen has not taken yet is replaced by the next.
func (g *Groups) Init() tea.Cmd {
	ctx, be, topic, ch := g.ctx, g.o.Backend, g.topic.Topic, g.events
	go func() {
		st, err := be.StatsProgress(ctx, topic, nil, func(p *replay.Stats) {
			select {
			case ch <- statsMsg{owner: g, stats: p, partial: true}:
			default: // the screen is behind: it gets a later snapshot
			}
		})
		var m tea.Msg = statsMsg{owner: g, stats: st}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m = view.StatusMsg{Text: fmt.Sprintf("group %s: %s", topic, err), Err: true, From: g}
		}
		for {
			select {
			case ch <- m:
				return
			case <-ctx.Done():
				return
			case <-ch: // drop a snapshot the screen never took: the result replaces it
			}
		}
	}()
	return view.Listen(ctx, ch)
}

// Close stops the scan.
func (g *Groups) Close() { g.cancel() }

// Update handles the scan's result and keys.
func (g *Groups) Update(msg tea.Msg) (view.View, tea.Cmd) {
	switch msg := msg.(type) {
	case statsMsg:
		if msg.owner != g {
			return g, nil
		}
		at := g.tbl.Key(g.tbl.Cursor())
		g.stats, g.partial = msg.stats, msg.partial
		g.fill()
		g.tbl.CursorTo(at)
		if msg.partial {
			return g, tea.Batch(view.Listen(g.ctx, g.events), view.Status(
				fmt.Sprintf("grouping %s: %s of %s records so far…", termsafe.Truncate(g.topic.Topic, 40), count(msg.stats.Selected), count(g.topic.Records))))
		}
		return g, view.Status("")
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
	if g.stats == nil || g.partial {
		what := fmt.Sprintf("scanning %s records", count(g.topic.Records))
		if g.stats != nil {
			what = fmt.Sprintf("%s of %s records read; counts grow until the scan ends", count(g.stats.Selected), count(g.topic.Records))
		}
		rows = append(rows, []string{"", "grouping…", "", "", "", what})
		keys = append(keys, "…")
		g.shown = append(g.shown, nil)
	}
	if g.stats != nil {
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
