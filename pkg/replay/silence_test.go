package replay

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/hangtest"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The tests here make a broker go silent — a listener that accepts and never answers, a kfake
// broker whose requests are held, a broker process stopped with SIGSTOP — and check that every
// operation ends within its timeout (plus a margin for a loaded machine) with a SilenceError,
// and that a replay stopped that way, run again once the broker is back, replays every record
// exactly once.

// silenceTimeout is the engines' timeout here; silenceMargin what a loaded machine may add.
const (
	silenceTimeout = 2 * time.Second
	silenceMargin  = 10 * time.Second
)

// freeze holds every request the cluster gets from the moment it is called until the test
// ends (or release is called), as a frozen broker would.
func freeze(c *kfake.Cluster) (release func()) {
	ch := make(chan struct{})
	var once sync.Once
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		c.SleepControl(func() { <-ch })
		return nil, nil, false
	})
	return func() { once.Do(func() { close(ch) }) }
}

// operations are every engine operation, each run once.
func operations(topic string) map[string]func(context.Context, *Engine) error {
	sel := &Selection{}
	return map[string]func(context.Context, *Engine) error{
		"topics": func(ctx context.Context, e *Engine) error { _, err := e.Topics(ctx); return err },
		"list": func(ctx context.Context, e *Engine) error {
			_, err := e.List(ctx, topic, sel, func(*dlt.Record) error { return nil })
			return err
		},
		"stats": func(ctx context.Context, e *Engine) error { _, err := e.Stats(ctx, topic, sel); return err },
		"show":  func(ctx context.Context, e *Engine) error { _, err := e.Get(ctx, topic, 0, 0); return err },
		"plan":  func(ctx context.Context, e *Engine) error { _, err := e.Plan(ctx, Request{Topic: topic}); return err },
		"replay": func(ctx context.Context, e *Engine) error {
			_, err := e.Replay(ctx, Request{Topic: topic, Reason: "r"})
			return err
		},
		"history": func(ctx context.Context, e *Engine) error { _, err := e.History(ctx, ""); return err },
		"outcome": func(ctx context.Context, e *Engine) error {
			_, err := e.Outcomes(ctx, []Run{{RunID: "0190f1e2-0000-7000-8000-000000000000", DLT: topic, Started: replaytest.Base}})
			return err
		},
		"ledger": func(ctx context.Context, e *Engine) error { _, err := e.Replayed(ctx, topic); return err },
		"spans":  func(ctx context.Context, e *Engine) error { _, err := e.Spans(ctx, topic); return err },
		"window": func(ctx context.Context, e *Engine) error {
			_, err := e.Window(ctx, topic, []Coord{{Partition: 0, Offset: 0}})
			return err
		},
		"index": func(ctx context.Context, e *Engine) error {
			_, _, err := e.Index(ctx, topic, sel, nil, nil, func(Coord) error { return nil })
			return err
		},
		"histogram": func(ctx context.Context, e *Engine) error {
			_, err := e.Histogram(ctx, []string{topic}, replaytest.Base, time.Minute, 5)
			return err
		},
		"find": func(ctx context.Context, e *Engine) error {
			_, err := e.Find(ctx, FindQuery{Topics: []string{topic}, Key: "1"})
			return err
		},
	}
}

// assertEndsSilent runs op and checks it ends within the timeout and the margin with a
// SilenceError.
func assertEndsSilent(t *testing.T, name string, op func(context.Context) error) {
	t.Helper()
	start := time.Now()
	err := op(context.Background())
	took := time.Since(start)
	if !errors.Is(err, ErrBrokerSilent) {
		t.Errorf("%s on a silent broker: %v (after %s), want a SilenceError", name, err, took)
	}
	if took > silenceTimeout+silenceMargin {
		t.Errorf("%s on a silent broker took %s, more than its timeout %s (+%s margin)", name, took, silenceTimeout, silenceMargin)
	}
}

func silentEngine(t *testing.T, newClient func(...kgo.Opt) (*kgo.Client, error)) *Engine {
	t.Helper()
	e, err := New(Config{NewClient: newClient, Timeout: silenceTimeout, BatchSize: 7, Actor: "oncall@laptop",
		Now: func() time.Time { return replaytest.Base.Add(30 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// TestSilentListenerEndsEveryOperation: a listener that accepts connections and never answers
// made topics, list and replay take 41 s; every operation now ends within its timeout.
func TestSilentListenerEndsEveryOperation(t *testing.T) {
	addr := hangtest.Listen(t)
	newClient := func(extra ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, extra...)...)
	}
	for name, op := range operations(ordersDLT) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := silentEngine(t, newClient)
			assertEndsSilent(t, name, func(ctx context.Context) error { return op(ctx, e) })
		})
	}
}

// TestFrozenBrokerEndsEveryOperation: a broker that stops answering (its requests held) while
// the engine is connected to it: every operation ends within its timeout.
func TestFrozenBrokerEndsEveryOperation(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 20)
	mustReplay(t, newEngine(t, c), Request{Topic: ordersDLT, Selection: Selection{Partitions: []int32{1}}})
	engines := map[string]*Engine{}
	for name := range operations(ordersDLT) {
		e := silentEngine(t, replaytest.NewClientFunc(c))
		if _, err := e.Spans(context.Background(), ordersDLT); err != nil { // connected, metadata known
			t.Fatal(err)
		}
		engines[name] = e
	}
	release := freeze(c)
	t.Cleanup(release)
	for name, op := range operations(ordersDLT) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertEndsSilent(t, name, func(ctx context.Context) error { return op(ctx, engines[name]) })
		})
	}
}

// TestFrozenMidReplayThenRerun: the broker freezes in the middle of a replay — before a batch's
// commit is sent, or after (its outcome then unknown to the run, and applied by the broker once
// it resumes). The run ends within its timeout, says what it committed, and a rerun once the
// broker is back replays every record exactly once.
func TestFrozenMidReplayThenRerun(t *testing.T) {
	const n = 45
	tests := []struct {
		name string
		// at reports whether the request is the one the broker freezes on.
		at func(req kmsg.Request, ends *atomic.Int32, target [16]byte) bool
		// unknown says a batch's commit was sent when the broker froze.
		unknown bool
	}{
		{"while a batch's records are sent", func(req kmsg.Request, ends *atomic.Int32, target [16]byte) bool {
			return ends.Load() >= fences+2 && producesTo(req, event.TopicOrdersFailed, target)
		}, false},
		{"after a batch's commit was sent", func(req kmsg.Request, ends *atomic.Int32, _ [16]byte) bool {
			_, isEnd := req.(*kmsg.EndTxnRequest)
			return isEnd && ends.Load() == fences+2 // the third batch's commit
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := replaytest.NewCluster(t)
			seedSaga(t, c, n)
			e := silentEngine(t, replaytest.NewClientFunc(c))
			e.fixedBatches = true
			target := lookupIDs(t, c, event.TopicOrdersFailed, e.LedgerTopic()).target
			hold := make(chan struct{})
			var held atomic.Bool
			var ends atomic.Int32
			c.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				if held.Load() || tt.at(req, &ends, target) {
					held.Store(true)
					c.SleepControl(func() { <-hold })
				}
				if _, ok := req.(*kmsg.EndTxnRequest); ok {
					ends.Add(1)
				}
				return nil, nil, false
			})
			var resume sync.Once
			release := func() { resume.Do(func() { close(hold) }) }
			t.Cleanup(release)

			start := time.Now()
			sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "frozen"})
			took := time.Since(start)
			if !errors.Is(err, ErrBrokerSilent) || took > silenceTimeout+silenceMargin {
				t.Fatalf("replay on a broker frozen %s: %v after %s", tt.name, err, took)
			}
			// Two lanes: the batch on the other lane may have committed before the freeze, or
			// had its commit caught by it.
			if sum.Replayed < 14 || sum.Replayed%7 != 0 || sum.CommitUnknown%7 != 0 || (tt.unknown && sum.CommitUnknown == 0) ||
				sum.Replayed+sum.Failed != sum.Selected {
				t.Fatalf("summary %s, commit unknown %d", countsString(sum.Counts), sum.CommitUnknown)
			}
			t.Logf("stopped after %s: %s (%d of unknown outcome): %v", took, countsString(sum.Counts), sum.CommitUnknown, err)

			release()
			fenceLanes(t, c, ordersDLT)
			again := mustReplay(t, newEngine(t, c), Request{Topic: ordersDLT, Reason: "after the freeze"})
			if again.Replayed+again.Skipped != n || again.Skipped < sum.Replayed {
				t.Fatalf("rerun %s after a run that committed %d", countsString(again.Counts), sum.Replayed)
			}
			assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, n)
		})
	}
}

// TestStoppedBrokerProcessMidReplay is the issue's own case: the broker process is stopped
// (SIGSTOP) while a replay runs. The run ends within its timeout instead of waiting for the
// broker to resume, and once it resumes a rerun replays every record exactly once.
func TestStoppedBrokerProcessMidReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	const n = 60
	br := startBenchBroker(t, true)
	var recs []*kgo.Record
	for i := 1; i <= n; i++ {
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, replaytest.Base))
	}
	if err := replaytest.ProduceAll(context.Background(), br.addrs, recs...); err != nil {
		t.Fatal(err)
	}
	clients := &addrCluster{addrs: br.addrs}
	e := silentEngine(t, clients.newClient)
	e.fixedBatches = true
	var batches atomic.Int32
	var stopped atomic.Bool
	e.beforeCommit = func(string) {
		if batches.Add(1) == 3 && stopped.CompareAndSwap(false, true) {
			if err := syscall.Kill(br.pid, syscall.SIGSTOP); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { _ = syscall.Kill(br.pid, syscall.SIGCONT) })
	start := time.Now()
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "stopped broker"})
	took := time.Since(start)
	if !stopped.Load() {
		t.Fatalf("the broker was never stopped: %v %+v", err, sum)
	}
	if !errors.Is(err, ErrBrokerSilent) || took > silenceTimeout+silenceMargin {
		t.Fatalf("replay on a stopped broker: %v after %s", err, took)
	}
	if sum.Replayed%7 != 0 || sum.Replayed >= n || sum.Replayed+sum.Failed != sum.Selected {
		t.Fatalf("summary of the stopped run: %s", countsString(sum.Counts))
	}
	if err := syscall.Kill(br.pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	again, err := New(Config{NewClient: clients.newClient, BatchSize: 7, Actor: "oncall@laptop"})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	rerun, err := again.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "after SIGCONT"})
	if err != nil || rerun.Replayed+rerun.Skipped != n || rerun.Skipped < sum.Replayed {
		t.Fatalf("rerun: %v %s after a run that committed %d", err, countsString(rerun.Counts), sum.Replayed)
	}
	got, err := replaytest.ReadAll(context.Background(), br.addrs, event.TopicOrdersFailed)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range got {
		from, _ := header(r, dlt.HeaderReplayedFrom)
		seen[from]++
	}
	if len(seen) != n || len(got) != n {
		t.Fatalf("%s holds %d records from %d dead letters, want each of %d exactly once", event.TopicOrdersFailed, len(got), len(seen), n)
	}
}

// TestGoneBrokersReportedAtConnectTimeout: a context whose brokers are gone (a sandbox killed
// under it: nothing listens) or never answer is reported after the connect timeout, not after
// the full timeout a cluster that has answered gets. The timeout here is an hour: an operation
// that waited for it would not end before the test's deadline.
func TestGoneBrokersReportedAtConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	for name, addr := range map[string]string{"nothing listens": gone, "accepts, never answers": hangtest.Listen(t)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			newClient := func(extra ...kgo.Opt) (*kgo.Client, error) {
				return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, extra...)...)
			}
			e, err := New(Config{NewClient: newClient, Timeout: time.Hour, ConnectTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			for _, op := range []string{"topics", "list", "replay"} {
				err := operations(ordersDLT)[op](context.Background(), e)
				// franz-go may give up on a refused dial by itself first; either way the
				// operation ends, and a silence says what happened.
				var se *SilenceError
				switch {
				case err == nil:
					t.Fatalf("%s on brokers that are gone succeeded", op)
				case errors.As(err, &se):
					if !se.NeverAnswered || se.Timeout != 300*time.Millisecond || !strings.Contains(err.Error(), "no broker of the cluster has answered") {
						t.Fatalf("%s: %#v (%v), want the 300ms connect timeout, saying no broker answered", op, se, err)
					}
				case name == "accepts, never answers":
					t.Fatalf("%s: %v, want a SilenceError", op, err)
				}
			}
		})
	}
}
