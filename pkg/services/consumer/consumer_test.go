package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/services/consumer"
)

const (
	topic = "work"
	group = "work-group"
)

type harness struct {
	t       *testing.T
	cluster *kfake.Cluster
	prod    *kgo.Client
	met     *metrics.Saga
	// shutdown cancels the context of the consumer started last without waiting for it to end.
	shutdown context.CancelFunc
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	c := kafkatest.New(t, topic, event.DLT(topic))
	prod, err := kgo.NewClient(append(kafkatest.ClientOpts(c), kgo.RecordDeliveryTimeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return &harness{t: t, cluster: c, prod: prod, met: metrics.New("test-service")}
}

// start runs a consumer with handler until the returned stop is called.
func (h *harness) start(handler consumer.Handler, tweak ...func(*consumer.Config)) (stop func()) {
	h.t.Helper()
	return h.startWith(nil, handler, tweak...)
}

// startWith is start with extra client options (session timeout and the like).
func (h *harness) startWith(opts []kgo.Opt, handler consumer.Handler, tweak ...func(*consumer.Config)) (stop func()) {
	h.t.Helper()
	cfg := consumer.Config{
		Service: "test-service", Group: group, Producer: h.prod, Metrics: h.met,
		Handlers: map[string]consumer.Handler{topic: handler},
		Backoff:  5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		DLTRetryFor: 200 * time.Millisecond,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	c, err := consumer.New(append(kafkatest.ClientOpts(h.cluster), opts...), cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.shutdown = cancel
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) produce(recs ...*kgo.Record) []*kgo.Record {
	h.t.Helper()
	for _, r := range recs {
		if r.Topic == "" {
			r.Topic = topic
		}
	}
	if err := h.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		h.t.Fatal(err)
	}
	return recs
}

// committed returns the group's committed offset for each partition of topic.
func (h *harness) committed() map[int32]int64 {
	h.t.Helper()
	adm := kadm.NewClient(h.prod)
	out := map[int32]int64{}
	offs, err := adm.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out // the group has not committed (or even joined) yet
	}
	if err != nil {
		h.t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitCommitted waits until the committed offset of each produced record's partition is past it.
func (h *harness) waitCommitted(recs ...*kgo.Record) {
	h.t.Helper()
	waitFor(h.t, "offsets committed", func() bool {
		c := h.committed()
		for _, r := range recs {
			if c[r.Partition] <= r.Offset {
				return false
			}
		}
		return true
	})
}

func (h *harness) deadLetters(n int) []*kgo.Record {
	h.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.cluster.ListenAddrs()...), kgo.ConsumeTopics(event.DLT(topic)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		h.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			h.t.Fatalf("%d dead letters, want %d", len(out), n)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcessesAndCommits(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var got []string
	stop := h.start(func(_ context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(r.Value))
		return nil
	})
	recs := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("1")}, &kgo.Record{Key: []byte("b"), Value: []byte("2")})
	h.waitCommitted(recs...)
	stop()
	// A new member of the same group starts after the committed offsets: nothing again.
	var again atomic.Int32
	stop = h.start(func(context.Context, *kgo.Record) error { again.Add(1); return nil })
	more := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("3")})
	h.waitCommitted(more...)
	stop()
	if again.Load() != 1 {
		t.Fatalf("restarted consumer processed %d records, want only the new one", again.Load())
	}
	if testutil.ToFloat64(h.met.Consumed.WithLabelValues(topic, group)) != 3 {
		t.Fatalf("consumed counter = %v", testutil.ToFloat64(h.met.Consumed.WithLabelValues(topic, group)))
	}
}

// TestSkipsAbortedTransactions: a record produced in a transaction that was aborted (a replay
// that crashed or was fenced) is never handed to the handler.
func TestSkipsAbortedTransactions(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var got []string
	h.start(func(_ context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(r.Value))
		return nil
	})
	tx, err := kgo.NewClient(append(kafkatest.ClientOpts(h.cluster), kgo.TransactionalID("replay-test"), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx := context.Background()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, &kgo.Record{Key: []byte("a"), Value: []byte("aborted")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	recs := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("committed")})
	h.waitCommitted(recs...)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != "committed" {
		t.Fatalf("handler saw %q, want only the committed record", got)
	}
}

// TestRetryInPlaceKeepsKeyOrder: a record that fails twice is retried before the next record of
// its partition is touched.
func TestRetryInPlaceKeepsKeyOrder(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var order []string
	fails := 2
	h.start(func(_ context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if string(r.Value) == "first" && fails > 0 {
			fails--
			return consumer.Retryable("DB_LOCK_TIMEOUT", errors.New("row locked"))
		}
		order = append(order, string(r.Value))
		return nil
	})
	recs := h.produce(&kgo.Record{Key: []byte("k"), Value: []byte("first")}, &kgo.Record{Key: []byte("k"), Value: []byte("second")})
	h.waitCommitted(recs...)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "first,second" {
		t.Fatalf("processing order = %v", order)
	}
	if n := testutil.ToFloat64(h.met.Failed.WithLabelValues(topic, group, "DB_LOCK_TIMEOUT")); n != 2 {
		t.Fatalf("failed counter = %v, want 2", n)
	}
	if n := testutil.CollectAndCount(h.met.DeadLettered); n != 0 {
		t.Fatalf("%d dead-letter series, want none", n)
	}
}

// TestKeysOfAPartitionRunSideBySide: a record waiting on its database does not hold up the other
// keys of its partition, while the records of one key keep their order, and the offsets are
// committed past all of them.
func TestKeysOfAPartitionRunSideBySide(t *testing.T) {
	h := newHarness(t)
	manual, err := kgo.NewClient(append(kafkatest.ClientOpts(h.cluster), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer manual.Close()
	recs := []*kgo.Record{
		{Topic: topic, Partition: 1, Key: []byte("slow"), Value: []byte("slow-1")},
		{Topic: topic, Partition: 1, Key: []byte("fast"), Value: []byte("fast-1")},
		{Topic: topic, Partition: 1, Key: []byte("slow"), Value: []byte("slow-2")},
	}
	if err := manual.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fastDone := make(chan struct{})
	var mu sync.Mutex
	var order []string
	overtaken := false
	h.start(func(_ context.Context, r *kgo.Record) error {
		if string(r.Value) == "slow-1" {
			// Held up until the other key's record is through; a partition processed strictly
			// in offset order never gets there.
			select {
			case <-fastDone:
				mu.Lock()
				overtaken = true
				mu.Unlock()
			case <-time.After(10 * time.Second):
			}
		}
		mu.Lock()
		order = append(order, string(r.Value))
		mu.Unlock()
		if string(r.Value) == "fast-1" {
			close(fastDone)
		}
		return nil
	})
	h.waitCommitted(recs...)
	mu.Lock()
	defer mu.Unlock()
	if !overtaken {
		t.Fatalf("the fast key waited behind the slow one: processing order %v", order)
	}
	if strings.Join(order, ",") != "fast-1,slow-1,slow-2" {
		t.Fatalf("processing order = %v, want fast-1,slow-1,slow-2", order)
	}
}

// TestFaultHook: while the injected fault fails every attempt, records are dead-lettered with the
// fault's code without the handler running; once it is lifted they are processed.
func TestFaultHook(t *testing.T) {
	h := newHarness(t)
	var faulty atomic.Bool
	faulty.Store(true)
	var handled atomic.Int32
	h.start(func(context.Context, *kgo.Record) error { handled.Add(1); return nil }, func(c *consumer.Config) {
		c.Fault = func(context.Context, *kgo.Record) error {
			if faulty.Load() {
				return consumer.Retryable("DB_LOCK_TIMEOUT", errors.New("simulated: lock wait timeout"))
			}
			return nil
		}
	})
	recs := h.produce(&kgo.Record{Key: []byte("k"), Value: []byte(`{"orderId":1}`)})
	dls := h.deadLetters(1)
	if d := dlt.Decode(dls[0]); d.ErrorCode != "DB_LOCK_TIMEOUT" || !strings.Contains(d.ErrorMessage, "simulated") {
		t.Fatalf("dead letter %+v", d)
	}
	h.waitCommitted(recs...)
	if handled.Load() != 0 {
		t.Fatalf("the handler ran %d times during the fault", handled.Load())
	}
	if n := testutil.ToFloat64(h.met.Failed.WithLabelValues(topic, group, "DB_LOCK_TIMEOUT")); n != 3 {
		t.Fatalf("failed attempts = %v, want 3", n)
	}
	faulty.Store(false)
	more := h.produce(&kgo.Record{Key: []byte("k"), Value: []byte(`{"orderId":2}`)})
	h.waitCommitted(more...)
	if handled.Load() != 1 {
		t.Fatalf("handled %d records after the fault, want 1", handled.Load())
	}
}

// TestDeadLetter: a record failing every attempt, and one failing permanently at once, land in the
// DLT with Spring's headers and the error fields, keep their key and headers, and are committed.
func TestDeadLetter(t *testing.T) {
	h := newHarness(t)
	var attempts sync.Map
	h.start(func(_ context.Context, r *kgo.Record) error {
		n, _ := attempts.LoadOrStore(string(r.Value), new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if strings.Contains(string(r.Value), "schema") {
			return fmt.Errorf("decode: %w", event.ErrSchema)
		}
		return consumer.Retryable("DB_LOCK_TIMEOUT", errors.New("could not obtain lock on row in relation \"option_values\""))
	})
	recs := h.produce(
		&kgo.Record{Key: []byte("7"), Value: []byte(`{"orderId":7,"what":"transient"}`), Headers: []kgo.RecordHeader{{Key: "x-biz", Value: []byte("kept")}}},
		&kgo.Record{Key: []byte("8"), Value: []byte(`{"orderId":8,"what":"schema"}`)},
	)
	h.waitCommitted(recs...)
	dls := h.deadLetters(2)
	byKey := map[string]dlt.Record{}
	for _, r := range dls {
		byKey[string(r.Key)] = dlt.Decode(r)
	}

	d := byKey["7"]
	if d.Format != dlt.FormatSaga || d.ErrorSource != "test-service" || d.ErrorCode != "DB_LOCK_TIMEOUT" || d.Group != group {
		t.Fatalf("transient dead letter = %+v", d)
	}
	if d.Origin.Topic != topic || d.Origin.Partition != recs[0].Partition || d.Origin.Offset != recs[0].Offset {
		t.Fatalf("origin = %+v, want %s/%d/%d", d.Origin, topic, recs[0].Partition, recs[0].Offset)
	}
	if !strings.Contains(d.ErrorMessage, "could not obtain lock") || d.Field("orderId") != "7" || d.Field("what") != "transient" {
		t.Fatalf("message %q, fields %v", d.ErrorMessage, d.Fields)
	}
	if d.Exception != "com.come2us.saga.DbLockTimeoutException" || !strings.Contains(d.Stacktrace, "*consumer.Error") {
		t.Fatalf("exception %q, stack %q", d.Exception, d.Stacktrace)
	}
	if len(d.Problems) != 0 {
		t.Fatalf("problems decoding our own dead letter: %v", d.Problems)
	}
	var kept bool
	for _, hd := range d.Raw {
		kept = kept || (hd.Key == "x-biz" && string(hd.Value) == "kept")
	}
	if !kept {
		t.Fatal("original business header dropped")
	}
	if n, _ := attempts.Load(`{"orderId":7,"what":"transient"}`); n.(*atomic.Int32).Load() != 3 {
		t.Fatalf("transient record tried %d times, want 3", n.(*atomic.Int32).Load())
	}

	s := byKey["8"]
	if s.ErrorCode != consumer.CodeSchema {
		t.Fatalf("schema dead letter code = %q", s.ErrorCode)
	}
	if n, _ := attempts.Load(`{"orderId":8,"what":"schema"}`); n.(*atomic.Int32).Load() != 1 {
		t.Fatalf("invalid record tried %d times, want 1", n.(*atomic.Int32).Load())
	}
	if n := testutil.ToFloat64(h.met.DeadLettered.WithLabelValues(topic, group, consumer.CodeSchema)); n != 1 {
		t.Fatalf("dead-lettered counter = %v", n)
	}
	// The value is still the original event with extra fields.
	var v map[string]any
	if err := json.Unmarshal(dls[0].Value, &v); err != nil || v["errorCode"] == nil || v["timestamp"] == nil {
		t.Fatalf("dead-letter value %s", dls[0].Value)
	}
}

// TestCommitWaitsForDeadLetter: while the DLT cannot be written the record stays uncommitted and
// its partition is rewound, so the record is processed again; once the DLT takes writes, the
// dead letter is written once and only then the offset committed.
func TestCommitWaitsForDeadLetter(t *testing.T) {
	h := newHarness(t)
	fault := h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.DLT(topic), Count: -1, Err: kerr.TopicAuthorizationFailed})
	var calls atomic.Int32
	h.start(func(context.Context, *kgo.Record) error {
		calls.Add(1)
		return consumer.Permanent("ORDER_ALREADY_FAILED", errors.New("order 9 is FAILED"))
	})
	recs := h.produce(&kgo.Record{Key: []byte("9"), Value: []byte(`{"orderId":9}`)})
	waitFor(t, "the record to be rewound and processed again", func() bool { return calls.Load() >= 3 })
	if c := h.committed()[recs[0].Partition]; c > recs[0].Offset {
		t.Fatalf("offset %d committed while the dead letter was not written", c)
	}
	fault.Remove()
	h.waitCommitted(recs...)
	dls := h.deadLetters(1)
	if d := dlt.Decode(dls[0]); d.ErrorCode != "ORDER_ALREADY_FAILED" {
		t.Fatalf("dead letter %+v", d)
	}
	if n := len(kafkatest.Records(t, h.cluster, event.DLT(topic))); n != 1 {
		t.Fatalf("%d dead letters, want exactly 1", n)
	}
}

func TestTargetGroupSkip(t *testing.T) {
	h := newHarness(t)
	var seen sync.Map
	h.start(func(_ context.Context, r *kgo.Record) error { seen.Store(string(r.Value), true); return nil })
	recs := h.produce(
		&kgo.Record{Key: []byte("1"), Value: []byte("other"), Headers: []kgo.RecordHeader{{Key: dlt.HeaderTargetGroup, Value: []byte("product-service-group")}}},
		&kgo.Record{Key: []byte("1"), Value: []byte("mine"), Headers: []kgo.RecordHeader{{Key: dlt.HeaderTargetGroup, Value: []byte(group)}}},
		&kgo.Record{Key: []byte("1"), Value: []byte("anyone")},
	)
	h.waitCommitted(recs...)
	if _, ok := seen.Load("other"); ok {
		t.Fatal("a record replayed for another group was processed")
	}
	for _, v := range []string{"mine", "anyone"} {
		if _, ok := seen.Load(v); !ok {
			t.Fatalf("record %q was not processed", v)
		}
	}
}

// TestShutdownDrains: a record in flight when the context ends finishes and is committed.
func TestShutdownDrains(t *testing.T) {
	h := newHarness(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var done atomic.Bool
	stop := h.start(func(ctx context.Context, _ *kgo.Record) error {
		close(entered)
		<-release
		done.Store(ctx.Err() == nil)
		return nil
	})
	recs := h.produce(&kgo.Record{Key: []byte("1"), Value: []byte("slow")})
	<-entered
	h.shutdown() // the shutdown begins while the handler runs
	close(release)
	stop()
	if !done.Load() {
		t.Fatal("the handler's context ended before it could finish")
	}
	if c := h.committed()[recs[0].Partition]; c <= recs[0].Offset {
		t.Fatalf("drained record not committed (committed %d, record at %d)", c, recs[0].Offset)
	}
}

func TestCodes(t *testing.T) {
	for _, tc := range []struct {
		err       error
		code      string
		permanent bool
	}{
		{consumer.Permanent("ORDER_ALREADY_FAILED", errors.New("x")), "ORDER_ALREADY_FAILED", true},
		{fmt.Errorf("wrap: %w", consumer.Retryable("DB_TIMEOUT", errors.New("x"))), "DB_TIMEOUT", false},
		{fmt.Errorf("decode: %w", event.ErrSchema), consumer.CodeSchema, true},
		{context.DeadlineExceeded, consumer.CodeTimeout, false},
		{errors.New("boom"), consumer.CodeUnknown, false},
	} {
		if got := consumer.CodeOf(tc.err); got != tc.code {
			t.Errorf("CodeOf(%v) = %q, want %q", tc.err, got, tc.code)
		}
		if got := consumer.IsPermanent(tc.err); got != tc.permanent {
			t.Errorf("IsPermanent(%v) = %v", tc.err, got)
		}
	}
}

// stepClock is a clock the test moves: each call to advance adds to it.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestTransientRetriedInPlace: a record failing with a transient error (a lock, a timeout) is not
// dead-lettered after Attempts tries: it is retried in place — in rounds of HoldFor between which
// the partition is rewound so the group could rebalance — until it succeeds, and the record
// behind it on the partition waits.
func TestTransientRetriedInPlace(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var order []string
	fails := 12
	h.start(func(_ context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if string(r.Value) == "first" && fails > 0 {
			fails--
			return consumer.Transient("DB_LOCK_TIMEOUT", errors.New("row locked"))
		}
		order = append(order, string(r.Value))
		return nil
	}, func(c *consumer.Config) { c.Attempts, c.HoldFor = 3, time.Nanosecond })
	recs := h.produce(&kgo.Record{Key: []byte("k"), Value: []byte("first")}, &kgo.Record{Key: []byte("k"), Value: []byte("second")})
	h.waitCommitted(recs...)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(order, ",") != "first,second" {
		t.Fatalf("processing order = %v", order)
	}
	if n := testutil.ToFloat64(h.met.Failed.WithLabelValues(topic, group, "DB_LOCK_TIMEOUT")); n != 12 {
		t.Fatalf("failed attempts = %v, want 12 (more than Attempts: transient failures are retried)", n)
	}
	if n := testutil.CollectAndCount(h.met.DeadLettered); n != 0 {
		t.Fatalf("%d dead-letter series, want none", n)
	}
}

// TestTransientGivesUpAfterRetryFor: a transient failure that outlasts RetryFor — counted from the
// record's first failure on the injected clock, across rounds and rewinds — is dead-lettered.
func TestTransientGivesUpAfterRetryFor(t *testing.T) {
	h := newHarness(t)
	clk := &stepClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	var calls atomic.Int32
	h.start(func(context.Context, *kgo.Record) error {
		calls.Add(1)
		clk.advance(time.Minute)
		return consumer.Transient("DB_UNAVAILABLE", errors.New("connection refused"))
	}, func(c *consumer.Config) { c.Now, c.RetryFor, c.HoldFor = clk.Now, 5*time.Minute, time.Nanosecond })
	recs := h.produce(&kgo.Record{Key: []byte("k"), Value: []byte(`{"orderId":3}`)})
	dls := h.deadLetters(1)
	h.waitCommitted(recs...)
	if d := dlt.Decode(dls[0]); d.ErrorCode != "DB_UNAVAILABLE" {
		t.Fatalf("dead letter %+v", d)
	}
	if n := calls.Load(); n != 5 {
		t.Fatalf("tried %d times, want 5 (one a minute until five minutes had passed)", n)
	}
}

// TestStaticMemberRestart: a consumer killed without leaving its group (kill -9: its LeaveGroup
// never arrives) is restarted under the same instance id — the pod's name — and takes its
// partitions back at once, instead of waiting out the dead member's session (two minutes here).
func TestStaticMemberRestart(t *testing.T) {
	h := newHarness(t)
	session := []kgo.Opt{kgo.SessionTimeout(2 * time.Minute)}
	pod := func(c *consumer.Config) { c.InstanceID = "order-service-7d9f-abcde" }
	stop := h.startWith(session, func(context.Context, *kgo.Record) error { return nil }, pod)
	recs := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("1")})
	h.waitCommitted(recs...)

	// The process dies: whatever it would say on the way out never reaches the broker.
	dead := h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.LeaveGroup}, Count: -1, Err: kerr.UnknownServerError})
	stop()
	dead.Remove()

	var second atomic.Int32
	start := time.Now()
	h.startWith(session, func(context.Context, *kgo.Record) error { second.Add(1); return nil }, pod)
	more := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("2")}, &kgo.Record{Key: []byte("b"), Value: []byte("3")})
	h.waitCommitted(more...) // fails after 20s: far less than the session the group would wait out
	if second.Load() != 2 {
		t.Fatalf("restarted consumer processed %d records, want the 2 new ones", second.Load())
	}
	t.Logf("restarted member consuming after %s", time.Since(start).Round(time.Millisecond))
}

// TestStaticMemberLeavesOnShutdown: a static member that shuts down gracefully (a pod removed by a
// scale-down or a rolling update) leaves its group on the way out, so a member with another
// instance id gets the partitions at once rather than after the session.
func TestStaticMemberLeavesOnShutdown(t *testing.T) {
	h := newHarness(t)
	session := []kgo.Opt{kgo.SessionTimeout(2 * time.Minute)}
	stop := h.startWith(session, func(context.Context, *kgo.Record) error { return nil }, func(c *consumer.Config) { c.InstanceID = "order-service-old" })
	recs := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("1")})
	h.waitCommitted(recs...)
	stop()
	var got atomic.Int32
	h.startWith(session, func(context.Context, *kgo.Record) error { got.Add(1); return nil }, func(c *consumer.Config) { c.InstanceID = "order-service-new" })
	more := h.produce(&kgo.Record{Key: []byte("a"), Value: []byte("2")})
	h.waitCommitted(more...) // fails after 20s, well inside the session
	if got.Load() != 1 {
		t.Fatalf("the new member processed %d records, want 1", got.Load())
	}
}

// TestDeadLetterOnceAfterLostCommit: a member dead-letters a record, but its offset commit fails
// and it then leaves; the next owner of the partition is handed the record again. It finds the
// dead letter the first member wrote and commits without writing a second one.
func TestDeadLetterOnceAfterLostCommit(t *testing.T) {
	h := newHarness(t)
	lost := h.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Count: -1, Err: kerr.OffsetMetadataTooLarge})
	var firstCalls atomic.Int32
	stop := h.start(func(context.Context, *kgo.Record) error {
		firstCalls.Add(1)
		return consumer.Permanent("ORDER_ALREADY_FAILED", errors.New("order 5 is FAILED"))
	})
	recs := h.produce(&kgo.Record{Key: []byte("5"), Value: []byte(`{"orderId":5}`)})
	h.deadLetters(1)
	waitFor(t, "the failed commit", func() bool { return lost.Hits() > 0 })
	stop()
	lost.Remove()
	if c := h.committed()[recs[0].Partition]; c > recs[0].Offset {
		t.Fatalf("offset %d committed although every commit failed", c)
	}

	var secondCalls atomic.Int32
	h.start(func(context.Context, *kgo.Record) error {
		secondCalls.Add(1)
		return consumer.Permanent("ORDER_ALREADY_FAILED", errors.New("order 5 is FAILED"))
	})
	h.waitCommitted(recs...)
	if secondCalls.Load() != 1 {
		t.Fatalf("the next owner handled the record %d times, want 1 (it was redelivered)", secondCalls.Load())
	}
	if n := len(kafkatest.Records(t, h.cluster, event.DLT(topic))); n != 1 {
		t.Fatalf("%d dead letters of one record, want 1", n)
	}
}
