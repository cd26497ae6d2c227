package replay

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// stepChunk is how many steps the scan hands to the committer at once.
const stepChunk = 256

// step is one selected record on its way from the scan to the committer.
type step struct {
	from    Coord
	dec     decision
	item    *item // for records to replay
	scanned int64
}

// scanner is a run's scan: in a goroutine of its own it fetches, decodes and decides the
// records, builds the ones to replay (newItem) and hands them to the committer as steps, so
// that the network waits of the scan and of the transactions overlap.
//
// Steps travel in chunks on steps, handed on when full and after each fetch (so nothing waits
// on the next fetch); a rate-limited run hands on every record as it comes. The committer
// gives the chunks it is done with back on spare for the scan to fill again.
type scanner struct {
	r      *run
	ru     *rules
	ranges []partRange
	pre    *rangeScan // the scan openWalk started early; the walk closes it
	chunk  int
	// steps is closed when the scan ends; its outcome is then on done, and sum is final.
	steps chan []step
	spare chan []step
	done  chan error
	sum   ScanSummary
	// The scan goroutine's alone: the chunk being filled and the last target whose
	// max.message.bytes was looked up.
	pending    []step
	lastTarget string
}

// newScanner returns the scan of ranges for r, with room on its channel for about two batches
// of batchCap records.
func newScanner(r *run, ru *rules, ranges []partRange, pre *rangeScan, batchCap int) *scanner {
	chunk := stepChunk
	if r.limiter != nil {
		chunk = 1
	}
	steps := make(chan []step, 2*batchCap/chunk+1)
	return &scanner{
		r: r, ru: ru, ranges: ranges, pre: pre, chunk: chunk,
		steps:   steps,
		spare:   make(chan []step, cap(steps)+2),
		done:    make(chan error, 1),
		pending: make([]step, 0, chunk),
	}
}

// run scans until the records are all decided, ctx is cancelled or the scan fails, then closes
// steps and reports its outcome on done.
func (s *scanner) run(ctx context.Context) {
	defer close(s.steps)
	send := func() error { return s.send(ctx) }
	err := s.r.e.walk(ctx, s.r.req, s.ru, s.ranges, &s.sum, true, s.pre,
		func(rec *kgo.Record, d *dlt.Record, dec decision) (bool, error) { return s.take(ctx, rec, d, dec) }, send)
	if err == nil {
		err = send()
	}
	s.done <- err
}

// take turns one decided record into a step, building the record to replay.
func (s *scanner) take(ctx context.Context, rec *kgo.Record, d *dlt.Record, dec decision) (bool, error) {
	r := s.r
	st := step{from: Coord{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset}, dec: dec, scanned: s.sum.Scanned}
	if dec.action == ActionReplayed {
		if dec.target != s.lastTarget {
			r.limits.learn(ctx, r.e, dec.target)
			s.lastTarget = dec.target
		}
		if r.limiter != nil {
			if err := r.limiter.Wait(ctx); err != nil {
				return false, err
			}
		}
		st.item = r.newItem(rec, st.from, dec)
	}
	s.pending = append(s.pending, st)
	if len(s.pending) < s.chunk {
		return true, nil
	}
	if err := s.send(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// send hands the chunk being filled to the committer and takes a spare one (or a new one).
func (s *scanner) send(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	select {
	case s.steps <- s.pending:
		select {
		case s.pending = <-s.spare:
		default:
			s.pending = make([]step, 0, s.chunk)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recycle gives a chunk the committer is done with back to the scan. Its items belong to their
// batches now, so the chunk forgets them.
func (s *scanner) recycle(sts []step) {
	clear(sts)
	select {
	case s.spare <- sts[:0]:
	default:
	}
}

// wait lets the scan goroutine finish, once its context is cancelled or it has ended, and
// returns its summary and outcome. Steps it decided after the committer stopped taking them
// are dropped: they are not counted.
func (s *scanner) wait() (ScanSummary, error) {
	for range s.steps {
	}
	err := <-s.done
	return s.sum, err
}
