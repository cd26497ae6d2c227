package replay

// Reads for interactive browsing (the TUI): a DLT as an index of coordinates that a screen
// fetches a window at a time, so a million dead letters scroll without being loaded; a
// filtered index built by one streaming scan; record counts per time bucket for sparklines; the
// ledger as a lookup table; and a scan by key across topics for an order's trace.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// Span is the retained offsets [Start, End) of one partition: a DLT's unfiltered index, in which
// record i of the topic is found by arithmetic instead of a scan.
type Span struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
}

// Spans returns the retained offset range of every partition of topic, in partition order, up
// to the last stable offset (what a read_committed reader can see).
func (e *Engine) Spans(ctx context.Context, topic string) (_ []Span, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	ranges, err := e.topicRanges(ctx, topic, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Span, 0, len(ranges))
	for _, r := range ranges {
		out = append(out, Span{Partition: r.p, Start: r.start, End: max(r.end, r.start)})
	}
	return out, nil
}

// windowGap is the largest run of unwanted offsets Window reads through rather than seeking
// past: below it one more fetch is cheaper than a new fetch session.
const windowGap = 256

// Window returns the records at coords of topic, decoded briefly (no Fields, no rendered
// Headers: what a list row shows), in the order of coords. A coordinate with no record — a
// transaction marker, an aborted record, an offset removed by retention — yields nil. Each
// partition's coordinates are read in clusters, so a window of a sparse filtered index reads
// the records it needs, not everything in between.
func (e *Engine) Window(ctx context.Context, topic string, coords []Coord) (_ []*dlt.Record, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	out := make([]*dlt.Record, len(coords))
	if len(coords) == 0 {
		return out, nil
	}
	want := map[Coord]int{}
	byPart := map[int32][]int64{}
	for i, c := range coords {
		c.Topic = topic
		want[c] = i
		byPart[c.Partition] = append(byPart[c.Partition], c.Offset)
	}
	var ranges []partRange
	for p, offs := range byPart {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		start := offs[0]
		for i := 1; i <= len(offs); i++ {
			if i == len(offs) || offs[i]-offs[i-1] > windowGap {
				ranges = append(ranges, partRange{p: p, start: start, end: offs[i-1] + 1})
				if i < len(offs) {
					start = offs[i]
				}
			}
		}
	}
	sort.Slice(ranges, func(i, j int) bool {
		if ranges[i].p != ranges[j].p {
			return ranges[i].p < ranges[j].p
		}
		return ranges[i].start < ranges[j].start
	})
	// Offsets past the stable end (records that arrived, or were aborted, since the index was
	// built) are left out instead of waited for.
	stable, err := e.topicRanges(ctx, topic, nil)
	if err != nil {
		return nil, err
	}
	ends := map[int32]int64{}
	for _, r := range stable {
		ends[r.p] = r.end
	}
	kept := ranges[:0]
	for _, r := range ranges {
		r.end = min(r.end, ends[r.p])
		if r.start < r.end {
			kept = append(kept, r)
		}
	}
	for _, r := range kept {
		err := e.scan(ctx, topic, []partRange{r}, fetchBrowse, func(rec *kgo.Record) (bool, error) {
			if i, ok := want[Coord{Topic: topic, Partition: rec.Partition, Offset: rec.Offset}]; ok {
				d := dlt.DecodeBrief(rec)
				out[i] = &d
			}
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %s window: %w", topic, err)
		}
	}
	return out, nil
}

// IndexProgress reports a running Index scan.
type IndexProgress struct {
	Scanned int64
	Matched int64
}

// Index streams the coordinates of topic's records that sel selects and keep (when not nil)
// accepts, in partition then offset order, to fn. Records are decoded briefly unless sel has a
// --where expression, so a scan of a million dead letters holds one fetch in memory and costs
// what a stats scan costs. progress, when set, is called every 10000 records scanned. The end
// offsets the scan stopped at are returned, to bound a replay of exactly what was indexed.
// keep must not hold on to the record it is given: the next record reuses its memory.
func (e *Engine) Index(ctx context.Context, topic string, sel *Selection, keep func(*dlt.Record) bool,
	progress func(IndexProgress), fn func(Coord) error,
) (_ map[int32]int64, _ ScanSummary, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	if sel == nil {
		sel = &Selection{}
	}
	ranges, err := e.topicRanges(ctx, topic, sel)
	if err != nil {
		return nil, ScanSummary{}, err
	}
	ends := map[int32]int64{}
	for _, r := range ranges {
		ends[r.p] = r.end
	}
	var p IndexProgress
	var sum ScanSummary
	if err := e.checkWhere(ctx, topic, ranges, sel); err != nil {
		return nil, sum, err
	}
	tally := newWhereTally(sel)
	d := new(dlt.Record) // one, reused: keep sees it only while it decides
	err = e.scan(ctx, topic, ranges, fetchBrowse, func(r *kgo.Record) (bool, error) {
		sum.Scanned++
		if p.Scanned = sum.Scanned; progress != nil && p.Scanned%10000 == 0 {
			progress(p)
		}
		ok, err := sel.decodeInto(r, decodeBrief, d, nil, tally)
		if err != nil {
			sum.whereFailed(err)
			return true, nil
		}
		if !ok || (keep != nil && !keep(d)) {
			return true, nil
		}
		sum.Selected++
		p.Matched++
		return true, fn(Coord{Topic: topic, Partition: d.Partition, Offset: d.Offset})
	})
	if progress != nil && err == nil {
		progress(p)
	}
	sum.WhereMissing = tally.report()
	return ends, sum, err
}

// Histogram counts each topic's records by timestamp in n buckets of width bucket ending at
// end (oldest first), from the brokers' time indexes: n+1 offset lookups, no records read. It
// assumes timestamps rise with offsets within a partition, as they do for records stamped when
// they were dead-lettered.
func (e *Engine) Histogram(ctx context.Context, topics []string, end time.Time, bucket time.Duration, n int) (_ map[string][]int64, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	out := map[string][]int64{}
	if len(topics) == 0 || n <= 0 {
		return out, nil
	}
	ctx = fresh(ctx)
	ends, err := e.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	// at[i] is the first offset at or after boundary i; a boundary past the newest record
	// answers -1 (no such offset), which means the end.
	at := make([]kadm.ListedOffsets, n+1)
	for i := 0; i <= n; i++ {
		t := end.Add(-time.Duration(n-i) * bucket)
		if at[i], err = e.adm.ListOffsetsAfterMilli(ctx, t.UnixMilli(), topics...); err != nil {
			return nil, fmt.Errorf("list offsets at %s: %w", t.Format(time.RFC3339), err)
		}
	}
	for _, t := range topics {
		counts := make([]int64, n)
		ends.Each(func(eo kadm.ListedOffset) {
			if eo.Topic != t || eo.Err != nil {
				return
			}
			off := func(i int) int64 {
				o, ok := at[i].Lookup(t, eo.Partition)
				if !ok || o.Err != nil || o.Offset < 0 || o.Offset > eo.Offset {
					return eo.Offset
				}
				return o.Offset
			}
			for i := 0; i < n; i++ {
				if d := off(i+1) - off(i); d > 0 {
					counts[i] += d
				}
			}
		})
		out[t] = counts
	}
	return out, nil
}

// Mark is what the ledger says about one replayed dead letter.
type Mark struct {
	// RunID is the run that replayed it last; Count the replay count that replay carried.
	RunID string `json:"runId"`
	Count int    `json:"count"`
}

// Replays is the ledger read into a lookup table, for the DLTs as they are now: a DLT deleted
// and created again has none of the replays of the topic it replaced.
type Replays struct {
	ix  *ledgerIndex
	ids map[string]string // topic → its topic ID when the ledger was read
}

// Lookup returns the ledger's mark for the dead letter at c.
func (r *Replays) Lookup(c Coord) (Mark, bool) {
	if r == nil || r.ix == nil {
		return Mark{}, false
	}
	rp, ok := r.ix.view(c.Topic, r.ids[c.Topic]).lookup(c.Partition, c.Offset, -1)
	if !ok {
		return Mark{}, false
	}
	return Mark{RunID: rp.run, Count: int(rp.count)}, true
}

// Count returns how many dead letters of dltTopic the ledger says were replayed.
func (r *Replays) Count(dltTopic string) int {
	if r == nil || r.ix == nil {
		return 0
	}
	return r.ix.view(dltTopic, r.ids[dltTopic]).count()
}

// Replayed reads the ledger (committed entries only) for dltTopic, or for every DLT when
// dltTopic is "". A ledger topic that does not exist yet is an empty ledger.
func (e *Engine) Replayed(ctx context.Context, dltTopic string) (_ *Replays, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	var names []string
	if dltTopic != "" {
		names = append(names, dltTopic)
	}
	ids, err := e.topicIDs(ctx, names...)
	if err != nil {
		return nil, err
	}
	ix, err := e.readLedger(ctx, dltTopic, false)
	if err != nil {
		return nil, err
	}
	return &Replays{ix: ix, ids: ids}, nil
}

// FindQuery says which records Find looks for.
type FindQuery struct {
	// Topics are scanned in full (or from Since); missing topics are skipped and reported.
	Topics []string
	// Key selects records whose key is exactly Key.
	Key string
	// Field, when set, also selects records whose JSON value has Field equal to Key (as a
	// string or a number): a dead letter re-keyed by a proxy still shows up.
	Field string
	// Since skips records older than this (zero: the whole retained topic).
	Since time.Time
	// Limit stops after this many matches per topic (0: 10000), so a hot key cannot exhaust
	// memory.
	Limit int
}

// Found is the outcome of Find.
type Found struct {
	// Records are fully decoded, sorted by timestamp, then topic, partition and offset.
	Records []*dlt.Record
	// Missing lists topics that do not exist on the cluster.
	Missing []string
	// Limited lists topics where Limit cut the scan short.
	Limited []string
	Scanned int64
}

// Find scans topics for the records of one key (an order's timeline across the SAGA topics and
// their DLTs). The key is compared on the raw record before anything is decoded, and the value
// is only parsed when it contains the key's bytes, so the scan costs little more than reading.
func (e *Engine) Find(ctx context.Context, q FindQuery) (_ *Found, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	limit := q.Limit
	if limit <= 0 {
		limit = 10000
	}
	key := []byte(q.Key)
	out := &Found{}
	for _, topic := range q.Topics {
		ranges, err := e.topicRanges(ctx, topic, &Selection{Since: q.Since})
		if isUnknownTopic(err) {
			out.Missing = append(out.Missing, topic)
			continue
		}
		if err != nil {
			return nil, err
		}
		n := 0
		err = e.scan(ctx, topic, ranges, fetchBulk, func(r *kgo.Record) (bool, error) {
			out.Scanned++
			if !bytes.Equal(r.Key, key) && !(q.Field != "" && bytes.Contains(r.Value, key) && fieldIs(r.Value, q.Field, q.Key)) {
				return true, nil
			}
			d := dlt.Decode(r)
			out.Records = append(out.Records, &d)
			if n++; n >= limit {
				out.Limited = append(out.Limited, topic)
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			return nil, fmt.Errorf("trace %s in %s: %w", q.Key, topic, err)
		}
	}
	sort.SliceStable(out.Records, func(i, j int) bool {
		a, b := out.Records[i], out.Records[j]
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.Before(b.Timestamp)
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Offset < b.Offset
	})
	return out, nil
}

func isUnknownTopic(err error) bool {
	return err != nil && errors.Is(err, ErrUnknownTopic)
}

// fieldIs reports whether the JSON object value has field equal to want, as a string or as a
// number.
func fieldIs(value []byte, field, want string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(value, &m) != nil {
		return false
	}
	raw, ok := m[field]
	if !ok {
		return false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s == want
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if _, err := strconv.ParseFloat(want, 64); err == nil {
			return n.String() == want
		}
	}
	return false
}
