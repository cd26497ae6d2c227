package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// committer is the side of a run that turns the scan's steps into transactions: it collects
// the records to replay into batches, hands each batch to the next lane, settles the batches
// in the order they were made, and reports results, counts and progress. Everything the caller
// sees happens on the committer's goroutine, in record order.
type committer struct {
	r     *run
	lanes []*lane // the lanes batches are handed to, in turn
	// batchCap is a batch's size; a full batch keeps growing, up to growCap, while the lane
	// the next batch would take is still committing.
	batchCap, growCap int

	cur        *laneBatch   // the batch being collected, streaming into its lane
	committing []*laneBatch // batches handed to their lanes, oldest first
	nextLane   int
	scanned    int64
	lastReport time.Time
	// err is the first failed batch's: records decided after it are not counted, and no
	// further batch is handed on.
	err error
	// Results are made only for a caller that takes them; reportAll also for the records
	// replayed and skipped.
	report, reportAll bool
	// deadline flushes the batch being collected a second after it began: a slow scan
	// (rate-limited, or waiting on the broker) still commits what it has every second.
	deadline *time.Timer
}

func newCommitter(r *run, lanes []*lane, batchCap, growCap int) *committer {
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	report := r.req.OnResult != nil
	return &committer{r: r, lanes: lanes, batchCap: batchCap, growCap: growCap, deadline: deadline,
		report: report, reportAll: report && !r.req.ProblemsOnly}
}

// loop takes the scan's steps until the scan ends or a batch fails; the batches it handed on
// may still be committing.
func (c *committer) loop(ctx context.Context, sc *scanner) {
	for c.err == nil {
		var sts []step
		var more bool
		select {
		case sts, more = <-sc.steps:
		case <-c.deadline.C:
			c.flush(ctx)
			continue
		}
		if !more {
			return
		}
		for i := range sts {
			if c.err != nil {
				break // records decided after a failure are not counted
			}
			c.take(ctx, &sts[i])
		}
		sc.recycle(sts)
		if time.Since(c.lastReport) > 200*time.Millisecond {
			c.lastReport = time.Now()
			c.r.progress(c.scanned)
		}
	}
}

// take counts one step and reports it, or adds its record to the batch being collected.
func (c *committer) take(ctx context.Context, st *step) {
	r := c.r
	c.scanned = st.scanned
	r.sum.Selected++
	switch st.dec.action {
	case ActionSkipped:
		r.sum.Skipped++
		if c.reportAll {
			r.result(Result{From: st.from, Action: ActionSkipped, Reason: st.dec.why()})
		}
	case ActionRefused:
		r.sum.Refused++
		if c.report {
			var target *Coord
			if st.dec.target != "" {
				target = &Coord{Topic: st.dec.target, Partition: -1, Offset: -1}
			}
			r.result(Result{From: st.from, Action: ActionRefused, Code: st.dec.code, Reason: st.dec.why(), Target: target})
		}
	case ActionReplayed:
		if c.cur == nil {
			// A new batch takes the next lane, once that lane's previous batch has committed
			// (and been reported, in order).
			ln := c.lanes[c.nextLane%len(c.lanes)]
			c.nextLane++
			for ln.committing != nil {
				c.settle()
			}
			if c.err != nil {
				r.sum.Selected-- // decided after a failure: not counted
				return
			}
			c.cur = &laneBatch{lane: ln}
			c.deadline.Reset(time.Second)
		}
		if !r.e.noStream {
			c.cur.lane.stream(ctx, st.item)
		}
		c.cur.items = append(c.cur.items, st.item)
		if n := len(c.cur.items); n >= c.batchCap && (n >= c.growCap || c.laneFree(c.nextLane)) {
			c.flush(ctx)
		}
	}
}

// laneFree reports whether lane k (counted round the lanes) has no batch committing.
func (c *committer) laneFree(k int) bool {
	lb := c.lanes[k%len(c.lanes)].committing
	return lb == nil || lb.committed()
}

// flush hands the batch being collected to its lane to commit.
func (c *committer) flush(ctx context.Context) {
	c.deadline.Stop()
	if c.cur == nil || c.err != nil {
		return
	}
	lb := c.cur
	c.cur = nil
	lb.done = make(chan struct{})
	lb.lane.committing = lb
	c.committing = append(c.committing, lb)
	go func() {
		lb.err = lb.lane.commitBatch(ctx, lb.items)
		close(lb.done)
	}()
}

// settle waits for the oldest committing batch and reports its records.
func (c *committer) settle() {
	r := c.r
	lb := c.committing[0]
	c.committing = c.committing[1:]
	<-lb.done
	err := lb.err
	lb.lane.committing = nil
	for _, it := range lb.items {
		if it.replayed {
			r.sum.Replayed++
			if c.reportAll {
				r.result(Result{From: it.from, Action: ActionReplayed, ReplayID: string(it.id), ReplayCount: it.count,
					Target: &Coord{Topic: it.out.Topic, Partition: it.out.Partition, Offset: it.out.Offset}})
			}
		} else {
			r.failed(it, cmp.Or(it.fail, err, errors.New("not replayed")))
		}
	}
	if err != nil && c.err == nil {
		c.err = err
	}
	// A committed batch is done with its items once they are reported: their memory can take
	// new records. After a failure nothing is reused (the producer may not be done with what
	// it was sent), and the run ends anyway.
	if c.err == nil && len(lb.items) > 0 {
		r.slabs.release(lb.items[len(lb.items)-1].seq)
	}
	r.progress(c.scanned)
}

// finish ends the committing once the scan has stopped with err (nil when it read everything):
// the batch being collected is handed on, or, after a failure, aborted; every batch handed on
// is waited for and reported. It returns the run's outcome.
func (c *committer) finish(ctx context.Context, err error) error {
	c.deadline.Stop()
	if err == nil {
		c.flush(ctx)
	}
	// Batches handed to their lanes commit (or not) whatever happened since: wait for each and
	// report what it did.
	for len(c.committing) > 0 {
		c.settle()
	}
	if err == nil {
		err = c.err
	}
	if c.cur != nil {
		// The run stopped (cancelled, broker error, another batch failed) in the middle of a
		// batch: its transaction is aborted, so nothing of it was applied.
		c.cur.lane.abortOpen(ctx, err)
		for _, it := range c.cur.items {
			c.r.failed(it, fmt.Errorf("not replayed, nothing of its batch was applied: %w", err))
		}
	}
	return err
}
