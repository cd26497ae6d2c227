package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// TopicInfo describes one dead-letter topic for `dlt topics`.
type TopicInfo struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	// Records is the number of records a read_committed consumer sees: records of aborted
	// transactions and transaction markers, which take offsets too, are not counted.
	Records int64 `json:"records"`
	// Oldest is the earliest timestamp among each partition's first record, Newest the latest
	// record timestamp; nil when empty.
	Oldest *time.Time `json:"oldest"`
	Newest *time.Time `json:"newest"`
	// LastHour counts records with a timestamp in the last hour.
	LastHour int64 `json:"lastHour"`
	// Replayed counts this DLT's records the ledger says were replayed.
	Replayed int `json:"replayed"`
	// Outline marks a TopicInfo of TopicsOutline: Records is the offsets' span (an upper bound:
	// aborted transactions and their markers take offsets too) and nothing else was read.
	Outline bool `json:"outline,omitempty"`
}

// dltTopic is a dead-letter topic as its metadata and offsets describe it: what Topics and
// TopicsOutline start from.
type dltTopic struct {
	name       string
	id         string
	partitions int
	// ranges holds each partition with records: its start offset up to its last stable one.
	ranges []partRange
}

// dltTopics lists the dead-letter topics (names matching the configured pattern, the ledger
// excluded), sorted by name, with their partitions' ranges.
func (e *Engine) dltTopics(ctx context.Context) ([]dltTopic, error) {
	all, err := e.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []dltTopic
	var names []string
	for _, td := range all.Sorted() {
		if td.Err != nil || td.Topic == e.cfg.LedgerTopic || !e.cfg.DLTPattern.MatchString(td.Topic) {
			continue
		}
		names = append(names, td.Topic)
		out = append(out, dltTopic{name: td.Topic, id: idString(td.ID), partitions: len(td.Partitions)})
	}
	if len(names) == 0 {
		return out, nil
	}
	starts, err := e.adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := e.adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	for i := range out {
		t := &out[i]
		ends.Each(func(eo kadm.ListedOffset) {
			if eo.Topic != t.name || eo.Err != nil {
				return
			}
			if so, ok := starts.Lookup(t.name, eo.Partition); ok && so.Err == nil && so.Offset < eo.Offset {
				t.ranges = append(t.ranges, partRange{p: eo.Partition, start: so.Offset, end: eo.Offset})
			}
		})
	}
	return out, nil
}

// TopicsOutline lists the dead-letter topics as Topics does, from their offsets alone: no
// record, no ledger read, so a screen can show the list at once on a DLT of millions and
// replace it with Topics' exact figures when they arrive. Records is an upper bound.
func (e *Engine) TopicsOutline(ctx context.Context) (_ []TopicInfo, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	ctx = fresh(ctx)
	topics, err := e.dltTopics(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TopicInfo, 0, len(topics))
	for _, t := range topics {
		ti := TopicInfo{Topic: t.name, Partitions: t.partitions, Outline: true}
		for _, pr := range t.ranges {
			ti.Records += pr.end - pr.start
		}
		out = append(out, ti)
	}
	return out, nil
}

// Topics lists the dead-letter topics (names matching the configured pattern, the ledger
// excluded), sorted by name, with their counts and the replays recorded so far. It reads every
// dead-letter topic up to its last stable offset to count what a read_committed consumer
// sees, decoding only batches with records of the last hour.
func (e *Engine) Topics(ctx context.Context) (_ []TopicInfo, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	ctx = fresh(ctx)
	topics, err := e.dltTopics(ctx)
	if err != nil {
		return nil, err
	}
	if len(topics) == 0 {
		return []TopicInfo{}, nil
	}
	ix, err := e.readLedger(ctx, "", false)
	if err != nil {
		return nil, err
	}
	hourAgo := e.cfg.Now().Add(-time.Hour)
	out := make([]TopicInfo, 0, len(topics))
	for _, t := range topics {
		ti := TopicInfo{Topic: t.name, Partitions: t.partitions, Replayed: ix.view(t.name, t.id).count()}
		cc, err := e.countCommitted(ctx, t.name, t.ranges, hourAgo)
		if err != nil {
			return nil, fmt.Errorf("count the records of %s: %w", t.name, err)
		}
		ti.Records, ti.LastHour = cc.records, cc.since
		if cc.first >= 0 {
			ts := time.UnixMilli(cc.first).UTC()
			ti.Oldest = &ts
		}
		if cc.newest >= 0 {
			ts := time.UnixMilli(cc.newest).UTC()
			ti.Newest = &ts
		}
		out = append(out, ti)
	}
	return out, nil
}

// ScanSummary tells what a streaming read went through.
type ScanSummary struct {
	Scanned  int64 `json:"scanned"`
	Selected int64 `json:"selected"`
	// Limited says the read stopped at the selection's limit.
	Limited bool `json:"limited,omitempty"`
	// WhereErrors counts records the --where expression could not evaluate (they were not
	// selected); FirstWhereError says why for the first.
	WhereErrors     int64  `json:"whereErrors,omitempty"`
	FirstWhereError string `json:"firstWhereError,omitempty"`
	// WhereMissing lists the value fields --where names that some of the records it was
	// evaluated on lack.
	WhereMissing []FieldMissing `json:"whereMissing,omitempty"`
}

func (s *ScanSummary) whereFailed(err error) {
	s.WhereErrors++
	if s.FirstWhereError == "" {
		s.FirstWhereError = err.Error()
	}
}

// List streams the selected records of topic, in partition then offset order, to fn. It holds
// one fetch in memory whatever the topic's size. A record is decoded once; fn must not keep
// the pointer, nor the slices the record holds, past its return unless it copies them: the
// next record reuses their memory.
func (e *Engine) List(ctx context.Context, topic string, sel *Selection, fn func(*dlt.Record) error) (_ ScanSummary, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	return e.list(ctx, topic, sel, true, fn)
}

// list is List; full=false decodes records briefly (no Fields, no rendered Headers) unless a
// --where expression needs the fields.
func (e *Engine) list(ctx context.Context, topic string, sel *Selection, full bool, fn func(*dlt.Record) error) (ScanSummary, error) {
	if sel == nil {
		sel = &Selection{}
	}
	var sum ScanSummary
	ranges, err := e.topicRanges(ctx, topic, sel)
	if err != nil {
		return sum, err
	}
	if err := e.checkWhere(ctx, topic, ranges, sel); err != nil {
		return sum, err
	}
	tally := newWhereTally(sel)
	mode := decodeBrief
	if full {
		mode = decodeFull
	}
	d := new(dlt.Record) // one, reused: fn does not keep it
	err = e.scan(ctx, topic, ranges, fetchBrowse, func(r *kgo.Record) (bool, error) {
		sum.Scanned++
		ok, err := sel.decodeInto(r, mode, d, nil, tally)
		if err != nil {
			sum.whereFailed(err)
			return true, nil
		}
		if !ok {
			return true, nil
		}
		sum.Selected++
		if err := fn(d); err != nil {
			return false, err
		}
		if sel.Limit > 0 && sum.Selected >= int64(sel.Limit) {
			sum.Limited = true
			return false, nil
		}
		return true, nil
	})
	sum.WhereMissing = tally.report()
	return sum, err
}

// decodeMode says how much of a selected record to decode.
type decodeMode int

const (
	decodeRoute decodeMode = iota // coordinates, original topic and replay count: what a replay decides on
	decodeBrief                   // dlt.DecodeBrief: error fields too, for stats
	decodeFull                    // dlt.Decode: value fields and rendered headers
)

// decodeIfSelected checks the cheap filters on the raw record first, decodes only records that
// pass (as much as mode asks, or fully when --where needs the value's fields), and then applies
// --where. tally, when not nil, counts the fields --where names that the record lacks.
func (s *Selection) decodeIfSelected(r *kgo.Record, mode decodeMode, tally *whereTally) (*dlt.Record, bool, error) {
	d := new(dlt.Record)
	ok, err := s.decodeInto(r, mode, d, nil, tally)
	if !ok || err != nil {
		return nil, false, err
	}
	return d, true, nil
}

// prefilter applies the filters that need no decoding: partition, offset, time, key, headers.
func (s *Selection) prefilter(r *kgo.Record) bool {
	if !s.Offsets.Contains(r.Offset) ||
		(len(s.Partitions) > 0 && !containsPartition(s.Partitions, r.Partition)) ||
		(!s.Since.IsZero() && r.Timestamp.Before(s.Since)) ||
		(!s.Until.IsZero() && !r.Timestamp.Before(s.Until)) ||
		!s.keyMatches(r.Key) {
		return false
	}
	for _, m := range s.Headers {
		found := false
		for _, h := range r.Headers {
			if h.Key == m.Key && string(h.Value) == m.Value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// decodeInto is decodeIfSelected into d, which the caller may reuse from record to record.
// topics, when not nil, caches original-topic names across records (decodeRoute): a scan over
// a million dead letters to a handful of topics then makes no string per record.
func (s *Selection) decodeInto(r *kgo.Record, mode decodeMode, d *dlt.Record, topics *topicNames, tally *whereTally) (bool, error) {
	if !s.prefilter(r) {
		return false, nil
	}
	if s.Where != nil && s.Where.names != nil {
		if decided, selected, err := s.whereFromValue(r, tally); decided {
			if err != nil || !selected {
				return false, err
			}
			if mode == decodeFull {
				*d = dlt.Decode(r)
			} else {
				*d = dlt.DecodeFields(r, s.Where.names)
			}
			return true, nil
		}
	}
	switch {
	case s.Where != nil && s.Where.names != nil:
		// --where reads only the value fields it names: the value is tokenised, not made
		// into a map of every member, and a record it selects is decoded fully below if
		// the caller wants that.
		*d = dlt.DecodeFields(r, s.Where.names) // all it names: a value field shadows metadata
	case mode == decodeFull || s.Where != nil:
		*d = dlt.Decode(r)
	case mode == decodeBrief:
		*d = dlt.DecodeBrief(r)
	default:
		*d = dlt.Record{
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Raw: r.Headers,
			Origin: dlt.Origin{Topic: topics.origin(r.Headers), Partition: -1, Offset: -1}, ReplayCount: dlt.ReplayCount(r.Headers),
		}
	}
	if s.Where != nil {
		tally.record(d)
		ok, err := s.Where.Match(d)
		if err != nil || !ok {
			return false, err
		}
		if mode == decodeFull && s.Where.names != nil {
			*d = dlt.Decode(r)
		}
	}
	return true, nil
}

// topicNames caches what header values name as topics (raw value → checked name, "" when not
// a legal name): a scan sees only a few distinct values, so it checks and allocates each once,
// and runs of records from one topic compare against the last value seen. A nil cache checks
// every value. The cache stops growing at maxTopicNames entries.
type topicNames struct {
	names map[string]topicName
	last  topicName // zero at first, which is right for an empty value: not a topic name
}

type topicName struct{ raw, name string }

const maxTopicNames = 1024

func (tn *topicNames) name(b []byte) string {
	if tn == nil {
		return dlt.TopicName(b)
	}
	if string(b) == tn.last.raw {
		return tn.last.name
	}
	e, ok := tn.names[string(b)]
	if !ok {
		e = topicName{raw: string(b), name: dlt.TopicName(b)}
		if tn.names == nil {
			tn.names = map[string]topicName{}
		}
		if len(tn.names) >= maxTopicNames {
			return e.name
		}
		tn.names[e.raw] = e
	}
	tn.last = e
	return e.name
}

// origin is dlt.OriginTopic through the cache.
func (tn *topicNames) origin(headers []kgo.RecordHeader) string {
	return dlt.OriginTopicFunc(headers, tn.name)
}

// Get returns the record at topic/partition/offset, or ErrNotFound when there is none (an
// offset past the end, deleted by retention, a transaction marker or an aborted record).
func (e *Engine) Get(ctx context.Context, topic string, partition int32, offset int64) (_ *dlt.Record, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	sel := &Selection{Partitions: []int32{partition}, Offsets: OffsetRange{From: offset, To: offset, Set: true}}
	ranges, err := e.topicRanges(ctx, topic, sel)
	if err != nil {
		return nil, err
	}
	var found *dlt.Record
	err = e.scan(ctx, topic, ranges, fetchBrowse, func(r *kgo.Record) (bool, error) {
		if r.Offset == offset {
			d := dlt.Decode(r)
			found = &d
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%s[%d]@%d: %w", topic, partition, offset, ErrNotFound)
	}
	return found, nil
}

// MaxGroups bounds the groups Stats keeps; records of further groups are counted under
// "(other)", so a DLT full of distinct garbage cannot exhaust memory.
const MaxGroups = 1000

// Group is one errorSource × errorCode group of a DLT.
type Group struct {
	ErrorSource string    `json:"errorSource"`
	ErrorCode   string    `json:"errorCode"`
	Count       int64     `json:"count"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
	// Sample is the earliest record of the group; SampleMessage its errorMessage.
	Sample        Coord  `json:"sample"`
	SampleMessage string `json:"sampleMessage,omitempty"`
	// Replayed counts the group's dead letters the ledger says were replayed; FailedAgain
	// those of them whose replay came back to this DLT (a dead letter naming them in
	// x-opsctl-replayed-from).
	Replayed    int64 `json:"replayed,omitempty"`
	FailedAgain int64 `json:"failedAgain,omitempty"`
	// ReplayDoesNotHelp says most of the group's replays failed again (see DoesNotHelp):
	// replaying the rest of it is likely to fail too.
	ReplayDoesNotHelp bool `json:"replayDoesNotHelp,omitempty"`
}

// DoesNotHelpMin is how many of an error group's dead letters must have been replayed before
// stats judges whether replaying that error helps.
const DoesNotHelpMin = 2

// DoesNotHelp reports whether replays of a group mostly fail again: at least DoesNotHelpMin
// were replayed and more than half of them came back.
func DoesNotHelp(replayed, failedAgain int64) bool {
	return replayed >= DoesNotHelpMin && 2*failedAgain > replayed
}

// Stats is `dlt stats`: a DLT's records grouped by errorSource × errorCode.
type Stats struct {
	Topic string `json:"topic"`
	ScanSummary
	// Groups are sorted by count (largest first), then source and code.
	Groups []Group `json:"groups"`
	// Other collects the records of groups beyond MaxGroups.
	Other *Group `json:"other,omitempty"`
}

// Stats streams the selected records of topic and groups them. Memory is bounded by MaxGroups,
// not by the topic's size.
func (e *Engine) Stats(ctx context.Context, topic string, sel *Selection) (*Stats, error) {
	return e.StatsProgress(ctx, topic, sel, nil)
}

// statsProgressEvery is how many records StatsProgress reads between two snapshots.
var statsProgressEvery int64 = 50_000

// StatsProgress is Stats that hands progress a snapshot of the groups every
// 50,000 records read (Selected so far, groups sorted as the result's,
// without the replay outcomes, which are known at the end), so a screen can show counts as they
// grow. progress runs on the scanning goroutine and must not keep the snapshot's memory.
func (e *Engine) StatsProgress(ctx context.Context, topic string, sel *Selection, progress func(partial *Stats)) (_ *Stats, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	if sel == nil {
		sel = &Selection{}
	}
	st := &Stats{Topic: topic}
	groups := map[dlt.GroupKey]*Group{}
	// What the ledger says was replayed of this DLT (as it is now), to find, per group, the
	// dead letters whose replays came back.
	dltID, err := e.topicID(ctx, topic)
	if err != nil {
		return nil, err
	}
	ledger, err := e.readLedger(ctx, topic, false)
	if err != nil {
		return nil, err
	}
	replays := ledger.view(topic, dltID)
	replayedIn := map[int32]map[int64]*Group{} // replayed dead letters of this DLT, by group
	back := map[int32]map[int64]bool{}         // dead letters of this DLT named by records that came back
	add := func(g *Group, d *dlt.Record) {
		g.Count++
		ts := d.Timestamp.UTC()
		if g.Count == 1 || ts.Before(g.FirstSeen) {
			g.FirstSeen = ts
			g.Sample = Coord{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset}
			g.SampleMessage = clipMessage(d.ErrorMessage)
		}
		if ts.After(g.LastSeen) {
			g.LastSeen = ts
		}
	}
	mark := func(m map[int32]map[int64]*Group, p int32, o int64, g *Group) {
		if m[p] == nil {
			m[p] = map[int64]*Group{}
		}
		m[p][o] = g
	}
	var read int64
	snapshot := func(final bool) []Group {
		out := make([]Group, 0, len(groups))
		for _, g := range groups {
			if final {
				g.ReplayDoesNotHelp = DoesNotHelp(g.Replayed, g.FailedAgain)
			}
			out = append(out, *g)
		}
		sortGroups(out)
		return out
	}
	sum, err := e.list(ctx, topic, sel, false, func(d *dlt.Record) error {
		k := d.GroupKey()
		g, ok := groups[k]
		if !ok {
			if len(groups) >= MaxGroups {
				if st.Other == nil {
					st.Other = &Group{ErrorSource: "(other)", ErrorCode: "(other)"}
				}
				g = st.Other
			} else {
				g = &Group{ErrorSource: k.Source, ErrorCode: k.Code}
				groups[k] = g
			}
		}
		add(g, d)
		if _, ok := replays.lookup(d.Partition, d.Offset, d.Timestamp.UnixMilli()); ok {
			g.Replayed++
			mark(replayedIn, d.Partition, d.Offset, g)
		}
		for _, h := range d.Raw {
			if h.Key != dlt.HeaderReplayedFrom {
				continue
			}
			if c, ok := ParseCoord(string(h.Value)); ok && c.Topic == topic {
				if back[c.Partition] == nil {
					back[c.Partition] = map[int64]bool{}
				}
				back[c.Partition][c.Offset] = true
			}
		}
		if read++; progress != nil && read%statsProgressEvery == 0 {
			partial := &Stats{Topic: topic, ScanSummary: ScanSummary{Selected: read}, Groups: snapshot(false)}
			if st.Other != nil {
				o := *st.Other
				partial.Other = &o
			}
			progress(partial)
		}
		return nil
	})
	st.ScanSummary = sum
	if err != nil {
		return nil, err
	}
	for p, os := range back {
		for o := range os {
			if g := replayedIn[p][o]; g != nil {
				g.FailedAgain++
			}
		}
	}
	if st.Other != nil {
		st.Other.ReplayDoesNotHelp = DoesNotHelp(st.Other.Replayed, st.Other.FailedAgain)
	}
	st.Groups = snapshot(true)
	return st, nil
}

// sortGroups orders groups by count (largest first), then source and code.
func sortGroups(gs []Group) {
	sort.Slice(gs, func(i, j int) bool {
		a, b := gs[i], gs[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.ErrorSource != b.ErrorSource {
			return a.ErrorSource < b.ErrorSource
		}
		return a.ErrorCode < b.ErrorCode
	})
}

func clipMessage(s string) string {
	r := []rune(s)
	if len(r) > 200 {
		return string(r[:199]) + "…"
	}
	return s
}

// Run is one replay run as the ledger remembers it, for `dlt history`.
type Run struct {
	RunID     string     `json:"runId"`
	DLT       string     `json:"dlt"`
	Actor     string     `json:"actor"`
	Reason    string     `json:"reason"`
	Status    string     `json:"status"`
	Started   time.Time  `json:"started"`
	Finished  *time.Time `json:"finished,omitempty"`
	Selection string     `json:"selection,omitempty"`
	To        string     `json:"to,omitempty"`
	Force     bool       `json:"force,omitempty"`
	// Group is the run's --group, the one consumer group meant to process its records.
	Group  string `json:"group,omitempty"`
	Counts Counts `json:"counts"`
	// InLedger counts the dead letters whose latest replay in the ledger is this run's (a
	// later --force replay of the same record takes it over).
	InLedger int    `json:"inLedger"`
	Error    string `json:"error,omitempty"`
	// TopicID is the DLT's topic ID when the run started ("" for runs recorded before the
	// ledger kept them, or on a broker without topic IDs).
	TopicID string `json:"topicId,omitempty"`
	// Recreated says the run replayed from an earlier topic of that name: the DLT has since
	// been deleted (and maybe created again), so its records are gone.
	Recreated bool `json:"recreated,omitempty"`
}

// History returns the replay runs recorded in the ledger, newest first; dltTopic "" means every
// DLT. A run that was killed keeps status "running" and reports the replays the ledger holds
// for it as its replayed count.
func (e *Engine) History(ctx context.Context, dltTopic string) (_ []Run, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	ix, err := e.readLedger(ctx, dltTopic, true)
	if err != nil {
		return nil, err
	}
	ids, err := e.topicIDs(ctx)
	if err != nil {
		return nil, err
	}
	runs := make([]Run, 0, len(ix.runs))
	for _, en := range ix.runs {
		r := Run{
			RunID: en.RunID, DLT: en.DLT, Actor: en.Actor, Reason: en.Reason, Status: en.Status,
			Started: en.Started, Finished: en.Finished, Selection: en.Selection, To: en.To,
			Force: en.Force, Group: en.Group, InLedger: ix.runReplays[en.RunID], Error: en.Error, TopicID: en.DLTID,
		}
		if now, exists := ids[en.DLT]; en.DLTID != "" && (!exists || now != en.DLTID) {
			r.Recreated = true
		}
		if en.Counts != nil {
			r.Counts = *en.Counts
		}
		if r.Status == RunRunning && r.Counts.Replayed < r.InLedger {
			r.Counts.Replayed = r.InLedger
		}
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool {
		if !runs[i].Started.Equal(runs[j].Started) {
			return runs[i].Started.After(runs[j].Started)
		}
		return runs[i].RunID > runs[j].RunID
	})
	return runs, nil
}

// readLedger reads the decided part of the ledger into an index, for reads (a replay reads the
// rest after its fences: see ledgerAhead). wantDLT "" keeps every DLT's replays. A ledger topic
// that does not exist yet is an empty ledger.
func (e *Engine) readLedger(ctx context.Context, wantDLT string, keepRuns bool) (*ledgerIndex, error) {
	return e.readLedgerInto(ctx, newLedgerIndex(), wantDLT, keepRuns)
}

// readLedgerInto is readLedger into ix, which may be set to keep more (see ledgerIndex.rows).
func (e *Engine) readLedgerInto(ctx context.Context, ix *ledgerIndex, wantDLT string, keepRuns bool) (*ledgerIndex, error) {
	ranges, err := e.topicRanges(ctx, e.cfg.LedgerTopic, nil)
	if errors.Is(err, ErrUnknownTopic) {
		return ix, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read replay ledger: %w", err)
	}
	// Partitions are read together: an entry's key always lands in the same partition, so the
	// latest entry per key still wins.
	err = e.scanAll(ctx, e.cfg.LedgerTopic, ranges, fetchBulk, func(r *kgo.Record) (bool, error) {
		ix.add(r.Key, r.Value, wantDLT, keepRuns)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read replay ledger %s: %w", e.cfg.LedgerTopic, err)
	}
	if ix.bad > 0 {
		e.cfg.Logger.Warn("ledger records that are not opsctl entries were ignored", "topic", e.cfg.LedgerTopic, "count", ix.bad)
	}
	return ix, nil
}
