package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The tests here kill, fail and race replay runs at every point of their transactions, then
// run again and check that every dead letter reached its topic exactly once, as a
// read_committed consumer sees it.

const childEnv = "OPSCTL_REPLAY_CHILD_BROKERS"

// TestReplayChildProcess is not a test: it is the replay process the crash tests start and
// kill with SIGKILL, so a crash is a real crash (no deferred cleanup, no abort).
func TestReplayChildProcess(t *testing.T) {
	brokers := os.Getenv(childEnv)
	if brokers == "" {
		t.Skip("helper process for the crash tests")
	}
	batch, _ := strconv.Atoi(os.Getenv("OPSCTL_REPLAY_CHILD_BATCH"))
	c := &addrCluster{addrs: strings.Split(brokers, ",")}
	e, err := New(Config{NewClient: c.newClient, BatchSize: batch, Actor: "child@test"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	e.fixedBatches = true // the crash points count batches of BatchSize
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "child"})
	fmt.Printf("child finished: %+v %v\n", sum, err)
	os.Exit(0)
}

type topicIDs struct{ target, ledger [16]byte }

func producesTo(req kmsg.Request, topic string, id [16]byte) bool {
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return false
	}
	for _, t := range pr.Topics {
		if t.Topic == topic || (t.TopicID != [16]byte{} && t.TopicID == id) {
			return true
		}
	}
	return false
}

func TestCrashAnywhereThenRerunReplaysExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const ledgerTopic = "opsctl.replays"
	// The points are replaytest.CrashPoints, shared with the tests of every process that
	// replays (the redrive agent, `opsctl dlt redrive`).
	points := replaytest.CrashPoints(event.TopicOrdersFailed, ledgerTopic, fences)
	for _, pt := range points {
		t.Run(pt.Name, func(t *testing.T) {
			const n = 45
			c := replaytest.NewCluster(t)
			seedSaga(t, c, n)
			e := newEngine(t, c)
			if err := e.ensureLedger(context.Background()); err != nil {
				t.Fatal(err)
			}
			ids := replaytest.LookupTopicIDs(t, c, event.TopicOrdersFailed, ledgerTopic)

			cmd := exec.Command(os.Args[0], "-test.run=^TestReplayChildProcess$")
			cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(c.ListenAddrs(), ","), "OPSCTL_REPLAY_CHILD_BATCH=10")
			replaytest.KillAt(t, c, ids, pt, cmd)

			fenceLanes(t, c, ordersDLT) // the child's open transactions, as the rerun would
			before := len(replaytest.ReadStable(t, c, event.TopicOrdersFailed))
			sum := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "rerun after crash"})
			t.Logf("committed before the crash: %d; rerun: %s", before, countsString(sum.Counts))
			if sum.Replayed+sum.Skipped != n || sum.Skipped != before {
				t.Fatalf("rerun %s, but %d were committed before the crash", countsString(sum.Counts), before)
			}
			assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
			// The killed run stays in the history as still running, with what it committed.
			runs, err := e.History(context.Background(), ordersDLT)
			if err != nil {
				t.Fatal(err)
			}
			var running, completed int
			for _, r := range runs {
				switch r.Status {
				case RunRunning:
					running++
					if r.Counts.Replayed != before || r.Actor != "child@test" {
						t.Errorf("killed run in the history: %+v", r)
					}
				case RunCompleted:
					completed++
				}
			}
			if completed != 1 || running > 1 || (before > 0 && running != 1) {
				t.Fatalf("history after the crash: %+v", runs)
			}
		})
	}
}

// fences is how many transactions a run commits before its first batch: one per lane to take
// its fence, and lane 0's again to check it.
const fences = replayLanes + 1

// fenceLanes ends whatever transactions a killed or failed run left open on dltTopic's replay
// lanes, as the next run's fences would, so that what it committed can be counted.
func fenceLanes(t *testing.T, c *kfake.Cluster, dltTopic string) {
	t.Helper()
	replaytest.FenceTransactionalIDs(t, c, TransactionalIDs(dltTopic)...)
}

func lookupIDs(t *testing.T, c *kfake.Cluster, target, ledger string) topicIDs {
	t.Helper()
	adm := kadm.NewClient(replaytest.Client(t, c))
	tds, err := adm.ListTopics(context.Background(), target, ledger)
	if err != nil {
		t.Fatal(err)
	}
	return topicIDs{target: tds[target].ID, ledger: tds[ledger].ID}
}

func TestBrokerErrorsMidRunThenRerun(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(c *kfake.Cluster) *kfake.FaultHandle
		partial bool // the faulty run ends partial (record-level failure) rather than with an error
		// applied is how many records the faulty run may have got committed (the rerun skips
		// them), whatever it reported: from, to. Batches commit on two lanes at once, so how
		// many committed before the fault struck depends on timing.
		applied [2]int
	}{
		{"EndTxn fails outright on the second batch", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.UnknownServerError, When: func(kmsg.Request) bool { return n.Add(1) == fences+2 }})
		}, false, [2]int{7, 21}},
		{"EndTxn times out, again and again", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.RequestTimedOut, Count: -1, When: func(kmsg.Request) bool { return n.Add(1) >= fences+2 }})
		}, false, [2]int{7, 14}},
		{"produce to the target times out after the broker appended", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Err: kerr.RequestTimedOut, Count: 2,
				When: func(kmsg.Request) bool { return n.Add(1) >= 2 }})
		}, false, [2]int{0, 40}},
		{"produce to the target fails mid-run", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Err: kerr.PolicyViolation,
				When: func(kmsg.Request) bool { return n.Add(1) == 3 }})
		}, false, [2]int{0, 14}},
		{"produce to the ledger fails mid-run", func(c *kfake.Cluster) *kfake.FaultHandle {
			// The first ledger entry to reach the broker after the run's fences: the first
			// batch's, the second's or, as the lanes race, the third's.
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				ends.Add(1)
				return nil, nil, false
			})
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "opsctl.replays", Err: kerr.PolicyViolation,
				When: func(kmsg.Request) bool { return ends.Load() >= fences }})
		}, false, [2]int{0, 14}},
		{"one partition rejects its records as too large", func(c *kfake.Cluster) *kfake.FaultHandle {
			// The records of partition 1 in the rejected request fail alone: one or more,
			// as the producer happened to group them.
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Partitions: []int32{1}, Err: kerr.MessageTooLarge,
				When: func(kmsg.Request) bool { return n.Add(1) == 2 }})
		}, true, [2]int{30, 39}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 40
			c := replaytest.NewCluster(t)
			seedSaga(t, c, n)
			e := newEngine(t, c)
			if err := e.ensureLedger(context.Background()); err != nil {
				t.Fatal(err)
			}
			fault := tt.fault(c)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			sum, err := e.Replay(ctx, Request{Topic: ordersDLT, Reason: "faulty"})
			t.Logf("faulty run: %s status=%s err=%v", countsString(sum.Counts), sum.Status, err)
			switch {
			case tt.partial && (err != nil || sum.Status != RunPartial || sum.Failed == 0):
				t.Fatalf("want a partial run with failed records, got %s: %v", sum.Status, err)
			case !tt.partial && err == nil && sum.Failed == 0 && sum.Replayed != n:
				t.Fatalf("the fault did not disturb the run: %+v", sum)
			}
			if fault.Hits() == 0 {
				t.Fatal("the fault never struck")
			}
			fault.Remove() // the broker recovers
			fenceLanes(t, c, ordersDLT)
			applied := len(replaytest.ReadStable(t, c, event.TopicOrdersFailed))
			// What the run reported replayed is committed; only an unknown commit outcome may
			// have committed more.
			if applied < sum.Replayed || (applied != sum.Replayed && !errors.Is(err, ErrCommitUnknown)) {
				t.Fatalf("the faulty run reported %d replayed, %d are committed (%v)", sum.Replayed, applied, err)
			}
			if applied < tt.applied[0] || applied > tt.applied[1] {
				t.Fatalf("the faulty run committed %d, want %d to %d", applied, tt.applied[0], tt.applied[1])
			}
			again := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "rerun"})
			t.Logf("rerun: %s", countsString(again.Counts))
			if again.Replayed+again.Skipped != n || again.Failed != 0 || again.Skipped != applied {
				t.Fatalf("rerun %s, want %d skipped", countsString(again.Counts), applied)
			}
			assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
		})
	}
}

func TestCancelledRunThenRerun(t *testing.T) {
	const n = 50
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	e := newEngine(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var replayed int
	sum, err := e.Replay(ctx, Request{Topic: ordersDLT, Reason: "interrupted", OnResult: func(r Result) {
		if r.Action == ActionReplayed {
			if replayed++; replayed == 10 {
				cancel() // SIGINT arrives while the next batch is being collected or sent
			}
		}
	}})
	if !errors.Is(err, context.Canceled) || sum.Status != RunCancelled {
		t.Fatalf("cancelled run: %v, status %s", err, sum.Status)
	}
	if sum.Replayed == 0 || sum.Replayed == n {
		t.Fatalf("cancelled run replayed %d", sum.Replayed)
	}
	again := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "rerun"})
	if again.Skipped != sum.Replayed || again.Replayed != n-sum.Replayed {
		t.Fatalf("rerun %s after a cancelled run that replayed %d", countsString(again.Counts), sum.Replayed)
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
	runs, err := e.History(context.Background(), ordersDLT)
	if err != nil || len(runs) != 2 || runs[1].Status != RunCancelled || runs[1].Counts.Replayed != sum.Replayed {
		t.Fatalf("history %+v %v", runs, err)
	}
}

func TestSecondRunFencesTheFirst(t *testing.T) {
	const n = 30
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	first := newEngine(t, c)
	second := newEngine(t, c)

	paused, resume := make(chan struct{}), make(chan struct{})
	// Batches commit in their lanes' goroutines: the second to reach its commit waits there.
	var batches atomic.Int32
	first.beforeCommit = func(string) {
		if batches.Add(1) == 2 {
			close(paused)
			<-resume
		}
	}
	done := replayAsync(first, Request{Topic: ordersDLT, Reason: "first"})
	<-paused // the first run has its second batch produced and uncommitted

	sum := mustReplay(t, second, Request{Topic: ordersDLT, Reason: "second"})
	close(resume)
	got := <-done

	if !errors.Is(got.err, ErrFenced) || got.sum.Status != RunFenced {
		t.Fatalf("first run: %v (status %s), want fenced", got.err, got.sum.Status)
	}
	want := "another replay of orders-failed.DLT took over; nothing of this batch was applied"
	if !strings.Contains(got.err.Error(), want) {
		t.Fatalf("fenced error %q does not say %q", got.err, want)
	}
	// The first run replayed whole batches of 7, if any — those whose lane committed before the
	// second run took that lane's fence (its first batch commits on the other lane while the
	// second waits, and may lose that race on a busy machine) — and the second run the rest.
	if r := got.sum.Replayed; r%7 != 0 || r >= n || sum.Skipped != r || sum.Replayed != n-r {
		t.Fatalf("first replayed %d (want whole batches of 7, not all), second %s", r, countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

func TestConcurrentRunsNeverDuplicate(t *testing.T) {
	raceRuns(t, func(*Engine) {})
}

// raceRuns races four runs of one DLT, each engine set up by tune, with batches that grow as
// against a distant broker; whichever runs are fenced, a final sweep finds every record
// replayed or replays the rest, and every record reaches its topic once.
func raceRuns(t *testing.T, tune func(*Engine)) {
	t.Helper()
	const n, runners = 120, 4
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	var wg sync.WaitGroup
	var fenced, completed atomic.Int32
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newEngine(t, c)
			e.fixedBatches, e.growAfter = false, 0 // batches grow, as against a distant broker
			tune(e)
			sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: fmt.Sprint("runner ", i)})
			switch {
			case errors.Is(err, ErrFenced):
				fenced.Add(1)
			case err != nil:
				t.Errorf("runner %d: %v", i, err)
			default:
				completed.Add(1)
			}
			t.Logf("runner %d: %s %s", i, sum.Status, countsString(sum.Counts))
		}()
	}
	wg.Wait()
	t.Logf("%d fenced, %d completed", fenced.Load(), completed.Load())
	final := mustReplay(t, newEngine(t, c), Request{Topic: ordersDLT, Reason: "sweep"})
	if final.Skipped+final.Replayed != n {
		t.Fatalf("final sweep %s", countsString(final.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

// holdFirstBatch makes e's first batch wait, inside its transaction, until a second batch
// reaches its commit: the next batch then finds the first lane busy for as long as it grows.
func holdFirstBatch(e *Engine) {
	var calls atomic.Int32
	release := make(chan struct{})
	e.fixedBatches = false
	e.beforeCommit = func(string) {
		switch calls.Add(1) {
		case 1:
			select {
			case <-release:
			case <-time.After(10 * time.Second): // fail the test's counts, not hang it
			}
		case 2:
			close(release)
		}
	}
}

// batchRows returns the rows of each batch entry in the ledger, in the order they were written
// (one entry per batch: the batches here hold far fewer than maxBatchRows rows).
func batchRows(t *testing.T, c *kfake.Cluster, ledger string) map[string]int {
	t.Helper()
	rows := map[string]int{}
	for _, rec := range replaytest.ReadCommitted(t, c, ledger) {
		en, err := decodeEntry(rec.Key, rec.Value)
		if err != nil {
			t.Fatalf("ledger record %s: %v", rec.Key, err)
		}
		if en.Kind == KindBatch {
			rows[string(rec.Key)] = len(en.Replays)
		}
	}
	return rows
}

// TestBatchesGrowWhileTheOtherLaneCommits: a full batch keeps taking records while the lane the
// next batch needs is still committing, up to four times BatchSize, and is still one
// transaction: every record once, results in order.
func TestBatchesGrowWhileTheOtherLaneCommits(t *testing.T) {
	const n = 60
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	// Every transaction ends 3 ms late, as against a broker a few milliseconds away: the
	// fences measure it, and batches may grow.
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(3 * time.Millisecond)
		return nil, nil, false
	})
	e := newEngine(t, c) // BatchSize 7
	holdFirstBatch(e)
	var replayIDs []string
	sum := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "grow", OnResult: func(res Result) {
		if res.Action == ActionReplayed {
			replayIDs = append(replayIDs, res.ReplayID)
		}
	}})
	if sum.Replayed != n {
		t.Fatalf("replay %s", countsString(sum.Counts))
	}
	rows := batchRows(t, c, e.LedgerTopic())
	total := 0
	for key, r := range rows {
		total += r
		if r < 1 || r > batchGrowth*7 {
			t.Errorf("batch %s holds %d records, want 1 to %d", key, r, batchGrowth*7)
		}
	}
	// The first batch took 7 records (the other lane was free) and was held; the second grew to
	// the cap meanwhile. (Entries are numbered as they are written, not by batch.)
	sizes := slices.Sorted(maps.Values(rows))
	if !slices.Contains(sizes, 7) || !slices.Contains(sizes, batchGrowth*7) {
		t.Errorf("batch sizes %v, want one of 7 and one grown to %d while the first lane was busy", sizes, batchGrowth*7)
	}
	if total != n {
		t.Errorf("ledger rows %d, want %d", total, n)
	}
	if !slices.IsSorted(replayIDs) || len(replayIDs) != n {
		t.Errorf("results out of batch order: %v", replayIDs)
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

// TestBatchesDoNotGrowWhenTransactionsAreFast: the first batch is held as in
// TestBatchesGrowWhileTheOtherLaneCommits, but transactions take less than growAfter (here an
// hour, which any broker beats): every batch stays at BatchSize.
func TestBatchesDoNotGrowWhenTransactionsAreFast(t *testing.T) {
	const n = 60
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	e := newEngine(t, c) // BatchSize 7
	holdFirstBatch(e)
	e.growAfter = time.Hour
	if sum := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "fast"}); sum.Replayed != n {
		t.Fatalf("replay %s", countsString(sum.Counts))
	}
	for key, r := range batchRows(t, c, e.LedgerTopic()) {
		if r > 7 {
			t.Errorf("batch %s holds %d records, want at most BatchSize (7)", key, r)
		}
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

// TestGrownBatchFailsWholeThenRerun: the commit of a grown batch fails; none of its records is
// applied, and a rerun replays exactly those not committed.
func TestGrownBatchFailsWholeThenRerun(t *testing.T) {
	const n = 60
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	lane1 := laneTransactionalID(ordersDLT, 1)
	var lane1Commits atomic.Int32
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.EndTxnRequest)
		// Lane 1's first commit is its fence; its second, the grown batch.
		if r.TransactionalID != lane1 || !r.Commit || lane1Commits.Add(1) != 2 {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil, true
	})
	e := newEngine(t, c)
	holdFirstBatch(e)
	e.growAfter = 0 // grow whatever a transaction takes
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "grow"})
	if err == nil {
		t.Fatalf("the run with a failing commit succeeded: %s", countsString(sum.Counts))
	}
	t.Logf("faulty run: %s, %v", countsString(sum.Counts), err)
	if sum.Failed < batchGrowth*7 {
		t.Errorf("faulty run failed %d records, want at least the grown batch's %d", sum.Failed, batchGrowth*7)
	}
	rows := 0
	for _, r := range batchRows(t, c, e.LedgerTopic()) {
		rows += r
	}
	if rows != sum.Replayed {
		t.Errorf("ledger holds %d rows, the run reported %d replayed", rows, sum.Replayed)
	}
	rerun := mustReplay(t, newEngine(t, c), Request{Topic: ordersDLT, Reason: "rerun"})
	if rerun.Skipped != sum.Replayed || rerun.Replayed != n-sum.Replayed {
		t.Fatalf("rerun %s after %d replayed", countsString(rerun.Counts), sum.Replayed)
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

// addrCluster is the child process's view of the parent's kfake: just its addresses.
type addrCluster struct{ addrs []string }

func (a *addrCluster) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.addrs...)}, extra...)...)
}

// outcome is what a replay run in the background returned.
type outcome struct {
	sum *Summary
	err error
}

// replayAsync runs a replay in the background; its outcome arrives on the channel.
func replayAsync(e *Engine, req Request) <-chan outcome {
	done := make(chan outcome, 1)
	go func() {
		sum, err := e.Replay(context.Background(), req)
		done <- outcome{sum, err}
	}()
	return done
}

// TestInterleavedFencesStopTheEarlierRun holds a run between taking its lanes' fences while a
// second run takes both: the first then holds lane 1 and the second lane 0. The first run's
// check of lane 0 finds the second's fence, so it stops before it selects anything and
// replays nothing; the second replays everything once.
func TestInterleavedFencesStopTheEarlierRun(t *testing.T) {
	const n = 30
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	first, second := newEngine(t, c), newEngine(t, c)
	lane1 := laneTransactionalID(ordersDLT, 1)
	held, resume := make(chan struct{}), make(chan struct{})
	var seen atomic.Int32
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.InitProducerIDRequest)
		if r.TransactionalID != nil && *r.TransactionalID == lane1 && seen.Add(1) == 1 {
			close(held) // the first run has lane 0's fence and is about to take lane 1's
			c.SleepControl(func() { <-resume })
		}
		return nil, nil, false
	})
	done := replayAsync(first, Request{Topic: ordersDLT, Reason: "first"})
	<-held
	sum := mustReplay(t, second, Request{Topic: ordersDLT, Reason: "second"})
	close(resume)
	got := <-done

	if !errors.Is(got.err, ErrFenced) || got.sum.Replayed != 0 || got.sum.Selected != 0 {
		t.Fatalf("first run: %v, %s; want fenced before it selected anything", got.err, countsString(got.sum.Counts))
	}
	if !strings.Contains(got.err.Error(), "nothing was replayed") {
		t.Fatalf("first run's error %q does not say nothing was replayed", got.err)
	}
	if sum.Replayed != n {
		t.Fatalf("second run %s", countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

// TestBatchesAlternateLanes checks that a replay's batches commit on both lanes' transactional
// ids, and that its results still arrive in batch order.
func TestBatchesAlternateLanes(t *testing.T) {
	const n = 40
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	var mu sync.Mutex
	commits := map[string]int{}
	c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if r.Commit {
			mu.Lock()
			commits[r.TransactionalID]++
			mu.Unlock()
		}
		return nil, nil, false
	})
	var replayIDs []string
	sum := mustReplay(t, newEngine(t, c), Request{Topic: ordersDLT, Reason: "lanes", OnResult: func(res Result) {
		if res.Action == ActionReplayed {
			replayIDs = append(replayIDs, res.ReplayID)
		}
	}})
	if sum.Replayed != n {
		t.Fatalf("replay %s", countsString(sum.Counts))
	}
	mu.Lock()
	defer mu.Unlock()
	// Lane 0: its fence, the check, 3 of the 6 batches (7 records each), the run's end; lane 1:
	// its fence and the other 3 batches.
	if got, want := commits[laneTransactionalID(ordersDLT, 0)], 2+3+1; got != want {
		t.Errorf("lane 0 committed %d transactions, want %d (%v)", got, want, commits)
	}
	if got, want := commits[laneTransactionalID(ordersDLT, 1)], 1+3; got != want {
		t.Errorf("lane 1 committed %d transactions, want %d (%v)", got, want, commits)
	}
	// Replay ids carry a sequence number in the order records were taken: results in batch
	// order come sorted.
	if !slices.IsSorted(replayIDs) || len(replayIDs) != n {
		t.Errorf("results out of order: %v", replayIDs)
	}
}

// TestFailedBatchInReusedMemory: the records of a replay are built in the memory of batches
// already committed (slabs). A batch that fails after that memory has gone round several
// times must still report exactly what it did: nothing of it replayed, every record of it
// failed, and the rerun replays exactly those.
func TestFailedBatchInReusedMemory(t *testing.T) {
	const n, batch, failAt = 2000, 50, 30 // 40 batches; the 30th fails, long after reuse began
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	e := newEngine(t, c, func(cfg *Config) { cfg.BatchSize = batch })
	if err := e.ensureLedger(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ends atomic.Int32
	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.PolicyViolation,
		When: func(kmsg.Request) bool { return ends.Add(1) == fences+failAt }})
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "faulty"})
	t.Logf("faulty run: %s status=%s err=%v", countsString(sum.Counts), sum.Status, err)
	if err == nil || fault.Hits() == 0 {
		t.Fatalf("the fault did not fail the run (hits %d): %v", fault.Hits(), err)
	}
	if e.slabsReused.Load() == 0 {
		t.Fatal("the run never reused the memory of committed batches: the test proves nothing")
	}
	fault.Remove()
	fenceLanes(t, c, ordersDLT)
	applied := len(replaytest.ReadStable(t, c, event.TopicOrdersFailed))
	if applied < sum.Replayed {
		t.Fatalf("the faulty run reported %d replayed, %d are committed", sum.Replayed, applied)
	}
	if sum.Failed == 0 || sum.Replayed+sum.Failed > n {
		t.Fatalf("the faulty run: %s", countsString(sum.Counts))
	}
	again := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "rerun"})
	if again.Skipped != applied || again.Replayed+again.Skipped != n || again.Failed != 0 {
		t.Fatalf("rerun %s, want %d skipped", countsString(again.Counts), applied)
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

// TestFencedAfterTheLastBatchStillCompletes: another run takes the lanes over after this run's
// last batch committed, before its run-end entry. Every record was replayed, so the run
// completes (no error, exit 0 in the CLI), says what happened, and its end is still recorded.
func TestFencedAfterTheLastBatchStillCompletes(t *testing.T) {
	const n = 20
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	e := newEngine(t, c)
	e.beforeFinish = func(string) { fenceLanes(t, c, ordersDLT) }
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "fenced at the end"})
	if err != nil || sum.Status != RunCompleted || sum.Replayed != n || !strings.Contains(sum.Note, "took over") {
		t.Fatalf("run fenced after its last batch: %v, status %s, %s, note %q", err, sum.Status, countsString(sum.Counts), sum.Note)
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
	runs, err := e.History(context.Background(), ordersDLT)
	if err != nil || len(runs) != 1 || runs[0].Status != RunCompleted || runs[0].Counts.Replayed != n {
		t.Fatalf("history: %+v %v", runs, err)
	}
}
