package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Lanes: a Kafka producer has at most one transaction open, and a batch's transaction spends
// most of its life waiting on the broker — for its records' acknowledgements (which carry the
// offsets its ledger entries record), for its ledger entries, for the commit. A replay
// therefore runs several transactional producers, each with a transactional id of its own,
// and hands batches to them in turn: while one lane's batch commits, the next batch streams
// into another.
//
// Exactly once holds lane by lane, as it does with one producer: every batch is one
// transaction holding its records and their ledger entries. A run takes the fence of lane 0,
// then of every other lane, then takes lane 0's again to check that no other run started in
// between, and commits nothing before that check has passed. It reads the ledger once every
// lane is fenced (its producer id taken: Kafka has then settled every transaction an earlier
// run had open on it), while the check runs. Of two runs that both pass that check, the later one
// took lane 0's first fence after the earlier one's check, so it fenced every lane after that
// check too, and the earlier one can commit nothing after the later one's fences, which come
// before the later one's ledger read: the read misses nothing. The lanes other than 0 may
// therefore be fenced all at once, in parallel: only their order against lane 0's two fences
// matters.
//
// Every run fences replayLanes lanes, whatever number it commits on: a run must fence every
// lane an earlier run may commit on. A run commits on nearLanes of them, and on all of them
// when wideAfter is set and a transaction takes that long or longer, as against a broker some
// milliseconds away (see lanesFor).
//
// Committing on lanes 2 and 3 is off by default (wideAfter 0), and must stay off until no
// version that fences only two lanes is left to run a replay: such a run, started while a run
// of this version commits on lane 2, fences lanes 0 and 1, reads the ledger, and then misses
// the batch lane 2 commits after its read, which it replays again. Fencing four lanes is safe
// beside either version. Against kfake 5 ms away (TestBenchReplayVariants, lanes=2,4,8) more
// lanes gained nothing measurable on a loaded two-core machine: the scan, not the commits,
// was what the run waited for.
const (
	replayLanes = 4
	nearLanes   = 2
)

// lanesFor returns how many lanes a run commits on, given the time a transaction took.
func (e *Engine) lanesFor(txnTime time.Duration) int {
	switch {
	case e.lanes > 0:
		return e.lanes
	case e.wideAfter > 0 && txnTime >= e.wideAfter:
		return replayLanes
	default:
		return nearLanes
	}
}

// laneTransactionalID is lane k's transactional id: lane 0 is TransactionalID(dltTopic), lane
// k "opsctl-replay/<dlt topic>/k" (a topic name never contains '/').
func laneTransactionalID(dltTopic string, k int) string {
	if k == 0 {
		return TransactionalID(dltTopic)
	}
	return TransactionalID(dltTopic) + "/" + strconv.Itoa(k)
}

// lane is one transactional producer of a run.
type lane struct {
	r        *run
	cl       *kgo.Client
	tx       openTxn
	produced func(*kgo.Record, error) // the promise of every replayed record, made once
	// committing is the batch this lane is committing, nil when it is free. Only the
	// committer goroutine reads or writes it.
	committing *laneBatch
}

// laneBatch is a batch handed to a lane: it commits in the lane's goroutine and is reported,
// in order, by the committer.
type laneBatch struct {
	lane  *lane
	items []*item
	done  chan struct{} // closed when the lane has committed the batch, or failed to
	err   error         // the commit's outcome, set before done is closed
}

// committed reports, without waiting, whether the lane is done with the batch.
func (lb *laneBatch) committed() bool {
	select {
	case <-lb.done:
		return true
	default:
		return false
	}
}

// openTxn is the transaction the committer streams a batch's records into while the scan
// collects the rest of the batch, so the producer serialises, compresses and sends them
// while later records are still being read.
type openTxn struct {
	open     bool
	beginErr error          // BeginTransaction failed: nothing was sent
	wg       sync.WaitGroup // records produced and not yet answered
	mu       sync.Mutex
	errs     map[*kgo.Record]error // records that failed, by record
}

func newLane(r *run, cl *kgo.Client) *lane {
	ln := &lane{r: r, cl: cl}
	ln.produced = ln.onProduced
	return ln
}

// transact runs fn inside one transaction and commits it, aborting on any failure. fn's records
// must all have succeeded for the commit to be attempted (franz-go would otherwise commit the
// ones that did).
func (ln *lane) transact(ctx context.Context, fn func() error) error {
	if err := ln.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	return ln.commitOpen(ctx, fn)
}

// commitOpen runs fn inside the transaction already begun and commits it, as transact does.
func (ln *lane) commitOpen(ctx context.Context, fn func() error) error {
	if err := fn(); err != nil {
		return ln.abort(ctx, err)
	}
	if err := ctx.Err(); err != nil {
		return ln.abort(ctx, err) // interrupted after the last record: do not commit a half-wanted batch
	}
	// EndTxn must not be cut off by a cancelled context: its outcome would be unknowable. A
	// silent broker cuts it off all the same: its outcome is then unknown whatever one waits.
	dctx, release := ln.r.e.watch.detach(ctx)
	defer release()
	ectx, cancel := context.WithTimeout(dctx, 60*time.Second)
	defer cancel()
	if err := ln.cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		if isFenced(err) {
			return err
		}
		// The commit's outcome may be unknown (franz-go says so for transport errors): abort what
		// can be aborted and let the next run's ledger read decide what happened.
		aerr := ln.cl.EndTransaction(ectx, kgo.TryAbort)
		if errors.Is(err, kerr.InvalidTxnState) && isFenced(aerr) {
			// The coordinator answered that there was no transaction to commit: another run's
			// fence had aborted it. Nothing of it was applied.
			return aerr
		}
		return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
	}
	return nil
}

// abortedError is a transaction failure after which the abort went through cleanly: nothing of
// the transaction was applied and the producer is fit for another transaction.
type abortedError struct{ cause error }

// Error is the cause's message.
func (e *abortedError) Error() string { return e.cause.Error() }

// Unwrap returns the cause.
func (e *abortedError) Unwrap() error { return e.cause }

// abort ends the open transaction without committing, so nothing produced in it becomes
// visible, and returns cause (or the fencing error that explains it).
func (ln *lane) abort(ctx context.Context, cause error) error {
	dctx, release := ln.r.e.watch.detach(ctx)
	defer release()
	actx, cancel := context.WithTimeout(dctx, 60*time.Second)
	defer cancel()
	if err := ln.cl.AbortBufferedRecords(actx); err != nil {
		return errors.Join(cause, fmt.Errorf("abort buffered records: %w", err))
	}
	if err := ln.cl.EndTransaction(actx, kgo.TryAbort); err != nil {
		if isFenced(err) && !isFenced(cause) {
			return err
		}
		return errors.Join(cause, fmt.Errorf("abort transaction: %w", err))
	}
	return &abortedError{cause: cause}
}

// abortOpen aborts the transaction a batch was streaming into when the run stops before the
// batch is complete; nothing of it is applied.
func (ln *lane) abortOpen(ctx context.Context, cause error) {
	if !ln.tx.open {
		return
	}
	ln.tx.open = false
	if ln.tx.beginErr == nil {
		if err := ln.abort(ctx, cause); !errors.As(err, new(*abortedError)) {
			// Nothing was committed either way: Kafka aborts the transaction when it times out,
			// or when the next run takes the lane's fence.
			ln.r.e.cfg.Logger.Debug("could not abort the open replay transaction", "run", ln.r.id, "err", err)
		}
	}
	// Records a silent broker never answers are left to the client's close.
	dctx, release := ln.r.e.watch.detach(ctx)
	defer release()
	if err := waitGroup(dctx, &ln.tx.wg); err != nil {
		ln.r.e.cfg.Logger.Debug("records of the aborted batch left unanswered", "run", ln.r.id, "err", err)
	}
	ln.tx.mu.Lock()
	ln.tx.errs = nil
	ln.tx.mu.Unlock()
}

// produceSync produces one record and waits for its answer, sending it at once instead of
// after the producer's linger.
func (ln *lane) produceSync(ctx context.Context, rec *kgo.Record) error {
	done := make(chan error, 1)
	ln.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { done <- err })
	if err := ln.cl.Flush(ctx); err != nil {
		return err
	}
	return <-done
}

// stream sends it in the open transaction, beginning one for the first record of a batch.
// Its outcome is collected by commitBatch.
func (ln *lane) stream(ctx context.Context, it *item) {
	if !ln.tx.open {
		ln.tx.open = true
		ln.tx.beginErr = nil
		if err := ln.cl.BeginTransaction(); err != nil {
			ln.tx.beginErr = fmt.Errorf("begin transaction: %w", err)
		}
	}
	if ln.tx.beginErr == nil {
		ln.send(ctx, it)
	}
}

// send produces it; await collects the outcome.
func (ln *lane) send(ctx context.Context, it *item) {
	it.err = nil
	it.out.Partition, it.out.Offset = -1, -1
	ln.tx.wg.Add(1)
	ln.cl.Produce(ctx, it.out, ln.produced)
}

// onProduced counts answers and keeps failures.
func (ln *lane) onProduced(rec *kgo.Record, err error) {
	if err != nil {
		ln.tx.mu.Lock()
		if ln.tx.errs == nil {
			ln.tx.errs = map[*kgo.Record]error{}
		}
		ln.tx.errs[rec] = err
		ln.tx.mu.Unlock()
	}
	ln.tx.wg.Done()
}

// await flushes what is buffered and waits until every record sent has an answer, then gives
// each item its outcome.
func (ln *lane) await(ctx context.Context, items []*item) error {
	// Flush sends what is buffered now instead of after the linger: the batch is complete, and
	// every transaction would otherwise wait out a linger twice.
	flushErr := ln.cl.Flush(ctx)
	// A silent broker answers none of them: the batch's commit is never sent, so nothing of it
	// is applied, and nothing waits for the answers.
	dctx, release := ln.r.e.watch.detach(ctx)
	defer release()
	if err := waitGroup(dctx, &ln.tx.wg); err != nil {
		return fmt.Errorf("replay batch: %w", err)
	}
	ln.tx.mu.Lock()
	errs := ln.tx.errs
	ln.tx.errs = nil
	ln.tx.mu.Unlock()
	for _, it := range items {
		if err, ok := errs[it.out]; ok {
			it.err = err
		}
	}
	if flushErr != nil && ctx.Err() != nil {
		return fmt.Errorf("replay batch interrupted: %w", ctx.Err())
	}
	for _, it := range items {
		if it.err != nil {
			return fmt.Errorf("replay %s to %s: %w", it.from, it.out.Topic, it.err)
		}
	}
	return nil
}

// commitBatch replays items and writes their ledger entries in one transaction: the open one
// the items were streamed into, or a new one. Records that fail on their own (too large, target
// gone) fail alone and the rest are retried once in a fresh transaction; any other failure
// fails the batch and is returned. Each item ends with replayed set, or fail saying why not;
// the committer reports them.
func (ln *lane) commitBatch(ctx context.Context, items []*item) error {
	pending := items
	for attempt := 0; attempt < 2 && len(pending) > 0; attempt++ {
		// The first attempt commits the transaction the items were streamed into; a retry (or a
		// batch that was not streamed) begins one and sends them now.
		var err error
		if attempt == 0 && ln.tx.open {
			ln.tx.open = false
			err = ln.tx.beginErr
		} else if err = ln.cl.BeginTransaction(); err != nil {
			err = fmt.Errorf("begin transaction: %w", err)
		} else {
			for _, it := range pending {
				ln.send(ctx, it)
			}
		}
		if err == nil {
			err = ln.commitOpen(ctx, func() error {
				if err := ln.await(ctx, pending); err != nil {
					return err
				}
				return ln.finishBatch(ctx, pending)
			})
		}
		if err == nil {
			for _, it := range pending {
				it.replayed = true
			}
			return nil
		}
		var aborted *abortedError
		var rest []*item
		for _, it := range pending {
			if it.err != nil && recordLevel(it.err) && errors.As(err, &aborted) && !isFenced(err) {
				it.fail = fmt.Errorf("replay to %s: %w (transaction aborted, nothing of it applied)", it.out.Topic, it.err)
				continue
			}
			it.err = nil
			rest = append(rest, it)
		}
		if len(rest) == len(pending) || attempt == 1 {
			for _, it := range rest {
				if errors.Is(err, ErrCommitUnknown) {
					it.fail = fmt.Errorf("%w; run the replay again: the ledger shows whether this batch was applied, and it is replayed only if not", err)
				} else {
					it.fail = fmt.Errorf("batch aborted, nothing of it applied: %w", err)
				}
			}
			return err
		}
		pending = rest
	}
	return nil
}

// finishBatch writes the ledger entries of a batch whose records are acknowledged, then runs
// the test hook, still inside the transaction.
func (ln *lane) finishBatch(ctx context.Context, items []*item) error {
	if err := ln.writeLedger(ctx, items); err != nil {
		return err
	}
	if ln.r.e.beforeCommit != nil {
		ln.r.e.beforeCommit(ln.r.id)
	}
	return nil
}

// writeLedger writes the batch entries of items, whose records have their offsets, and waits
// for their answers.
func (ln *lane) writeLedger(ctx context.Context, items []*item) error {
	r := ln.r
	var wg sync.WaitGroup
	at := r.e.cfg.Now().UTC().Format(time.RFC3339Nano)
	// Rows per entry: at most maxBatchRows, and few enough that an entry of the longest rows
	// (about 150 bytes each) stays under half the ledger's max.message.bytes.
	perEntry := max(1, min(maxBatchRows, int(r.limits.get(r.e.cfg.LedgerTopic))/2/150))
	rows := make([]batchRow, 0, min(len(items), perEntry))
	var ledgerErr error
	var mu sync.Mutex
	for i, it := range items {
		rows = append(rows, batchRow{from: it.from, target: Coord{Topic: it.out.Topic, Partition: it.out.Partition, Offset: it.out.Offset},
			count: it.count, seq: it.seq, stamp: it.stamp})
		if len(rows) < perEntry && i < len(items)-1 {
			continue
		}
		n := int(r.batches.Add(1))
		rec := &kgo.Record{Topic: r.e.cfg.LedgerTopic, Key: []byte(BatchKey(r.req.Topic, r.id, n)), Value: r.enc.batch(at, rows)}
		wg.Add(1)
		ln.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				ledgerErr = cmp.Or(ledgerErr, err)
				mu.Unlock()
			}
			wg.Done()
		})
		rows = rows[:0]
	}
	flushErr := ln.cl.Flush(ctx)
	dctx, release := ln.r.e.watch.detach(ctx)
	defer release()
	if err := waitGroup(dctx, &wg); err != nil {
		return fmt.Errorf("write ledger %s: %w", r.e.cfg.LedgerTopic, err)
	}
	if flushErr != nil && ctx.Err() != nil {
		return fmt.Errorf("replay batch interrupted: %w", ctx.Err())
	}
	if ledgerErr != nil {
		return fmt.Errorf("write ledger %s: %w", r.e.cfg.LedgerTopic, ledgerErr)
	}
	return nil
}
