package redrive

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

const (
	ordersDLT = "orders-failed.DLT"
	actor     = "opsctl-agent@test"
)

// clock is a test clock that only moves when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// base is the moment a test's fixtures are stamped from: the wall clock when it starts, since
// kfake applies retention against the wall clock (see replaytest.Base).
func base() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func newEngine(t testing.TB, c *kfake.Cluster, clk *clock, edit ...func(*replay.Config)) *replay.Engine {
	t.Helper()
	cfg := replay.Config{NewClient: replaytest.NewClientFunc(c), Actor: actor, Now: clk.Now, BatchSize: 7}
	for _, f := range edit {
		f(&cfg)
	}
	e, err := replay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func pass(t testing.TB, e *replay.Engine, p *Policy, clk *clock) *Report {
	t.Helper()
	rep, err := Pass(context.Background(), e, p, clk.Now, false)
	if err != nil {
		t.Fatalf("pass: %v (report %+v)", err, rep)
	}
	return rep
}

// replayedFrom returns, per dead letter, how many records of topic were replayed from it.
func replayedFrom(t testing.TB, c *kfake.Cluster, topic string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range replaytest.ReadCommitted(t, c, topic) {
		for _, h := range r.Headers {
			if h.Key == dlt.HeaderReplayedFrom {
				out[string(h.Value)]++
			}
		}
	}
	return out
}

// failAgain plays product-service failing once more on every replayed record of orders-failed
// carrying replay count n: it dead-letters each, stamped at, with code.
func failAgain(t testing.TB, c *kfake.Cluster, n int, code string, at time.Time) int {
	t.Helper()
	var recs []*kgo.Record
	for _, r := range replaytest.ReadCommitted(t, c, event.TopicOrdersFailed) {
		if dlt.ReplayCount(r.Headers) != n {
			continue
		}
		d := dlt.Build(r, dlt.Failure{Source: "product-service", Code: code, Message: "failed again: " + code, Group: event.GroupProductService, At: at})
		d.Partition, d.Timestamp = r.Partition, at
		recs = append(recs, d)
	}
	replaytest.Produce(t, c, recs...)
	return len(recs)
}

// TestPassRedrivesOnlyWhatARuleClaimsWhenOldEnough seeds dead letters of every kind and checks
// one pass replays exactly the transient ones past their minimum age, as runs whose reason
// names the rule and whose actor is the agent.
func TestPassRedrivesOnlyWhatARuleClaimsWhenOldEnough(t *testing.T) {
	t.Parallel()
	c := replaytest.NewCluster(t)
	t0 := base()
	clk := newClock(t0)
	replaytest.Produce(t, c,
		replaytest.Saga(0, 1, "DB_LOCK_TIMEOUT", 1, t0.Add(-2*time.Minute)),  // redriven
		replaytest.Saga(1, 2, "DB_TIMEOUT", 1, t0.Add(-90*time.Second)),      // redriven
		replaytest.Saga(2, 3, "DB_LOCK_TIMEOUT", 1, t0.Add(-20*time.Second)), // too young
		replaytest.Saga(0, 4, "STOCK_SHORT", 1, t0.Add(-time.Hour)),          // business: held
		replaytest.Saga(1, 5, "SOMETHING_ELSE", 1, t0.Add(-time.Hour)),       // no rule: operator
		replaytest.Saga(2, 6, "DB_UNAVAILABLE", 1, t0.Add(-61*time.Second)),  // network: redriven
		replaytest.Spring(0, 7, t0.Add(-10*time.Minute)),                     // CannotAcquireLockException: redriven
		replaytest.Connect(1, 8, t0.Add(-10*time.Minute)),                    // DataException: held
	)
	e := newEngine(t, c, clk)
	rep := pass(t, e, Default(), clk)
	if rep.Redriven() != 4 {
		t.Fatalf("redrove %d, want 4: %+v", rep.Redriven(), rep.Runs)
	}
	got := replayedFrom(t, c, event.TopicOrdersFailed)
	for _, want := range []string{"orders-failed.DLT/0/0", "orders-failed.DLT/1/0", "orders-failed.DLT/2/1"} {
		if got[want] != 1 {
			t.Errorf("%s replayed %d times, want once (replayed: %v)", want, got[want], got)
		}
	}
	if len(got) != 3 {
		t.Errorf("orders-failed got replays of %v, want exactly the three transient SAGA dead letters", got)
	}
	if spring := replayedFrom(t, c, event.TopicPaymentsFailed); spring["payments-failed-dlt/0/0"] != 1 || len(spring) != 1 {
		t.Errorf("payments-failed got replays of %v, want the Spring lock failure once", spring)
	}

	runs, err := e.History(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	for _, r := range runs {
		rule, ok := IsRedrive(r.Reason)
		if !ok || r.Actor != actor || r.Status != replay.RunCompleted || !strings.Contains(r.Selection, "--where") {
			t.Errorf("run in the history: %+v", r)
		}
		rules[rule] += r.Counts.Replayed
	}
	if rules["transient-db"] != 3 || rules["transient-network"] != 1 {
		t.Errorf("replayed per rule %v, want transient-db 3, transient-network 1", rules)
	}

	// The next pass finds nothing new (the ledger has them) and records no run.
	if rep := pass(t, e, Default(), clk); rep.Redriven() != 0 {
		t.Errorf("second pass redrove %d", rep.Redriven())
	}
	if again, _ := e.History(context.Background(), ""); len(again) != len(runs) {
		t.Errorf("a pass with nothing due recorded runs: %d, before %d", len(again), len(runs))
	}
	// Once old enough, the young lock timeout goes too.
	clk.Set(t0.Add(time.Minute))
	if rep := pass(t, e, Default(), clk); rep.Redriven() != 1 {
		t.Errorf("the young record, now old enough: redrove %d, want 1", rep.Redriven())
	}
}

// TestLadderAndPoisonGuard plays a record that fails again after every redrive: each time it
// waits for the next step of its ladder, and after maxReplays it is left for an operator.
func TestLadderAndPoisonGuard(t *testing.T) {
	t.Parallel()
	c := replaytest.NewCluster(t)
	t0 := base()
	clk := newClock(t0)
	replaytest.Produce(t, c, replaytest.Saga(0, 1, "DB_LOCK_TIMEOUT", 1, t0))
	e := newEngine(t, c, clk)
	p := Default() // minAge 1m, backoff 1m 5m 15m, maxReplays 3

	at := t0
	for n, wait := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute} {
		clk.Set(at.Add(wait - time.Second))
		if rep := pass(t, e, p, clk); rep.Redriven() != 0 {
			t.Fatalf("replay %d: redriven %s after the record failed, before its step of %s", n+1, wait-time.Second, wait)
		}
		clk.Set(at.Add(wait + time.Second))
		if rep := pass(t, e, p, clk); rep.Redriven() != 1 {
			t.Fatalf("replay %d: %d redriven once the step of %s passed, want 1: %+v", n+1, rep.Redriven(), wait, rep.Runs)
		}
		// product-service fails on it again a second later.
		at = clk.Now().Add(time.Second)
		if got := failAgain(t, c, n+1, "DB_LOCK_TIMEOUT", at); got != 1 {
			t.Fatalf("replay %d: %d replayed records to fail again, want 1", n+1, got)
		}
	}
	// Replayed three times: the poison guard leaves it for an operator, however long it waits.
	clk.Set(at.Add(6 * time.Hour))
	rep := pass(t, e, p, clk)
	if rep.Redriven() != 0 {
		t.Fatalf("redriven past maxReplays: %+v", rep.Runs)
	}
	sel, err := p.Selector(ordersDLT, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	last := replaytest.ReadCommitted(t, c, ordersDLT)
	d := dlt.Decode(last[len(last)-1])
	if class, _, _ := sel.Classify(&d); d.ReplayCount != 3 || class != ClassOperator {
		t.Errorf("the record replayed %d times is %s, want 3 and operator", d.ReplayCount, class)
	}
	if n := len(replaytest.ReadCommitted(t, c, event.TopicOrdersFailed)); n != 3 {
		t.Errorf("orders-failed holds %d replays, want 3", n)
	}
}

func TestDryRunAndPauseChangeNothing(t *testing.T) {
	t.Parallel()
	c := replaytest.NewCluster(t)
	t0 := base()
	clk := newClock(t0)
	replaytest.Produce(t, c, replaytest.Saga(0, 1, "DB_LOCK_TIMEOUT", 1, t0.Add(-time.Hour)), replaytest.Saga(1, 2, "DB_TIMEOUT", 1, t0.Add(-time.Hour)))
	e := newEngine(t, c, clk)

	rep, err := Pass(context.Background(), e, Default(), clk.Now, true)
	if err != nil {
		t.Fatal(err)
	}
	var due int64
	for _, r := range rep.Runs {
		due += r.Due
		if r.Summary != nil {
			t.Errorf("a dry run ran: %+v", r)
		}
	}
	if due != 2 || !rep.DryRun {
		t.Errorf("dry run found %d due, want 2: %+v", due, rep)
	}

	paused := Default()
	paused.Paused = true
	if rep := pass(t, e, paused, clk); rep.Redriven() != 0 || !rep.Paused {
		t.Errorf("a paused policy redrove: %+v", rep)
	}
	ruleOff := Default()
	ruleOff.Rules[0].Paused = true
	if rep := pass(t, e, ruleOff, clk); rep.Redriven() != 0 {
		t.Errorf("a paused rule redrove: %+v", rep)
	}
	if n := len(replaytest.ReadCommitted(t, c, event.TopicOrdersFailed)); n != 0 {
		t.Fatalf("dry runs and paused policies wrote %d records", n)
	}
	if runs, _ := e.History(context.Background(), ""); len(runs) != 0 {
		t.Errorf("dry runs and paused policies recorded runs: %+v", runs)
	}
	if rep := pass(t, e, Default(), clk); rep.Redriven() != 2 {
		t.Errorf("resumed: redrove %d, want 2", rep.Redriven())
	}
}

// TestSilentBrokerStopsThePassThenItResumes makes the broker go silent in the middle of a pass: the
// pass ends within the engine's timeout with a silence error saying what was done, and the
// next pass, once the broker is back, redrives the rest exactly once.
func TestSilentBrokerStopsThePassThenItResumes(t *testing.T) {
	c := replaytest.NewCluster(t)
	t0 := base()
	clk := newClock(t0)
	const n = 30
	var recs []*kgo.Record
	for i := 1; i <= n; i++ {
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, t0.Add(-time.Hour)))
	}
	replaytest.Produce(t, c, recs...)
	const timeout = 2 * time.Second
	e := newEngine(t, c, clk, func(cfg *replay.Config) { cfg.Timeout = timeout })

	// The broker goes silent once the run's first batch has committed: every later produce
	// of a replayed record is held, unanswered, until release.
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release)
	fences := int32(len(replay.TransactionalIDs(ordersDLT)) + 1)
	target := replaytest.LookupTopicIDs(t, c, event.TopicOrdersFailed, ordersDLT).Target
	var ends atomic.Int32
	c.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		ends.Add(1)
		return nil, nil, false
	})
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if ends.Load() > fences && producesTo(req, event.TopicOrdersFailed, target) {
			c.SleepControl(func() { <-hold })
		}
		return nil, nil, false
	})
	start := time.Now()
	rep, err := Pass(context.Background(), e, Default(), clk.Now, false)
	took := time.Since(start)
	if !errors.Is(err, replay.ErrBrokerSilent) || rep.Redriven() != 7 || !strings.Contains(err.Error(), "7 records were redriven before it") {
		t.Fatalf("pass on a silent broker: %v (redriven %d)", err, rep.Redriven())
	}
	if took > timeout+15*time.Second {
		t.Errorf("the pass took %s on a silent broker, more than its timeout %s and a margin", took, timeout)
	}
	release()
	rep = pass(t, e, Default(), clk)
	if rep.Redriven() != n-7 {
		t.Fatalf("after the broker came back: redrove %d, want %d", rep.Redriven(), n-7)
	}
	got := replayedFrom(t, c, event.TopicOrdersFailed)
	for k, v := range got {
		if v != 1 {
			t.Errorf("%s replayed %d times", k, v)
		}
	}
	if len(got) != n {
		t.Errorf("%d dead letters replayed, want %d", len(got), n)
	}
}

// producesTo reports whether req is a produce request writing to topic (by name or ID).
func producesTo(req kmsg.Request, topic string, id [16]byte) bool {
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return false
	}
	for _, t := range pr.Topics {
		if t.Topic == topic || t.TopicID == id {
			return true
		}
	}
	return false
}
