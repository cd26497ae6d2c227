package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ledgerAhead is a replay's read of the ledger, begun while the run takes its fences: the part
// of the ledger that is decided already (up to the last stable offsets) does not change when
// the fences are taken, so it is read meanwhile, and only the rest, from there to the high
// watermark the fences leave, is read after them (see rest). Against a ledger with a long
// history, or a broker some milliseconds away, the fences then hide most of the read.
type ledgerAhead struct {
	ix   *ledgerIndex
	ends map[int32]int64 // where the read ahead stopped, by partition
	err  error
	done chan struct{}
}

// readLedgerAhead starts reading the decided part of the ledger's entries for dltTopic.
func (e *Engine) readLedgerAhead(ctx context.Context, dltTopic string) *ledgerAhead {
	la := &ledgerAhead{ix: newLedgerIndex(), ends: map[int32]int64{}, done: make(chan struct{})}
	go func() {
		defer close(la.done)
		ranges, err := e.topicRanges(ctx, e.cfg.LedgerTopic, nil)
		if errors.Is(err, ErrUnknownTopic) {
			return // nothing decided yet: rest reads it all
		}
		if err != nil {
			la.err = fmt.Errorf("read replay ledger: %w", err)
			return
		}
		if la.err = e.scanLedger(ctx, la.ix, dltTopic, ranges); la.err == nil {
			for _, pr := range ranges {
				la.ends[pr.p] = pr.end
			}
		}
	}()
	return la
}

// wait waits for the read ahead to end, whatever its outcome (a run that stops before reading
// the rest still waits for it).
func (la *ledgerAhead) wait() { <-la.done }

// rest completes the read: the ledger from where the read ahead stopped to its high watermark,
// waiting for open transactions below it to end (after a run's fences none is left open by an
// earlier run). Together the two reads hold every entry of the ledger up to that watermark.
func (la *ledgerAhead) rest(ctx context.Context, e *Engine, dltTopic string) (*ledgerIndex, error) {
	la.wait()
	if la.err != nil {
		return nil, la.err
	}
	ranges, err := la.restRanges(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("read replay ledger: %w", err)
	}
	if err := e.scanLedger(ctx, la.ix, dltTopic, ranges); err != nil {
		return nil, err
	}
	if la.ix.bad > 0 {
		e.cfg.Logger.Warn("ledger records that are not opsctl entries were ignored", "topic", e.cfg.LedgerTopic, "count", la.ix.bad)
	}
	return la.ix, nil
}

// restRanges returns the ranges of the ledger the read ahead left: from where it stopped to
// the high watermark; a partition it did not read (the ledger did not exist yet, or has
// partitions it did not have) from offset 0, which the scan moves on to the log's start.
func (la *ledgerAhead) restRanges(ctx context.Context, e *Engine) ([]partRange, error) {
	topic := e.cfg.LedgerTopic
	ends, err := e.highWatermarks(ctx, topic)
	if err != nil {
		return nil, err
	}
	var ranges []partRange
	for p, end := range ends {
		ranges = append(ranges, partRange{p: p, start: la.ends[p], end: end})
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].p < ranges[j].p })
	return ranges, nil
}

// scanLedger adds the entries of the ledger's ranges to ix, as readLedger does.
func (e *Engine) scanLedger(ctx context.Context, ix *ledgerIndex, dltTopic string, ranges []partRange) error {
	// Partitions are read together: an entry's key always lands in the same partition, so the
	// latest entry per key still wins.
	err := e.scanAll(ctx, e.cfg.LedgerTopic, ranges, fetchBulk, func(r *kgo.Record) (bool, error) {
		ix.add(r.Key, r.Value, dltTopic, false)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("read replay ledger %s: %w", e.cfg.LedgerTopic, err)
	}
	return nil
}
