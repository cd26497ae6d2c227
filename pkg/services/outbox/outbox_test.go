package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/trace"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/store"
)

const topic = "things"

type env struct {
	cluster *kfake.Cluster
	db      *store.DB
	relay   *outbox.Relay
	prod    *kgo.Client
	met     *metrics.Saga
}

func setup(t *testing.T, url string) *env {
	t.Helper()
	ctx := context.Background()
	c := kafkatest.New(t, topic)
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := outbox.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(append(kafkatest.ClientOpts(c), kgo.RecordDeliveryTimeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	met := metrics.New("test-service")
	relay, err := outbox.NewRelay(outbox.Config{DB: db, Producer: prod, Metrics: met,
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond, PollInterval: 20 * time.Millisecond,
		MaxAttempts: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	return &env{cluster: c, db: db, relay: relay, prod: prod, met: met}
}

func (e *env) add(t *testing.T, ctx context.Context, msgs ...outbox.Message) {
	t.Helper()
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return outbox.Add(ctx, tx, time.Now(), msgs...) }); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads topic from the start until it has n records (or fails the test after 30s).
func consumeAll(t *testing.T, c *kfake.Cluster, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic has %d records, want %d", len(out), n)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stats(t *testing.T, e *env) outbox.Stats {
	t.Helper()
	s, err := outbox.ReadStats(context.Background(), e.db.SQL)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublishCommittedOnly(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := setup(t, newURL())
		traceID, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
		spanID, _ := trace.SpanIDFromHex("b7ad6b7169203331")
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
		e.add(t, ctx, outbox.Message{Topic: topic, Key: []byte("1"), Value: []byte(`{"n":1}`),
			Headers: []kgo.RecordHeader{{Key: "x-biz", Value: []byte("yes")}}})
		// A rolled-back transaction leaves nothing to publish.
		_ = e.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := outbox.Add(ctx, tx, time.Now(), outbox.Message{Topic: topic, Key: []byte("2"), Value: []byte(`{"n":2}`)}); err != nil {
				return err
			}
			return fmt.Errorf("abort")
		})
		res, err := e.relay.PublishOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res != (outbox.Result{Claimed: 1, Sent: 1}) {
			t.Fatalf("PublishOnce = %+v, want one sent", res)
		}
		recs := consumeAll(t, e.cluster, 1)
		r := recs[0]
		if string(r.Key) != "1" || string(r.Value) != `{"n":1}` {
			t.Fatalf("published %q=%q", r.Key, r.Value)
		}
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs["x-biz"] != "yes" || hs["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Fatalf("headers = %v, want x-biz and the writer's traceparent", hs)
		}
		if s := stats(t, e); s.Unsent != 0 {
			t.Fatalf("stats after publish = %+v", s)
		}
		// Nothing left: a second pass claims nothing.
		if res, err := e.relay.PublishOnce(context.Background()); err != nil || res.Claimed != 0 {
			t.Fatalf("second pass = %+v, %v", res, err)
		}
	})
}

// TestKafkaDown: while every produce fails, rows are kept as RETRY with growing attempts and
// the backlog gauge shows them; once Kafka answers again every row is published, in order per
// key, none lost.
func TestKafkaDown(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := setup(t, newURL())
		fault := e.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Count: -1, Err: kerr.NotLeaderForPartition})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.relay.Run(ctx) }()
		defer func() { cancel(); wg.Wait() }()

		const keys, perKey = 5, 6
		for i := range perKey {
			for k := range keys {
				e.add(t, context.Background(), outbox.Message{Topic: topic, Key: []byte(strconv.Itoa(k)), Value: []byte(strconv.Itoa(i))})
				e.relay.Kick()
			}
		}
		waitFor(t, "every row to have failed at least once", func() bool {
			var n int
			_ = e.db.SQL.QueryRow(`SELECT COUNT(*) FROM outbox WHERE status = 'RETRY' AND attempts >= 1`).Scan(&n)
			return n == keys*perKey
		})
		waitFor(t, "the backlog gauge", func() bool { return testutil.ToFloat64(e.met.OutboxBacklog) == keys*perKey })
		if s := stats(t, e); s.Unsent != keys*perKey || s.Retrying != keys*perKey || s.Failed != 0 || s.Oldest.IsZero() {
			t.Fatalf("stats while Kafka is down = %+v", s)
		}
		fault.Remove()
		recs := consumeAll(t, e.cluster, keys*perKey)
		waitFor(t, "all rows SENT", func() bool { return stats(t, e).Unsent == 0 })
		next := map[string]int{}
		for _, r := range recs {
			want := strconv.Itoa(next[string(r.Key)])
			if string(r.Value) != want {
				t.Fatalf("key %s: got value %s, want %s (out of order or duplicated)", r.Key, r.Value, want)
			}
			next[string(r.Key)]++
		}
		for k := range keys {
			if next[strconv.Itoa(k)] != perKey {
				t.Fatalf("key %d: %d records published, want %d", k, next[strconv.Itoa(k)], perKey)
			}
		}
		waitFor(t, "the backlog gauge to drain", func() bool { return testutil.ToFloat64(e.met.OutboxBacklog) == 0 })
	})
}

// TestConcurrentRelays: several relays on one table publish every row exactly once.
func TestConcurrentRelays(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := setup(t, newURL())
		const n = 300
		var msgs []outbox.Message
		for i := range n {
			msgs = append(msgs, outbox.Message{Topic: topic, Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))})
		}
		e.add(t, context.Background(), msgs...)
		var wg sync.WaitGroup
		for range 3 {
			r, err := outbox.NewRelay(outbox.Config{DB: e.db, Producer: e.prod, Batch: 17})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					res, err := r.PublishOnce(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if res.Claimed == 0 {
						return
					}
				}
			}()
		}
		wg.Wait()
		if s := stats(t, e); s.Unsent != 0 {
			t.Fatalf("rows left unsent: %+v", s)
		}
		recs := consumeAll(t, e.cluster, n)
		seen := map[string]bool{}
		last := map[string]int{}
		for _, r := range recs {
			if seen[string(r.Value)] {
				t.Fatalf("value %s published twice", r.Value)
			}
			seen[string(r.Value)] = true
			v, _ := strconv.Atoi(string(r.Value))
			if p, ok := last[string(r.Key)]; ok && v < p {
				t.Fatalf("key %s: %d published after %d", r.Key, v, p)
			}
			last[string(r.Key)] = v
		}
		if len(recs) != n {
			t.Fatalf("%d records, want %d", len(recs), n)
		}
	})
}

func TestAddRejectsIncompleteMessage(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := outbox.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	err = db.Tx(context.Background(), func(tx *sql.Tx) error {
		return outbox.Add(context.Background(), tx, time.Now(), outbox.Message{Value: []byte("x")})
	})
	if err == nil {
		t.Fatal("a message without topic was accepted")
	}
}

// stepClock is a clock the test sets.
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

// TestGivesUpAfterMaxAttempts: a row that fails to publish MaxAttempts times is marked FAILED: the
// relay stops trying it, the saga_outbox_failed gauge shows it, and a later row of the same key is
// no longer held back behind it.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := setup(t, newURL())
		clk := &stepClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		relay, err := outbox.NewRelay(outbox.Config{DB: e.db, Producer: e.prod, Metrics: e.met, Now: clk.Now,
			RetryBackoff: time.Second, MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		refused := e.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Count: -1, Err: kerr.TopicAuthorizationFailed})
		e.add(t, ctx, outbox.Message{Topic: topic, Key: []byte("k"), Value: []byte("poison")})
		for attempt := 1; attempt <= 3; attempt++ {
			res, err := relay.PublishOnce(ctx)
			if err != nil || res.Claimed != 1 || res.Failed != 1 {
				t.Fatalf("attempt %d: %+v, %v", attempt, res, err)
			}
			if (attempt == 3) != (res.GaveUp == 1) {
				t.Fatalf("attempt %d gave up on %d rows", attempt, res.GaveUp)
			}
			clk.advance(time.Hour) // past any backoff
		}
		if s := stats(t, e); s.Failed != 1 || s.Unsent != 0 || s.Retrying != 0 {
			t.Fatalf("stats after giving up = %+v, want one FAILED row and nothing left to send", s)
		}
		if n := testutil.ToFloat64(e.met.OutboxFailedRows); n != 1 {
			t.Fatalf("saga_outbox_failed = %v, want 1", n)
		}
		refused.Remove()
		if res, err := relay.PublishOnce(ctx); err != nil || res.Claimed != 0 {
			t.Fatalf("a FAILED row was claimed again: %+v, %v", res, err)
		}
		e.add(t, ctx, outbox.Message{Topic: topic, Key: []byte("k"), Value: []byte("after")})
		res, err := relay.PublishOnce(ctx)
		if err != nil || res.Sent != 1 {
			t.Fatalf("the next row of the key: %+v, %v; want it published past the FAILED one", res, err)
		}
		recs := consumeAll(t, e.cluster, 1)
		if len(recs) != 1 || string(recs[0].Value) != "after" {
			t.Fatalf("published %d records, first %q; want only the later row", len(recs), recs[0].Value)
		}
	})
}

// TestLeaseFence: relay A claims a row and its publish hangs past the lease; relay B claims the row
// again and publishes and records it. When A's publish finally returns, A must not record anything
// over B's record: it lost the lease.
func TestLeaseFence(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := setup(t, newURL())
		ctx := context.Background()
		t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		clkA, clkB := &stepClock{now: t0}, &stepClock{now: t0.Add(31 * time.Second)}
		prodB, err := kgo.NewClient(append(kafkatest.ClientOpts(e.cluster), kgo.RecordDeliveryTimeout(5*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		defer prodB.Close()
		relayA, err := outbox.NewRelay(outbox.Config{DB: e.db, Producer: e.prod, Now: clkA.Now, Lease: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		relayB, err := outbox.NewRelay(outbox.Config{DB: e.db, Producer: prodB, Now: clkB.Now, Lease: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		e.add(t, ctx, outbox.Message{Topic: topic, Key: []byte("k"), Value: []byte("v")})

		// A's produce request is held by the broker until released.
		var held atomic.Bool
		entered, release := make(chan struct{}), make(chan struct{})
		e.cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			e.cluster.KeepControl()
			if held.CompareAndSwap(false, true) {
				close(entered)
				e.cluster.SleepControl(func() { <-release })
			}
			return nil, nil, false
		})
		resA := make(chan outbox.Result, 1)
		go func() {
			res, err := relayA.PublishOnce(ctx)
			if err != nil {
				t.Error(err)
			}
			resA <- res
		}()
		<-entered
		resB, err := relayB.PublishOnce(ctx)
		if err != nil || resB.Sent != 1 || resB.LeaseLost != 0 {
			t.Fatalf("relay B after A's lease ran out: %+v, %v", resB, err)
		}
		close(release)
		a := <-resA
		if a.Sent != 1 || a.LeaseLost != 1 {
			t.Fatalf("relay A: %+v, want its publish reported and its record refused (lease lost)", a)
		}
		var status string
		var attempts int
		var sentAt int64
		if err := e.db.SQL.QueryRow(`SELECT status, attempts, sent_at FROM outbox`).Scan(&status, &attempts, &sentAt); err != nil {
			t.Fatal(err)
		}
		if status != outbox.StatusSent || attempts != 1 || sentAt != clkB.Now().UnixMicro() {
			t.Fatalf("row: %s, %d attempts, sent at %d; want B's record (SENT, 1 attempt, sent at %d)", status, attempts, sentAt, clkB.Now().UnixMicro())
		}
	})
}

// TestAddAfter: on PostgreSQL a change and the events announcing it are one statement. When the
// change matches a row, both are stored and the events publish like Add's, trace context
// included; when it matches none, nothing is stored. SQLite refuses it with a clear error.
func TestAddAfter(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := setup(t, newURL())
		ctx := context.Background()
		if _, err := e.db.SQL.ExecContext(ctx, `CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.SQL.ExecContext(ctx, `INSERT INTO counters VALUES (1, 0)`); err != nil {
			t.Fatal(err)
		}
		bump := `UPDATE counters SET n = n + $1 WHERE id = $2 RETURNING 1`
		msgs := []outbox.Message{
			{Topic: topic, Key: []byte("1"), Value: []byte(`{"n":1}`), Headers: []kgo.RecordHeader{{Key: "x-biz", Value: []byte("yes")}}},
			{Topic: topic, Key: nil, Value: []byte(`{"n":2}`)},
		}
		stored, err := outbox.AddAfter(ctx, e.db, time.Now(), bump, []any{5, 1}, msgs...)
		if e.db.Dialect() != store.Postgres {
			if err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
				t.Fatalf("AddAfter on %s = %v, %v; want an error naming PostgreSQL", e.db.Dialect(), stored, err)
			}
			return
		}
		if err != nil || !stored {
			t.Fatalf("AddAfter with a matching change = %v, %v; want stored", stored, err)
		}
		if n := count(t, e.db, `SELECT n FROM counters WHERE id = 1`); n != 5 {
			t.Fatalf("counter = %d after the change, want 5", n)
		}
		// A change that matches nothing stores no event and changes nothing.
		stored, err = outbox.AddAfter(ctx, e.db, time.Now(), bump, []any{7, 2}, outbox.Message{Topic: topic, Value: []byte(`{"n":3}`)})
		if err != nil || stored {
			t.Fatalf("AddAfter with a change matching nothing = %v, %v; want nothing stored", stored, err)
		}
		if s := stats(t, e); s.Unsent != 2 {
			t.Fatalf("%d rows to publish, want the 2 stored with the change", s.Unsent)
		}
		if res, err := e.relay.PublishOnce(ctx); err != nil || res.Sent != 2 {
			t.Fatalf("PublishOnce = %+v, %v; want 2 sent", res, err)
		}
		recs := consumeAll(t, e.cluster, 2)
		if string(recs[0].Value) != `{"n":1}` { // the two keys may land on different partitions
			recs[0], recs[1] = recs[1], recs[0]
		}
		if string(recs[0].Key) != "1" || string(recs[0].Value) != `{"n":1}` || recs[1].Key != nil || string(recs[1].Value) != `{"n":2}` {
			t.Fatalf("published %q=%q, %q=%q", recs[0].Key, recs[0].Value, recs[1].Key, recs[1].Value)
		}
		if len(recs[0].Headers) == 0 || recs[0].Headers[0].Key != "x-biz" {
			t.Fatalf("headers of the first record = %v, want x-biz", recs[0].Headers)
		}
	})
}

func count(t *testing.T, db *store.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.SQL.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
