package saga_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/service"
	"github.com/come2us/opsctl/pkg/services/store"
)

// TestSaga runs a few hundred orders with a mix of approved and declined payments through all
// three services and checks the end state (see env.check).
func TestSaga(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := startSaga(t, newURL)
		e.shop(300, 8)
		e.quiesce()
		e.check()
	})
}

// TestEveryRecordTwice re-produces every record of the three SAGA topics while the SAGA runs, so
// each event is delivered twice (interleaved with the rest); the end state must be the same as
// with single delivery.
func TestEveryRecordTwice(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := startSaga(t, newURL)
		m := e.mirror()
		e.shop(150, 6)
		waitFor(t, "every record duplicated", m.caughtUp)
		e.quiesce()
		waitFor(t, "every duplicate duplicated", m.caughtUp) // compensation records written meanwhile
		e.quiesce()
		m.stop()
		if m.copies.Load() == 0 {
			t.Fatal("no record was duplicated")
		}
		e.check()
	})
}

type mirror struct {
	e      *env
	copies atomic.Int64
	cancel context.CancelFunc
	done   chan struct{}
}

const copyHeader = "x-test-copy"

// mirror copies every record on the SAGA topics once (a copy is marked so it is not copied again).
func (e *env) mirror() *mirror {
	e.t.Helper()
	cl, err := kgo.NewClient(append(kafkatest.ClientOpts(e.cluster), kgo.ConsumeTopics(event.Topics()...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &mirror{e: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		defer cl.Close()
		for ctx.Err() == nil {
			var copies []*kgo.Record
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == copyHeader {
						return
					}
				}
				hs := append(append([]kgo.RecordHeader{}, r.Headers...), kgo.RecordHeader{Key: copyHeader, Value: []byte("1")})
				copies = append(copies, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: hs})
			})
			if len(copies) > 0 {
				if err := cl.ProduceSync(context.Background(), copies...).FirstErr(); err != nil {
					e.t.Errorf("mirror: %v", err)
					return
				}
				m.copies.Add(int64(len(copies)))
			}
		}
	}()
	e.t.Cleanup(m.stop)
	return m
}

// caughtUp reports whether every original record on the topics has its copy.
func (m *mirror) caughtUp() bool {
	total := 0
	for _, topic := range event.Topics() {
		total += len(kafkatest.Records(m.e.t, m.e.cluster, topic))
	}
	return total > 0 && int64(total) == 2*m.copies.Load()
}

func (m *mirror) stop() { m.cancel(); <-m.done }

// TestKafkaDown: while Kafka refuses every write, payments are confirmed and their results wait
// in payment-service's outbox; then, while only orders-failed is refused, the orders fail and
// their compensation waits in order-service's outbox. Once Kafka takes writes again everything is
// published — each orders-failed event exactly once — and the SAGA ends correct.
func TestKafkaDown(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := startSaga(t, newURL)
		all := e.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Count: -1, Err: kerr.NotLeaderForPartition})
		e.shop(60, 4)
		waitFor(t, "payment results held in the outbox", func() bool {
			s, err := outbox.ReadStats(context.Background(), e.sys.Payment.Runtime().DB.SQL)
			return err == nil && s.Unsent == len(e.checkout) && s.Retrying == len(e.checkout)
		})
		for _, topic := range []string{event.TopicPaymentsPaid, event.TopicPaymentsFailed} {
			if n := len(kafkatest.Records(t, e.cluster, topic)); n != 0 {
				t.Fatalf("%s has %d records while Kafka refused writes", topic, n)
			}
		}

		// Payments may flow again; orders-failed still cannot be written.
		ordersFailed := e.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: event.TopicOrdersFailed, Count: -1, Err: kerr.NotLeaderForPartition})
		all.Remove()
		var failedLines int
		for _, co := range e.checkout {
			if co.Declined {
				failedLines += len(co.Order.Lines)
			}
		}
		waitFor(t, "orders settled with their compensation held in the outbox", func() bool {
			counts, err := e.sys.Order.Store().Counts(context.Background())
			if err != nil || counts[order.StatusPending] != 0 {
				return false
			}
			s, err := outbox.ReadStats(context.Background(), e.sys.Order.Runtime().DB.SQL)
			return err == nil && s.Unsent == failedLines && s.Retrying == failedLines
		})
		if n := len(kafkatest.Records(t, e.cluster, event.TopicOrdersFailed)); n != 0 {
			t.Fatalf("orders-failed has %d records while refused", n)
		}

		ordersFailed.Remove()
		e.quiesce()
		e.check()
		// None lost, none doubled: one orders-failed per failed line.
		var got []int64
		for _, r := range kafkatest.Records(t, e.cluster, event.TopicOrdersFailed) {
			ev, err := event.Decode[event.OrderFailed](r.Value)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.OrderDetailID)
		}
		var want []int64
		for _, co := range e.checkout {
			if co.Declined {
				for _, l := range co.Order.Lines {
					want = append(want, l.ID)
				}
			}
		}
		sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("orders-failed carried lines %v, want %v", got, want)
		}
	})
}

// TestStockRestoreFaultToDLT: while the option rows are locked (a long transaction elsewhere),
// product-service cannot restore stock; once its consumer gave up retrying the lock timeouts in
// place, each orders-failed record goes to orders-failed.DLT with Spring-compatible headers and the original event plus the error fields.
// Once the lock is gone, producing the dead letters' values back to orders-failed — as opsctl's
// replay does — restores the stock exactly once, even when replayed twice.
func TestStockRestoreFaultToDLT(t *testing.T) {
	newURL := dbtest.URLs(t, dbtest.Postgres)
	var productDB string
	e := startSaga(t, newURL, func(cfg *saga.Config) {
		// product-service gives up waiting for a row lock after 200ms (lock_timeout is passed to
		// PostgreSQL as a session setting), as a production DATABASE_URL may ask it to.
		u, err := url.Parse(cfg.ProductDB)
		if err != nil {
			t.Fatal(err)
		}
		productDB = u.String()
		q := u.Query()
		q.Set("lock_timeout", "200ms")
		u.RawQuery = q.Encode()
		cfg.ProductDB = u.String()
		// A lock timeout is transient: retried in place for RetryFor before the DLT. This
		// product-service gives up after a moment so the test sees the dead letters.
		cfg.Product = func(pc *product.Config) { pc.Consumer.RetryFor = 300 * time.Millisecond }
	})
	ctx := context.Background()

	// Orders first (reserving needs the rows), payments after the lock is taken.
	var placed []order.Order
	for i := range 6 {
		o, err := e.sys.Orders.Place(ctx, order.PlaceRequest{UserID: "u" + strconv.Itoa(i), Lines: []order.PlaceLine{
			{OptionValueID: e.options[i%len(e.options)].ID, Quantity: 2}, {OptionValueID: e.options[(i+4)%len(e.options)].ID, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	locker, err := store.Open(ctx, productDB)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	lockTx, err := locker.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockTx.ExecContext(ctx, `SELECT id FROM option_values FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	for _, o := range placed {
		if _, err := e.sys.Payments.Confirm(ctx, uuidV4(t), paymentReq(o, true)); !isDeclined(err) {
			t.Fatalf("confirm of order %d: %v, want a decline", o.ID, err)
		}
	}
	lines := 2 * len(placed)
	dls := kafkatest.Wait(t, e.cluster, event.DLT(event.TopicOrdersFailed), lines)
	originals := map[int64]*kgo.Record{}
	for _, r := range kafkatest.Records(t, e.cluster, event.TopicOrdersFailed) {
		ev, err := event.Decode[event.OrderFailed](r.Value)
		if err != nil {
			t.Fatal(err)
		}
		originals[ev.OrderDetailID] = r
	}
	if len(originals) != lines {
		t.Fatalf("%d orders-failed records, want %d", len(originals), lines)
	}
	for _, r := range dls {
		d := dlt.Decode(r)
		ev, err := event.Decode[event.OrderFailed](r.Value) // a dead letter reads as the original event
		if err != nil {
			t.Fatalf("dead-letter value does not read as the original event: %v\n%s", err, r.Value)
		}
		orig := originals[ev.OrderDetailID]
		if orig == nil {
			t.Fatalf("dead letter for unknown line %d", ev.OrderDetailID)
		}
		var origFields map[string]any
		_ = json.Unmarshal(orig.Value, &origFields)
		for k, v := range origFields {
			if fmt.Sprint(d.Fields[k]) != fmt.Sprint(v) {
				t.Fatalf("dead letter field %s = %v, original %v", k, d.Fields[k], v)
			}
		}
		switch {
		case d.Format != dlt.FormatSaga, d.ErrorSource != product.Name, d.ErrorCode != store.CodeLockTimeout,
			d.Group != event.GroupProductService, d.ErrorMessage == "", d.FailedAt.IsZero(),
			d.Exception != "com.come2us.saga.DbLockTimeoutException", len(d.Problems) != 0:
			t.Fatalf("dead letter %+v", d)
		case d.Origin.Topic != event.TopicOrdersFailed || d.Origin.Partition != orig.Partition || d.Origin.Offset != orig.Offset ||
			d.Origin.Timestamp.UnixMilli() != orig.Timestamp.UnixMilli():
			t.Fatalf("origin %+v, want %s/%d/%d", d.Origin, orig.Topic, orig.Partition, orig.Offset)
		case string(r.Key) != string(orig.Key) || r.Partition != orig.Partition:
			t.Fatalf("dead letter key %q partition %d, original %q %d", r.Key, r.Partition, orig.Key, orig.Partition)
		}
		raw := map[string][]byte{}
		for _, h := range r.Headers {
			raw[h.Key] = h.Value
		}
		if p := raw[dlt.HeaderOriginalPartition]; len(p) != 4 || int32(binary.BigEndian.Uint32(p)) != orig.Partition {
			t.Fatalf("%s = %x", dlt.HeaderOriginalPartition, p)
		}
		if o := raw[dlt.HeaderOriginalOffset]; len(o) != 8 || int64(binary.BigEndian.Uint64(o)) != orig.Offset {
			t.Fatalf("%s = %x", dlt.HeaderOriginalOffset, o)
		}
		if ts := raw[dlt.HeaderOriginalTimestamp]; len(ts) != 8 {
			t.Fatalf("%s = %x", dlt.HeaderOriginalTimestamp, ts)
		}
		if string(raw[dlt.HeaderOriginalTopic]) != event.TopicOrdersFailed || string(raw[dlt.HeaderOriginalGroup]) != event.GroupProductService ||
			len(raw[dlt.HeaderExceptionMessage]) == 0 || len(raw[dlt.HeaderExceptionStacktrace]) == 0 || len(raw["traceparent"]) == 0 {
			t.Fatalf("dead-letter headers %v", r.Headers)
		}
	}
	// The trace begun by the payment request reaches the dead letters: payments-failed, the
	// compensation and the dead letter of one order share a trace id.
	traceOf := func(r *kgo.Record) string {
		for _, h := range r.Headers {
			if h.Key == "traceparent" && len(h.Value) == 55 {
				return string(h.Value[3:35])
			}
		}
		return ""
	}
	paymentTrace := map[string]string{}
	for _, r := range kafkatest.Records(t, e.cluster, event.TopicPaymentsFailed) {
		paymentTrace[string(r.Key)] = traceOf(r)
	}
	for _, r := range dls {
		if tr := traceOf(r); tr == "" || tr != paymentTrace[string(r.Key)] {
			t.Fatalf("dead letter of order %s has trace %q, its payments-failed %q", r.Key, tr, paymentTrace[string(r.Key)])
		}
	}
	pm := e.sys.Product.Runtime().Metrics
	if n := testutil.ToFloat64(pm.DeadLettered.WithLabelValues(event.TopicOrdersFailed, event.GroupProductService, store.CodeLockTimeout)); n != float64(lines) {
		t.Fatalf("dead-lettered counter = %v, want %d", n, lines)
	}
	// How many tries fit in RetryFor depends on the machine's load; each line failed at least once.
	if n := testutil.ToFloat64(pm.Failed.WithLabelValues(event.TopicOrdersFailed, event.GroupProductService, store.CodeLockTimeout)); n < float64(lines) {
		t.Fatalf("failed-attempt counter = %v, want at least %d (one per line, before the DLT)", n, lines)
	}
	if restored := testutil.ToFloat64(pm.Compensations.WithLabelValues("stock_restored")); restored != 0 {
		t.Fatalf("stock restored %v times during the fault", restored)
	}

	// The fault ends; replay the dead letters twice, as opsctl would (targeted at the group).
	if err := lockTx.Rollback(); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		var replays []*kgo.Record
		for _, r := range dls {
			replays = append(replays, &kgo.Record{Topic: event.TopicOrdersFailed, Key: r.Key, Value: r.Value, Headers: []kgo.RecordHeader{
				{Key: dlt.HeaderReplayID, Value: []byte(fmt.Sprintf("test-%d-%d", round, r.Offset))},
				{Key: dlt.HeaderReplayCount, Value: []byte(strconv.Itoa(round))},
				{Key: dlt.HeaderReplayedFrom, Value: []byte(fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset))},
				{Key: dlt.HeaderTargetGroup, Value: []byte(event.GroupProductService)},
			}})
		}
		if err := e.client.ProduceSync(ctx, replays...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range placed {
		e.checkout = append(e.checkout, saga.Checkout{Order: o, Declined: true})
	}
	e.quiesce()
	// The dead letters stay where they were (they are the record of the incident); everything
	// else must be as if the fault never happened.
	if n := testutil.ToFloat64(pm.Compensations.WithLabelValues("stock_restored")); n != float64(lines) {
		t.Fatalf("stock restored %v times, want once per line (%d)", n, lines)
	}
	now := e.stock()
	for id, init := range e.initial {
		if now[id] != init {
			t.Fatalf("option %d: stock %d after replay, want the initial %d (every order failed)", id, now[id], init)
		}
	}
}

func uuidV4(t *testing.T) string {
	t.Helper()
	return uuid.NewString()
}

func paymentReq(o order.Order, decline bool) payment.ConfirmRequest {
	pk := fmt.Sprintf("tpk_%d", o.ID)
	if decline {
		pk = "fail_" + pk
	}
	return payment.ConfirmRequest{PaymentKey: pk, OrderID: o.ID, Amount: o.Amount}
}

func isDeclined(err error) bool {
	var ae *service.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusPaymentRequired
}
