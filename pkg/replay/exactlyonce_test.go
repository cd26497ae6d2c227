package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "child"})
	fmt.Printf("child finished: %+v %v\n", sum, err)
	os.Exit(0)
}

type crashPoint struct {
	name string
	// install sets the kill up on the cluster; kill kills the child at most once.
	install func(c *kfake.Cluster, ids topicIDs, kill func())
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

var errKilled = errors.New("client killed")

func TestCrashAnywhereThenRerunReplaysExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const ledgerTopic = "opsctl.replays"
	points := []crashPoint{
		{"between transactions: after the second batch committed", func(c *kfake.Cluster, ids topicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				ends.Add(1)
				return nil, nil, false
			})
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Load() >= 3 && producesTo(req, event.TopicOrdersFailed, ids.target) { // run start + two batches
					kill()
					return nil, errKilled, true // the third batch never reaches the broker
				}
				return nil, nil, false
			})
		}},
		{"inside a transaction: replayed records written, ledger entries not", func(c *kfake.Cluster, ids topicIDs, kill func()) {
			var targets atomic.Int32
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if producesTo(req, event.TopicOrdersFailed, ids.target) {
					targets.Add(1)
				}
				if targets.Load() >= 3 && producesTo(req, ledgerTopic, ids.ledger) {
					kill()
					return nil, errKilled, true
				}
				return nil, nil, false
			})
		}},
		{"inside a transaction: everything written, commit never sent", func(c *kfake.Cluster, ids topicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Add(1) == 3 {
					kill()
					return nil, errKilled, true
				}
				return nil, nil, false
			})
		}},
		{"during the commit: applied, the client never heard", func(c *kfake.Cluster, ids topicIDs, kill func()) {
			var ends atomic.Int32
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				if ends.Add(1) == 4 {
					kill()
				}
				return nil, nil, false // the broker commits
			})
		}},
		{"while taking the fence", func(c *kfake.Cluster, ids topicIDs, kill func()) {
			c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
				kill()
				return nil, errKilled, true
			})
		}},
	}
	for _, pt := range points {
		t.Run(pt.name, func(t *testing.T) {
			const n = 45
			c := replaytest.NewCluster(t)
			seedSaga(t, c, n)
			e := newEngine(t, c)
			if err := e.ensureLedger(context.Background()); err != nil {
				t.Fatal(err)
			}
			ids := lookupIDs(t, c, event.TopicOrdersFailed, ledgerTopic)

			cmd := exec.Command(os.Args[0], "-test.run=^TestReplayChildProcess$")
			cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(c.ListenAddrs(), ","), "OPSCTL_REPLAY_CHILD_BATCH=10")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			killed := make(chan struct{})
			pt.install(c, ids, func() {
				once.Do(func() {
					close(killed) // first: Wait may return as soon as the signal lands
					_ = cmd.Process.Signal(syscall.SIGKILL)
				})
			})
			waitErr := cmd.Wait()
			select {
			case <-killed:
			default:
				t.Fatalf("the child was never killed (it finished: %v)\n%s", waitErr, out.String())
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("child was not killed by a signal: %v\n%s", cmd.ProcessState, out.String())
			}

			before := len(replaytest.ReadStable(t, c, event.TopicOrdersFailed)) // the child's open transaction, if any, may stay open
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
		// appliedBefore is how many records the faulty run got committed (the rerun skips them),
		// whatever it reported.
		appliedBefore int
	}{
		{"EndTxn fails outright on the second batch", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.UnknownServerError, When: func(kmsg.Request) bool { return n.Add(1) == 3 }})
		}, false, 7},
		{"EndTxn times out, again and again", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.RequestTimedOut, Count: -1, When: func(kmsg.Request) bool { return n.Add(1) >= 3 }})
		}, false, 7},
		{"produce to the target times out after the broker appended", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Err: kerr.RequestTimedOut, Count: 2,
				When: func(kmsg.Request) bool { return n.Add(1) >= 2 }})
		}, false, 40},
		{"produce to the target fails mid-run", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Err: kerr.PolicyViolation,
				When: func(kmsg.Request) bool { return n.Add(1) == 3 }})
		}, false, 0},
		{"produce to the ledger fails mid-run", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "opsctl.replays", Err: kerr.PolicyViolation,
				When: func(kmsg.Request) bool { return n.Add(1) == 4 }})
		}, false, 0},
		{"one partition rejects its records as too large", func(c *kfake.Cluster) *kfake.FaultHandle {
			var n atomic.Int32
			return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Partitions: []int32{1}, Err: kerr.MessageTooLarge,
				When: func(kmsg.Request) bool { return n.Add(1) == 2 }})
		}, true, 38},
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
			again := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "rerun"})
			t.Logf("rerun: %s", countsString(again.Counts))
			if again.Replayed+again.Skipped != n || again.Failed != 0 || again.Skipped != tt.appliedBefore {
				t.Fatalf("rerun %s, want %d skipped", countsString(again.Counts), tt.appliedBefore)
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
	var batches int
	first.beforeCommit = func(string) {
		if batches++; batches == 2 {
			close(paused)
			<-resume
		}
	}
	type outcome struct {
		sum *Summary
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		sum, err := first.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "first"})
		done <- outcome{sum, err}
	}()
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
	if got.sum.Replayed != 7 || sum.Skipped != 7 || sum.Replayed != n-7 {
		t.Fatalf("first replayed %d (want its first batch of 7), second %s", got.sum.Replayed, countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
}

func TestConcurrentRunsNeverDuplicate(t *testing.T) {
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

// addrCluster is the child process's view of the parent's kfake: just its addresses.
type addrCluster struct{ addrs []string }

func (a *addrCluster) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.addrs...)}, extra...)...)
}
