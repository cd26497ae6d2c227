package dlt

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/modal"
	"github.com/come2us/opsctl/tui/table"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// index maps a list position to a record's coordinates. Unfiltered, it is the partitions'
// offset spans and costs nothing to build; filtered, it is the coordinates one streaming scan
// found (12 bytes a record).
type index struct {
	spans []replay.Span
	cum   []int64 // records before each span
	total int64

	filtered bool
	part     []int32
	off      []int64
	ts       []int64 // each match's record timestamp (Unix ms), for the newest-first order

	// A scan for a list sorted by a string column (KEY, SOURCE, CODE, MESSAGE) keeps each
	// match's value in that column as an id into names: a value many records share (a source,
	// a code, a message) is held once, and a match costs 4 more bytes.
	col   int // the column val holds; 0 for none
	val   []int32
	names strtab
	rank  []int32 // names' ranks, kept from the last arrange while names has not grown

	// order is the list's order, set by the view (arrange): by time (newest first unless
	// reversed), by partition/offset, or by the string column val holds. perm holds a filtered
	// index's sorted positions; matches that arrived after the last arrange follow in the order
	// they were found.
	byTime bool
	byStr  bool
	desc   bool
	perm   []int32
	inv    []int32 // a span index's position of each record in perm (sorted by a string column)

	// ends are the end offsets the index covers: a replay of "everything matching" is bounded
	// by them, so records that arrive later are not replayed unseen.
	ends    map[int32]int64
	done    bool
	scanned int64
}

func spanIndex(spans []replay.Span) *index {
	x := &index{spans: spans, ends: map[int32]int64{}, done: true}
	for _, s := range spans {
		x.cum = append(x.cum, x.total)
		x.total += s.End - s.Start
		x.ends[s.Partition] = s.End
	}
	return x
}

// natural reports whether the index lists in the engine's order (partition, then offset).
func (x *index) natural() bool {
	return !x.byStr && (!x.byTime && !x.desc || x.byTime && !x.desc && !x.filtered)
}

// arrange sorts a filtered index's matches so far in its order: by timestamp or by the string
// column's value (ties by partition and offset), or by partition and offset. A span index needs
// no work (At computes its order) unless it is sorted by a string column.
func (x *index) arrange() {
	x.perm, x.inv = nil, nil
	if x.natural() || !x.filtered && !x.byStr {
		return
	}
	perm := make([]int32, x.Len())
	for i := range perm {
		perm[i] = int32(i)
	}
	// Values compare as their rank among the distinct names: one string sort of the names,
	// then integer comparisons for the million matches.
	var rank []int32
	if x.byStr {
		if len(x.rank) != x.names.Len() {
			x.rank = ranks(x.names) // once a scan's end: a reverse only walks the buckets
		}
		rank = x.rank
	}
	if !x.filtered {
		// A span index's positions are in partition and offset order already, and they break
		// ties: a stable counting sort by rank keeps them so, in one pass over a million
		// (a comparison sort took 120 ms, more than a key press may).
		bucket := func(p int) int { return int(x.rankOf(rank, int32(p))) + 1 } // unseen: 0
		start := make([]int32, x.names.Len()+2)
		for p := range perm {
			start[bucket(p)+1]++
		}
		for k := 1; k < len(start); k++ {
			start[k] += start[k-1]
		}
		for p := range perm {
			k := bucket(p)
			perm[start[k]] = int32(p)
			start[k]++
		}
		if x.desc {
			slices.Reverse(perm)
		}
		// inv answers Pos at once: a re-sort finds each loaded row's new place by it.
		inv := make([]int32, len(perm))
		for i, p := range perm {
			inv[p] = int32(i)
		}
		x.perm, x.inv = perm, inv
		return
	}
	// Coordinates are unique, so the order is total and an unstable sort is enough.
	slices.SortFunc(perm, func(i, j int32) int {
		if x.desc {
			i, j = j, i
		}
		if x.byTime && x.ts[i] != x.ts[j] {
			return cmp.Compare(x.ts[i], x.ts[j])
		}
		if rank != nil && x.val[i] != x.val[j] {
			return cmp.Compare(x.rankOf(rank, i), x.rankOf(rank, j))
		}
		if x.part[i] != x.part[j] {
			return cmp.Compare(x.part[i], x.part[j])
		}
		return cmp.Compare(x.off[i], x.off[j])
	})
	x.perm = perm
}

// rankOf is match i's value's rank; a match whose value the scan did not see ranks first.
func (x *index) rankOf(rank []int32, i int32) int32 {
	if v := x.val[i]; v >= 0 {
		return rank[v]
	}
	return -1
}

// strtab is a sort scan's values, end to end in one buffer: a million distinct keys cost their
// bytes and 4 more each, not a string header and an allocation each.
type strtab struct {
	buf []byte
	end []uint32 // where each value ends in buf
}

// Len is the number of values.
func (t strtab) Len() int { return len(t.end) }

// get returns value i (a view into buf, for comparisons).
func (t strtab) get(i int32) []byte {
	start := uint32(0)
	if i > 0 {
		start = t.end[i-1]
	}
	return t.buf[start:t.end[i]]
}

// add appends v and returns its id.
func (t *strtab) add(v string) int32 {
	t.buf = append(t.buf, v...)
	t.end = append(t.end, uint32(len(t.buf)))
	return int32(len(t.end) - 1)
}

// snapshot is the values so far, safe to read while the scan appends more.
func (t strtab) snapshot() strtab {
	return strtab{buf: t.buf[:len(t.buf):len(t.buf)], end: t.end[:len(t.end):len(t.end)]}
}

// ranks returns each name's place in the names' sorted order; equal names (a value held twice)
// share a rank, so their records tie and follow partition and offset.
func ranks(names strtab) []int32 {
	ids := make([]int32, names.Len())
	for i := range ids {
		ids[i] = int32(i)
	}
	slices.SortFunc(ids, func(a, b int32) int { return bytes.Compare(names.get(a), names.get(b)) })
	rank := make([]int32, names.Len())
	for k, id := range ids {
		if k > 0 && bytes.Equal(names.get(id), names.get(ids[k-1])) {
			rank[id] = rank[ids[k-1]]
			continue
		}
		rank[id] = int32(k)
	}
	return rank
}

const (
	// sortPrefix is how much of a value a sort scan keeps: enough to order keys, codes and the
	// start of messages, while a million long stack-trace messages do not fill the memory.
	// Values that share their first sortPrefix bytes tie (and follow partition and offset).
	sortPrefix = 64
	// internMax bounds the sort scan's table of distinct values: beyond it (a key per record),
	// a new value is stored as it comes, without a map entry that would cost more than it saves.
	internMax = 1 << 16
)

// sortValue is the part of a record's cell in col that a sort compares.
func sortValue(d *dlt.Record, col int) string {
	v := value(d, col)
	if len(v) > sortPrefix {
		v = v[:sortPrefix]
	}
	return v
}

// Len is the number of positions.
func (x *index) Len() int {
	if x.filtered {
		return len(x.off)
	}
	return int(x.total)
}

// At returns the coordinates at position i.
//
// A span index has no timestamps: newest first there is each partition's offsets from the
// newest down, partition after partition (within a partition offsets follow time). A filtered
// index knows each match's timestamp and merges the partitions by it.
func (x *index) At(i int) replay.Coord {
	if x.filtered {
		if i < len(x.perm) {
			i = int(x.perm[i])
		}
		return replay.Coord{Partition: x.part[i], Offset: x.off[i]}
	}
	if x.perm != nil {
		return x.spanAt(int(x.perm[i]))
	}
	if x.desc && !x.byTime {
		i = int(x.total) - 1 - i // partitions and offsets from the last down
	}
	j := sort.Search(len(x.cum), func(k int) bool { return x.cum[k] > int64(i) }) - 1
	s := x.spans[j]
	if x.desc && x.byTime {
		return replay.Coord{Partition: s.Partition, Offset: s.End - 1 - (int64(i) - x.cum[j])}
	}
	return replay.Coord{Partition: s.Partition, Offset: s.Start + int64(i) - x.cum[j]}
}

// spanAt is the coordinates at position i of a span index in partition and offset order.
func (x *index) spanAt(i int) replay.Coord {
	j := sort.Search(len(x.cum), func(k int) bool { return x.cum[k] > int64(i) }) - 1
	s := x.spans[j]
	return replay.Coord{Partition: s.Partition, Offset: s.Start + int64(i) - x.cum[j]}
}

// spanPos is the position of c in a span index in partition and offset order, or -1.
func (x *index) spanPos(c replay.Coord) int {
	for j, s := range x.spans {
		if s.Partition == c.Partition && c.Offset >= s.Start && c.Offset < s.End {
			return int(x.cum[j] + c.Offset - s.Start)
		}
	}
	return -1
}

// Pos returns the position of c in the list, or -1.
func (x *index) Pos(c replay.Coord) int {
	if !x.filtered && x.perm != nil {
		if p := x.spanPos(c); p >= 0 {
			return int(x.inv[p])
		}
		return -1
	}
	if !x.filtered {
		for j, s := range x.spans {
			if s.Partition != c.Partition || c.Offset < s.Start || c.Offset >= s.End {
				continue
			}
			switch {
			case x.desc && x.byTime:
				return int(x.cum[j] + s.End - 1 - c.Offset)
			case x.desc:
				return int(x.total - 1 - (x.cum[j] + c.Offset - s.Start))
			}
			return int(x.cum[j] + c.Offset - s.Start)
		}
		return -1
	}
	for i := range x.Len() {
		if x.At(i) == c {
			return i
		}
	}
	return -1
}

func coordKey(c replay.Coord) string {
	return strconv.Itoa(int(c.Partition)) + "/" + strconv.FormatInt(c.Offset, 10)
}

func parseKey(k string) (replay.Coord, bool) {
	p, o, ok := strings.Cut(k, "/")
	if !ok {
		return replay.Coord{}, false
	}
	pn, err1 := strconv.ParseInt(p, 10, 32)
	on, err2 := strconv.ParseInt(o, 10, 64)
	if err1 != nil || err2 != nil {
		return replay.Coord{}, false
	}
	return replay.Coord{Partition: int32(pn), Offset: on}, true
}

// Records is one DLT's records, optionally filtered, as a virtualised list.
type Records struct {
	o      Options
	ctx    context.Context
	cancel context.CancelFunc
	topic  string
	base   Filter // the group the view was opened on
	text   string // the `/` filter

	gen       int
	gctx      context.Context
	genCancel context.CancelFunc
	events    chan tea.Msg
	idx       *index
	// pend is the index a sort scan is building (a string column's values are only in the
	// records): the list keeps idx and its order until pend is complete, then takes it.
	pend *index
	tbl  table.Model
	// sort is the list's order: TIME newest first by default, shift+P for partition/offset
	// (the order `opsctl dlt list` prints), shift+K/S/C/M for KEY, SOURCE, CODE and MESSAGE
	// (A to Z). layout counts re-sorts, so a window read for the old order is not drawn in the
	// new one.
	sort   table.Sort
	layout int
	marks  *replay.Replays

	sel      map[replay.Coord]bool
	all      bool
	excluded map[replay.Coord]bool

	flow *replayFlow
	// withTopic names the topic in the title (opened from the topic list, not from a group).
	withTopic bool
	w, h      int
}

type indexMsg struct {
	owner *Records
	gen   int
	spans []replay.Span
	part  []int32
	off   []int64
	ts    []int64
	val   []int32
	names strtab
	ends  map[int32]int64
	prog  replay.IndexProgress
	done  bool
	err   error
}

type windowMsg struct {
	owner  *Records
	gen    int
	layout int
	from   int
	recs   []*dlt.Record
	coord  []replay.Coord
	err    error
}

type marksMsg struct {
	owner *Records
	marks *replay.Replays
}

// NewRecords returns the records of topic matching f (the zero Filter: all of them).
func NewRecords(o Options, topic string, f Filter) *Records {
	o.defaults()
	return newRecords(o, topic, f)
}

func newRecords(o Options, topic string, f Filter) *Records {
	ctx, cancel := context.WithCancel(o.Ctx)
	t := table.New(
		table.Column{Title: recordTitles[0], Width: 11},
		table.Column{Title: recordTitles[1], Width: 14},
		table.Column{Title: recordTitles[2], Fit: 24},
		table.Column{Title: recordTitles[3], Fit: 28},
		table.Column{Title: recordTitles[4], Fit: 32},
		table.Column{Title: recordTitles[5], Grow: 2},
		table.Column{Title: recordTitles[6], Width: 4},
	)
	t.Empty = "reading offsets…"
	t.SetStyler(func(col int, v string) (lipgloss.Style, bool) {
		switch {
		case col == 4:
			return theme.Warning, true
		case col == 6 && strings.HasPrefix(v, "✓"):
			return theme.OK, true
		}
		return lipgloss.Style{}, false
	})
	r := &Records{o: o, ctx: ctx, cancel: cancel, topic: topic, base: f, tbl: t,
		sel: map[replay.Coord]bool{}, excluded: map[replay.Coord]bool{},
		sort: table.Sort{Col: 1, Keys: map[string]int{"P": 0, "T": 1, "K": 2, "S": 3, "C": 4, "M": 5}, Desc: func(col int) bool { return col == 1 }}}
	r.markTitles()
	r.tbl.SetMarked(func(_ int, k string) bool {
		c, ok := parseKey(k)
		return ok && r.selected(c)
	})
	return r
}

var recordTitles = []string{"P/OFFSET", "TIME (UTC)", "KEY", "SOURCE", "CODE", "MESSAGE", "REPL"}

func (r *Records) markTitles() {
	for i, t := range r.sort.Mark(recordTitles) {
		r.tbl.SetTitle(i, t)
	}
}

// stringCol returns the sorted column when it is one of the string columns, or 0.
func (r *Records) stringCol() int {
	if r.sort.Col >= 2 && r.sort.Col <= 5 {
		return r.sort.Col
	}
	return 0
}

// value is a record's cell in a string column.
func value(d *dlt.Record, col int) string {
	switch col {
	case 2:
		return string(d.Key)
	case 3:
		return d.ErrorSource
	case 4:
		return d.ErrorCode
	}
	return d.ErrorMessage
}

// order gives the index the view's sort. An index without the sorted string column's values
// keeps its order: a sort scan brings them.
func (r *Records) order(x *index) {
	col := r.stringCol()
	if col != 0 && x.col != col {
		return
	}
	x.byTime, x.byStr, x.desc = r.sort.Col == 1, col != 0, r.sort.Descending()
}

// sortBy applies a new sort: at once when the index has what it needs, otherwise with a sort
// scan in the background (the list keeps its order meanwhile).
func (r *Records) sortBy() tea.Cmd {
	col := r.stringCol()
	if r.pend != nil && r.pend.col != col && r.idx != nil && r.idx.done {
		// The list is complete and no longer wants that column: the sort scan stops.
		r.pend = nil
		r.newGen()
	}
	if col == 0 || r.idx == nil || r.idx.col == col || r.pend != nil && r.pend.col == col {
		return r.resort()
	}
	return r.sortScan()
}

// resort lays the list out again in its order (after a sort key, or as a scan finds more
// matches), keeping the cursor on its record.
func (r *Records) resort() tea.Cmd {
	if r.idx == nil {
		return nil
	}
	c, had := r.cursorCoord()
	// The rows already read keep their cells at their new places: a re-sort of what is on
	// screen draws at once, without a round of "loading…".
	loaded := map[replay.Coord][]string{}
	r.tbl.Rewrite(func(_ int, k string, row []string) []string {
		if c, ok := parseKey(k); ok {
			loaded[c] = row
		}
		return row
	})
	r.order(r.idx)
	r.idx.arrange()
	r.layout++
	r.tbl.SetTotal(r.idx.Len())
	switch {
	case len(loaded) == 0:
	case !r.idx.filtered: // positions are computed, no walk over a million
		for c, row := range loaded {
			if i := r.idx.Pos(c); i >= 0 {
				r.tbl.SetWindow(i, [][]string{row}, []string{coordKey(c)})
			}
		}
	default:
		for i := range r.idx.Len() {
			c := r.idx.At(i)
			if row, ok := loaded[c]; ok {
				r.tbl.SetWindow(i, [][]string{row}, []string{coordKey(c)})
			}
		}
	}
	if had && r.tbl.Cursor() > 0 {
		r.tbl.SetCursor(r.idx.Pos(c))
	}
	return r.tbl.Load()
}

func (r *Records) filter() Filter {
	f := r.base
	f.Text = r.text
	return f
}

func (r *Records) selected(c replay.Coord) bool {
	if r.all {
		return !r.excluded[c]
	}
	return r.sel[c]
}

func (r *Records) selectedCount() int {
	if r.all && r.idx != nil {
		return r.idx.Len() - len(r.excluded)
	}
	return len(r.sel)
}

// Init builds the index and reads the ledger's marks.
func (r *Records) Init() tea.Cmd {
	return tea.Batch(r.reindex(), r.loadMarks())
}

// Close stops the scans and any replay being followed (a replay already committed stays so).
func (r *Records) Close() {
	if r.genCancel != nil {
		r.genCancel()
	}
	r.cancel()
}

func (r *Records) loadMarks() tea.Cmd {
	ctx, be, topic := r.ctx, r.o.Backend, r.topic
	return view.Do(func() (tea.Msg, error) {
		m, err := be.Replayed(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("read the replay ledger: %w", err)
		}
		return marksMsg{owner: r, marks: m}, nil
	})
}

// reindex starts a new index for the current filter, abandoning the previous one.
func (r *Records) reindex() tea.Cmd {
	gen, gctx := r.newGen()
	r.idx, r.pend = nil, nil
	r.all, r.sel, r.excluded = false, map[replay.Coord]bool{}, map[replay.Coord]bool{}
	r.tbl.SetTotal(0)
	r.tbl.SetNeed(r.o.Window, r.need)
	be, topic, f := r.o.Backend, r.topic, r.filter()
	if f.Empty() {
		r.tbl.Empty = "reading offsets…"
		return func() tea.Msg {
			spans, err := be.Spans(gctx, topic)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return indexMsg{owner: r, gen: gen, spans: spans, done: true, err: err}
		}
	}
	r.tbl.Empty = "scanning for matching records…"
	sel, err := f.Selection()
	if err != nil {
		r.idx = &index{filtered: true, done: true}
		r.tbl.Empty = "the filter is not valid"
		return view.Error(err)
	}
	r.idx = &index{filtered: true, col: r.stringCol()}
	return r.scan(gen, gctx, f, sel, r.idx.col)
}

// newGen abandons the current scan and starts a new generation of index messages.
func (r *Records) newGen() (int, context.Context) {
	if r.genCancel != nil {
		r.genCancel()
	}
	r.gen++
	gctx, cancel := context.WithCancel(r.ctx)
	r.gctx, r.genCancel = gctx, cancel
	return r.gen, gctx
}

// sortScan indexes the filter's records again with the sorted string column's values, into
// pend. The list, its selection and the rows already read stay as they are until it ends.
func (r *Records) sortScan() tea.Cmd {
	f := r.filter()
	sel, err := f.Selection()
	if err != nil {
		return nil // the filter's error is on screen already
	}
	gen, gctx := r.newGen()
	r.pend = &index{filtered: true, col: r.stringCol()}
	if !r.idx.filtered {
		// Every record is listed (an empty filter): the values go beside the spans' positions
		// (4 bytes a record), which give the coordinates.
		r.pend = spanIndex(r.idx.spans)
		r.pend.col, r.pend.done = r.stringCol(), false
		r.pend.val = make([]int32, r.pend.total)
		for i := range r.pend.val {
			r.pend.val[i] = -1
		}
	}
	return r.scan(gen, gctx, f, sel, r.pend.col)
}

// scan streams the coordinates (and timestamps, and col's values when col is not 0) of f's
// matches as index messages of generation gen.
func (r *Records) scan(gen int, gctx context.Context, f Filter, sel *replay.Selection, col int) tea.Cmd {
	be, topic := r.o.Backend, r.topic
	ch := make(chan tea.Msg, 16)
	r.events = ch
	go func() {
		const chunk = 2000
		var part []int32
		var off []int64
		var ts []int64
		var val []int32
		ids := map[string]int32{}
		var names strtab
		var last replay.IndexProgress
		send := func(m indexMsg) bool {
			select {
			case ch <- m:
				return true
			case <-gctx.Done():
				return false
			}
		}
		flush := func() bool {
			m := indexMsg{owner: r, gen: gen, part: part, off: off, ts: ts, val: val, names: names.snapshot(), prog: last}
			part, off, ts, val = nil, nil, nil, nil
			return send(m)
		}
		match := f.Match
		if f.IsWhere() && !f.Group {
			match = nil
		}
		// keep sees each selected record just before fn gets its coordinates: it notes the
		// timestamp, which the coordinates do not carry.
		var seen replay.Coord
		var seenTS int64
		var seenVal int32
		keep := func(d *dlt.Record) bool {
			if match != nil && !match(d) {
				return false
			}
			seen, seenTS = replay.Coord{Partition: d.Partition, Offset: d.Offset}, d.Timestamp.UnixMilli()
			if col != 0 {
				v := sortValue(d, col)
				id, ok := ids[v]
				if !ok {
					id = names.add(v)
					if len(ids) < internMax {
						// A copy: v is part of the decoded record, which it must not keep alive.
						ids[strings.Clone(v)] = id
					}
				}
				seenVal = id
			}
			return true
		}
		ends, _, err := be.Index(gctx, topic, sel, keep, func(p replay.IndexProgress) {
			last = p
			if len(off) > 0 || p.Scanned%100000 == 0 {
				flush()
			}
		}, func(c replay.Coord) error {
			t, v := int64(0), int32(-1)
			if c.Partition == seen.Partition && c.Offset == seen.Offset {
				t, v = seenTS, seenVal
			}
			part, off, ts = append(part, c.Partition), append(off, c.Offset), append(ts, t)
			if col != 0 {
				val = append(val, v)
			}
			if len(off) >= chunk {
				if !flush() {
					return gctx.Err()
				}
			}
			return nil
		})
		if errors.Is(err, context.Canceled) {
			return
		}
		send(indexMsg{owner: r, gen: gen, part: part, off: off, ts: ts, val: val, names: names.snapshot(), ends: ends, prog: last, done: true, err: err})
	}()
	return view.Listen(gctx, ch)
}

// need loads the records at positions [from, to) of the index.
func (r *Records) need(from, to int) tea.Cmd {
	if r.idx == nil {
		return nil
	}
	to = min(to, r.idx.Len())
	coords := make([]replay.Coord, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		coords = append(coords, r.idx.At(i))
	}
	ctx, be, topic, gen, layout := r.ctx, r.o.Backend, r.topic, r.gen, r.layout
	return func() tea.Msg {
		recs, err := be.Window(ctx, topic, coords)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return windowMsg{owner: r, gen: gen, layout: layout, from: from, recs: recs, coord: coords, err: err}
	}
}

// Update handles index chunks, windows, the replay dialog and keys.
func (r *Records) Update(msg tea.Msg) (view.View, tea.Cmd) {
	if r.flow != nil {
		if cmd, handled := r.updateFlow(msg); handled {
			return r, cmd
		}
	}
	switch msg := msg.(type) {
	case indexMsg:
		if msg.owner != r || msg.gen != r.gen {
			return r, nil
		}
		return r, r.addIndex(msg)
	case windowMsg:
		if msg.owner != r || msg.gen != r.gen || msg.layout != r.layout {
			return r, nil
		}
		if msg.err != nil {
			return r, view.Error(fmt.Errorf("read %s: %w", r.topic, msg.err))
		}
		r.setWindow(msg)
		return r, nil
	case marksMsg:
		if msg.owner != r {
			return r, nil
		}
		r.marks = msg.marks
		// The ledger may have changed (a replay): redraw the loaded rows' marks in place.
		r.tbl.Rewrite(func(_ int, k string, row []string) []string {
			c, ok := parseKey(k)
			if !ok || len(row) < 7 {
				return row
			}
			c.Topic = r.topic
			if mk, ok := r.marks.Lookup(c); ok {
				row = append([]string(nil), row...)
				row[6] = "✓" + strconv.Itoa(mk.Count)
			}
			return row
		})
		return r, nil
	case tea.KeyMsg:
		return r.key(msg)
	case tea.MouseMsg:
		var cmd tea.Cmd
		r.tbl, cmd = r.tbl.Update(msg)
		return r, cmd
	}
	return r, nil
}

func (r *Records) addIndex(m indexMsg) tea.Cmd {
	if r.pend != nil {
		return r.addSorted(m)
	}
	if m.err != nil {
		r.idx.done = true
		r.tbl.Empty = "could not read the topic"
		return view.Error(fmt.Errorf("index %s: %w", r.topic, m.err))
	}
	var cmds []tea.Cmd
	if m.spans != nil || (!r.idx.filtered && m.done) {
		r.idx = spanIndex(m.spans)
		r.order(r.idx)
		r.tbl.Empty = "no records"
		if r.stringCol() != 0 {
			cmds = append(cmds, r.sortScan())
		}
	} else {
		r.idx.add(m)
		if m.done {
			r.idx.done, r.idx.ends = true, m.ends
			r.tbl.Empty = "no record matches"
		} else {
			cmds = append(cmds, view.Listen(r.gctx, r.events))
		}
		// A sorted list is laid out again when the scan ends and whenever the matches have
		// doubled since the last layout (a few times for a million, not once a chunk); in
		// between, new matches follow at the end.
		r.order(r.idx)
		if !r.idx.natural() && (m.done || r.idx.Len() >= 2*max(len(r.idx.perm), 1000)) {
			return tea.Batch(append(cmds, r.resort())...)
		}
	}
	r.tbl.Extend(r.idx.Len())
	cmds = append(cmds, r.tbl.Load())
	return tea.Batch(cmds...)
}

// add appends a chunk of a scan's matches. A span index (every record, by its position) only
// takes their values.
func (x *index) add(m indexMsg) {
	if !x.filtered {
		for k := range m.val {
			if p := x.spanPos(replay.Coord{Partition: m.part[k], Offset: m.off[k]}); p >= 0 {
				x.val[p] = m.val[k]
			}
		}
		if m.names.Len() > 0 {
			x.names = m.names
		}
		x.scanned = max(x.scanned, m.prog.Scanned)
		return
	}
	x.part = append(x.part, m.part...)
	x.off = append(x.off, m.off...)
	x.ts = append(x.ts, m.ts...)
	x.val = append(x.val, m.val...)
	if m.names.Len() > 0 {
		x.names = m.names
	}
	x.scanned = max(x.scanned, m.prog.Scanned)
}

// addSorted adds a sort scan's chunk to pend; at its end the list takes pend and is laid out
// in the new order, the rows already read keeping their cells.
func (r *Records) addSorted(m indexMsg) tea.Cmd {
	if m.err != nil {
		r.pend = nil
		return view.Error(fmt.Errorf("sort %s: %w; the list keeps its previous order", r.topic, m.err))
	}
	r.pend.add(m)
	if !m.done {
		return view.Listen(r.gctx, r.events)
	}
	r.pend.done = true
	if r.pend.filtered {
		// A span index keeps its spans' ends: the list shows no record past them.
		r.pend.ends = m.ends
	}
	r.idx, r.pend = r.pend, nil
	return r.resort()
}

func (r *Records) setWindow(m windowMsg) {
	rows := make([][]string, len(m.coord))
	keys := make([]string, len(m.coord))
	for i, c := range m.coord {
		keys[i] = coordKey(c)
		rows[i] = r.cells(c, m.recs[i])
	}
	r.tbl.SetWindow(m.from, rows, keys)
}

func (r *Records) cells(c replay.Coord, d *dlt.Record) []string {
	pos := coordKey(c)
	if d == nil {
		return []string{pos, "", "", "", "", "(no record here: a transaction marker, or removed by retention)", ""}
	}
	rep := ""
	if d.ReplayCount > 0 {
		rep = strconv.Itoa(d.ReplayCount)
	}
	c.Topic = r.topic
	if mk, ok := r.marks.Lookup(c); ok {
		rep = "✓" + strconv.Itoa(mk.Count)
	}
	return []string{pos, d.Timestamp.UTC().Format("01-02 15:04:05"), string(d.Key), d.ErrorSource, d.ErrorCode, d.ErrorMessage, rep}
}

func (r *Records) cursorCoord() (replay.Coord, bool) {
	if r.idx == nil || r.tbl.Cursor() >= r.idx.Len() || r.idx.Len() == 0 {
		return replay.Coord{}, false
	}
	return r.idx.At(r.tbl.Cursor()), true
}

func (r *Records) key(msg tea.KeyMsg) (view.View, tea.Cmd) {
	switch {
	case key.Matches(msg, KeyOpen):
		if c, ok := r.cursorCoord(); ok {
			return r, view.Push(NewDetail(r.o, r.topic, c.Partition, c.Offset))
		}
		return r, nil
	case key.Matches(msg, KeySelect):
		c, ok := r.cursorCoord()
		if !ok {
			return r, nil
		}
		switch {
		case r.all && r.excluded[c]:
			delete(r.excluded, c)
		case r.all:
			r.excluded[c] = true
		case r.sel[c]:
			delete(r.sel, c)
		default:
			r.sel[c] = true
		}
		var cmd tea.Cmd
		r.tbl, cmd = r.tbl.Update(tea.KeyMsg{Type: tea.KeyDown})
		return r, cmd
	case key.Matches(msg, KeySelAll):
		if r.all {
			r.all, r.excluded = false, map[replay.Coord]bool{}
			return r, view.Status("selection cleared")
		}
		if r.idx == nil || !r.idx.done {
			return r, view.Error(errors.New("still indexing: select all once the scan has finished"))
		}
		r.all, r.sel, r.excluded = true, map[replay.Coord]bool{}, map[replay.Coord]bool{}
		return r, view.Status(fmt.Sprintf("%s records selected (everything the filter matches)", count(int64(r.selectedCount()))))
	case key.Matches(msg, KeyClear):
		r.all, r.sel, r.excluded = false, map[replay.Coord]bool{}, map[replay.Coord]bool{}
		return r, nil
	case key.Matches(msg, KeyReplay):
		if r.o.Readonly {
			return r, view.Error(errors.New("read-only: replay is disabled (--readonly); R shows the dry run; nothing was changed"))
		}
		return r, r.beginReplay(false)
	case key.Matches(msg, KeyDryRun):
		return r, r.beginReplay(true)
	case msg.Type == tea.KeyRunes && r.sort.Press(msg.String()):
		r.markTitles()
		return r, r.sortBy()
	}
	var cmd tea.Cmd
	r.tbl, cmd = r.tbl.Update(msg)
	return r, cmd
}

// info is the line under the list: counts, selection and the index's progress.
func (r *Records) info() string {
	if r.idx == nil {
		return ""
	}
	var parts []string
	n := count(int64(r.idx.Len()))
	switch {
	case !r.idx.filtered:
		parts = append(parts, n+" records")
	case r.idx.done:
		parts = append(parts, fmt.Sprintf("%s matching of %s scanned", n, count(r.idx.scanned)))
	default:
		parts = append(parts, fmt.Sprintf("%s matching so far, %s scanned…", n, count(r.idx.scanned)))
	}
	if s := r.selectedCount(); s > 0 {
		what := count(int64(s)) + " selected"
		if r.all {
			what += " (all matching)"
		}
		parts = append(parts, theme.Selected.Render(what))
	}
	if r.pend != nil {
		parts = append(parts, fmt.Sprintf("sorting by %s… %s scanned", strings.ToLower(recordTitles[r.pend.col]), count(r.pend.scanned)))
	}
	return strings.Join(parts, "  ")
}

// View draws the list, the info line and the replay dialog over them.
func (r *Records) View() string {
	bg := r.tbl.View() + "\n" + r.info()
	if r.flow != nil && r.flow.modal != nil {
		return modal.Overlay(bg, r.flow.modal.View(r.w, r.h), r.w, r.h)
	}
	return bg
}

// Title names the group (the topic is the breadcrumb before it), or the topic when the list
// was opened straight from the topics.
func (r *Records) Title() string {
	t := "all records"
	if d := r.base.Describe(); d != "" {
		t = termsafe.Truncate(d, 50)
	}
	if r.withTopic {
		t = termsafe.Truncate(r.topic, 30) + " › " + t
	}
	return t
}

// SetSize sets the body size; the info line takes one.
func (r *Records) SetSize(w, h int) {
	r.w, r.h = w, h
	// Below 100 columns the source goes (a group's records share it) and the key narrows, so
	// the error code and message keep room.
	narrow := w < 100
	r.tbl.SetHidden(3, narrow)
	if narrow {
		r.tbl.SetWidth(0, 9)
		r.tbl.SetWidth(2, 8)
		r.tbl.SetWidth(4, 17)
	} else {
		r.tbl.SetWidth(0, 11)
		r.tbl.SetWidth(2, 10)
		r.tbl.SetWidth(4, 0)
	}
	r.tbl.SetSize(w, max(h-1, 2))
}

// Keys lists the bindings (r only when writable).
func (r *Records) Keys() []key.Binding {
	if r.flow != nil && r.flow.modal != nil {
		return r.flow.modal.Keys()
	}
	ks := []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "record")), KeySelect, KeySelAll, KeyClear}
	if !r.o.Readonly {
		ks = append(ks, KeyReplay)
	}
	return append(ks, KeyDryRun, r.sort.Help())
}

// Capturing is true while the replay dialog is open.
func (r *Records) Capturing() bool { return r.flow != nil && r.flow.modal != nil }

// SetFilter re-indexes with a new text filter; "=expr" is a --where expression.
func (r *Records) SetFilter(s string) tea.Cmd {
	if s == r.text {
		return nil
	}
	r.text = s
	return r.reindex()
}

// Filter returns the text filter.
func (r *Records) Filter() string { return r.text }
