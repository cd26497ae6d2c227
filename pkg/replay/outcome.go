package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// What happened after a replay: a replayed record that fails again goes back to a dead-letter
// topic, carrying the headers the replay gave it (x-opsctl-replay-id names the run,
// x-opsctl-replayed-from the dead letter it was). Reading the DLTs for those records says how
// many of a run's replays failed again, and why; the committed offsets of the consumer groups
// of the target topics say whether the replayed records were consumed at all. Nothing else
// tells an operator that "✓ replayed 2" meant two records straight back in the DLT.

// Outcome is what became of one replay run's records after the run.
type Outcome struct {
	RunID string `json:"runId"`
	DLT   string `json:"dlt"`
	// Replayed counts the run's replayed records the ledger holds.
	Replayed int `json:"replayed"`
	// CameBack counts the replayed records that failed again: dead letters, in any DLT, that
	// carry the run's replay ids (or, from older versions, name a dead letter the run replayed
	// in x-opsctl-replayed-from).
	CameBack int `json:"cameBack"`
	// ByError groups them by their new error source and code, largest first.
	ByError []ErrorCount `json:"byError"`
	// Targets says, per topic the run wrote to, how far its consumer groups have read.
	Targets []TargetProgress `json:"targets"`
	// Scanned counts the DLT records read to find those that came back (those stamped before
	// the run started are not read).
	Scanned int64 `json:"scanned"`
}

// ErrorCount is a number of dead letters with one error source and code, and one of them.
type ErrorCount struct {
	ErrorSource string `json:"errorSource"`
	ErrorCode   string `json:"errorCode"`
	Count       int    `json:"count"`
	// Sample is the earliest of them (then by topic, partition and offset): the same whatever
	// order the partitions were read in.
	Sample   Coord `json:"sample"`
	sampleTS int64
}

// sample makes the dead letter at c, stamped ts (Unix milliseconds), the sample if it is earlier.
func (ec *ErrorCount) sample(c Coord, ts int64) {
	if ec.Sample.Topic == "" || cmp.Or(cmp.Compare(ts, ec.sampleTS), cmp.Compare(c.Topic, ec.Sample.Topic), cmp.Compare(c.Partition, ec.Sample.Partition), cmp.Compare(c.Offset, ec.Sample.Offset)) < 0 {
		ec.Sample, ec.sampleTS = c, ts
	}
}

// TargetProgress is how far the consumer groups of one target topic have read past a run's
// replayed records.
type TargetProgress struct {
	Topic    string `json:"topic"`
	Replayed int    `json:"replayed"`
	// Groups are the consumer groups with offsets committed on the topic, by name. None means
	// nothing has consumed the topic yet (or its consumers commit nowhere Kafka sees).
	Groups []GroupProgress `json:"groups"`
}

// GroupProgress is one consumer group's progress past a run's replayed records on one topic.
type GroupProgress struct {
	Group string `json:"group"`
	// Consumed counts the replayed records below the group's committed offsets; Pending those
	// at or past them, or on partitions where the group has committed nothing.
	Consumed int `json:"consumed"`
	Pending  int `json:"pending"`
	// Lag is the group's lag on the partitions the run wrote to: the offsets from its committed
	// offset to the end, what was written after the replay and transaction markers included,
	// as Kafka's own tools count it.
	Lag int64 `json:"lag"`
	// Targeted says the run named this group with --group (x-opsctl-target-group): the other
	// groups skip the records.
	Targeted bool `json:"targeted,omitempty"`
}

// ErrRunNotFound means no run in the ledger has the id asked for.
var ErrRunNotFound = errors.New("no such replay run in the ledger")

// Outcome returns the run whose id is runID (or the only one whose id starts with it) and
// what became of its records.
func (e *Engine) Outcome(ctx context.Context, runID string) (_ *Run, _ *Outcome, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	runID = strings.TrimSpace(runID)
	if runID == "" {
		return nil, nil, fmt.Errorf("%w: no run id given", ErrRunNotFound)
	}
	runs, err := e.History(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	var found []Run
	for _, r := range runs {
		if r.RunID == runID {
			found = []Run{r}
			break
		}
		if strings.HasPrefix(r.RunID, runID) {
			found = append(found, r)
		}
	}
	switch {
	case len(found) == 0:
		return nil, nil, fmt.Errorf("%w: %s (opsctl dlt history lists the runs)", ErrRunNotFound, runID)
	case len(found) > 1:
		ids := make([]string, len(found))
		for i, r := range found {
			ids[i] = r.RunID
		}
		return nil, nil, fmt.Errorf("%w: %s is the start of %d run ids (%s); give more of it", ErrRunNotFound, runID, len(found), strings.Join(ids, ", "))
	}
	outs, err := e.Outcomes(ctx, found)
	if err != nil {
		return nil, nil, err
	}
	return &found[0], outs[found[0].RunID], nil
}

// Outcomes returns, by run id, what became of the records of runs (as History returns them)
// after they were replayed. It reads the ledger for the runs' replayed records, every DLT from
// the earliest run's start for records that came back, and the committed offsets of the
// consumer groups of the topics the runs wrote to.
func (e *Engine) Outcomes(ctx context.Context, runs []Run) (_ map[string]*Outcome, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	out := map[string]*Outcome{}
	if len(runs) == 0 {
		return out, nil
	}
	ix := newLedgerIndex()
	ix.rows = map[string]*runRows{}
	byPrefix := map[string]string{} // the run-id part of a replay id → run id
	earliest := runs[0].Started
	for _, r := range runs {
		ix.rows[r.RunID] = newRunRows()
		byPrefix[replayIDPrefix(r.RunID)] = r.RunID
		if r.Started.Before(earliest) {
			earliest = r.Started
		}
		out[r.RunID] = &Outcome{RunID: r.RunID, DLT: r.DLT, ByError: []ErrorCount{}, Targets: []TargetProgress{}}
	}
	if _, err := e.readLedgerInto(ctx, ix, "", false); err != nil {
		return nil, err
	}
	for id, rr := range ix.rows {
		rr.sorted()
		out[id].Replayed = rr.n
	}
	// A dead letter that came back is stamped after its run started, by the clock of the
	// service that wrote it: an hour's margin covers clocks that disagree.
	if err := e.cameBack(ctx, ix, byPrefix, earliest.Add(-time.Hour), out); err != nil {
		return nil, err
	}
	if err := e.consumed(ctx, ix, runs, out); err != nil {
		return nil, err
	}
	return out, nil
}

// replayIDPrefix is the part of a run's replay ids that names the run: the run id (a UUID)
// without its last four bytes, which number the records (see newItem).
func replayIDPrefix(runID string) string {
	const seqHex = 8
	if len(runID) == 36 {
		return runID[:36-seqHex]
	}
	return runID
}

// cameBack reads every DLT from earliest on for the records of the runs that failed again.
func (e *Engine) cameBack(ctx context.Context, ix *ledgerIndex, byPrefix map[string]string, earliest time.Time, out map[string]*Outcome) error {
	ids, err := e.topicIDs(ctx)
	if err != nil {
		return err
	}
	var dlts []string
	for t := range ids {
		if t != e.cfg.LedgerTopic && e.cfg.DLTPattern.MatchString(t) {
			dlts = append(dlts, t)
		}
	}
	sort.Strings(dlts)
	groups := map[string]map[dlt.GroupKey]*ErrorCount{}
	since := &Selection{Since: earliest}
	for _, topic := range dlts {
		ranges, err := e.topicRanges(ctx, topic, since)
		if err != nil {
			if errors.Is(err, ErrUnknownTopic) {
				continue // deleted since it was listed
			}
			return err
		}
		err = e.scanAll(ctx, topic, ranges, fetchBrowse, func(r *kgo.Record) (bool, error) {
			// The replay id names the run; a record of an older version without one is the
			// latest replay of the dead letter its x-opsctl-replayed-from names.
			var runID, from string
			byID := false
			for _, h := range r.Headers {
				switch h.Key {
				case dlt.HeaderReplayID:
					if len(h.Value) == 36 {
						runID, byID = byPrefix[replayIDPrefix(string(h.Value))], true
					}
				case dlt.HeaderReplayedFrom:
					from = string(h.Value)
				}
			}
			if !byID && from != "" {
				if c, ok := ParseCoord(from); ok {
					if m, ok := ix.view(c.Topic, ids[c.Topic]).lookup(c.Partition, c.Offset, -1); ok {
						runID = m.run
					}
				}
			}
			o := out[runID]
			if o == nil {
				return true, nil
			}
			if ix.rows[runID].has(r.Topic, r.Partition, r.Offset) {
				return true, nil // the replayed record itself, sent to a DLT with --to: not a failure
			}
			d := dlt.DecodeBrief(r)
			g := groups[runID]
			if g == nil {
				g = map[dlt.GroupKey]*ErrorCount{}
				groups[runID] = g
			}
			k := d.GroupKey()
			ec := g[k]
			if ec == nil {
				ec = &ErrorCount{ErrorSource: k.Source, ErrorCode: k.Code}
				g[k] = ec
			}
			ec.sample(Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, r.Timestamp.UnixMilli())
			ec.Count++
			o.CameBack++
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("read %s for replayed records that came back: %w", topic, err)
		}
		for _, o := range out {
			for _, rg := range ranges {
				o.Scanned += max(0, rg.end-rg.start)
			}
		}
	}
	for runID, g := range groups {
		o := out[runID]
		for _, ec := range g {
			o.ByError = append(o.ByError, *ec)
		}
		sort.Slice(o.ByError, func(i, j int) bool {
			a, b := o.ByError[i], o.ByError[j]
			if a.Count != b.Count {
				return a.Count > b.Count
			}
			return a.ErrorSource+"\x00"+a.ErrorCode < b.ErrorSource+"\x00"+b.ErrorCode
		})
	}
	return nil
}

// consumed reads the committed offsets of every consumer group and says, per run and target
// topic, how many of the replayed records each group has read past.
func (e *Engine) consumed(ctx context.Context, ix *ledgerIndex, runs []Run, out map[string]*Outcome) error {
	var topics []string
	for _, rr := range ix.rows {
		for t := range rr.targets {
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	if len(topics) == 0 {
		return nil
	}
	listed, err := e.adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list consumer groups: %w", err)
	}
	committed := map[string]kadm.OffsetResponses{} // group → its offsets
	for g, resp := range e.adm.FetchManyOffsets(ctx, listed.Groups()...) {
		if resp.Err != nil {
			return fmt.Errorf("read the offsets of consumer group %s: %w", g, resp.Err)
		}
		committed[g] = resp.Fetched
	}
	ends, err := e.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	group := map[string]string{}
	for _, r := range runs {
		group[r.RunID] = r.Group
	}
	for runID, rr := range ix.rows {
		o := out[runID]
		names := make([]string, 0, len(rr.targets))
		for t := range rr.targets {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			tp := TargetProgress{Topic: t, Groups: []GroupProgress{}}
			for _, os := range rr.targets[t] {
				tp.Replayed += len(os)
			}
			gnames := make([]string, 0, len(committed))
			for g, offs := range committed {
				if len(offs[t]) > 0 {
					gnames = append(gnames, g)
				}
			}
			sort.Strings(gnames)
			for _, g := range gnames {
				gp := GroupProgress{Group: g, Targeted: g == group[runID]}
				for p, os := range rr.targets[t] {
					at := int64(-1)
					if c, ok := committed[g].Lookup(t, p); ok && c.Err == nil {
						at = c.At
					}
					if at < 0 {
						gp.Pending += len(os)
					} else {
						n, _ := slices.BinarySearch(os, at) // offsets below at were consumed
						gp.Consumed += n
						gp.Pending += len(os) - n
					}
					if end, ok := ends.Lookup(t, p); ok && end.Err == nil {
						gp.Lag += max(0, end.Offset-max(at, 0))
					}
				}
				tp.Groups = append(tp.Groups, gp)
			}
			o.Targets = append(o.Targets, tp)
		}
	}
	return nil
}
