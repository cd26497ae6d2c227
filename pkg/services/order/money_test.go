package order_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/store"
)

func (e *env) place(t *testing.T) order.Order {
	t.Helper()
	o, err := e.sys.Orders.Place(context.Background(), order.PlaceRequest{UserID: "u", Lines: []order.PlaceLine{{OptionValueID: e.options[0].ID, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (e *env) status(t *testing.T, id int64) order.Order {
	t.Helper()
	o, err := e.sys.Orders.Order(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (e *env) confirm(t *testing.T, o order.Order, paymentKey string) error {
	t.Helper()
	_, err := e.sys.Payments.Confirm(context.Background(), uuid.NewString(), payment.ConfirmRequest{PaymentKey: paymentKey, OrderID: o.ID, Amount: o.Amount})
	return err
}

// settled waits until every event written so far went through the whole SAGA.
func (e *env) settled(t *testing.T) {
	t.Helper()
	waitFor(t, "the SAGA to settle", func() bool {
		p, err1 := outbox.ReadStats(context.Background(), e.sys.Payment.Runtime().DB.SQL)
		o, err2 := outbox.ReadStats(context.Background(), e.sys.Order.Runtime().DB.SQL)
		return err1 == nil && err2 == nil && p.Unsent == 0 && o.Unsent == 0 &&
			kafkatest.Lag(t, e.cluster, event.GroupOrderService, event.TopicPaymentsPaid, event.TopicPaymentsFailed) == 0 &&
			kafkatest.Lag(t, e.cluster, event.GroupProductService, event.TopicOrdersFailed) == 0
	})
}

func noDeadLetters(t *testing.T, e *env) {
	t.Helper()
	for _, topic := range event.Topics() {
		if recs := kafkatest.Records(t, e.cluster, event.DLT(topic)); len(recs) != 0 {
			t.Fatalf("%d dead letters on %s; first: %s", len(recs), event.DLT(topic), recs[0].Value)
		}
	}
}

// TestPausedBrokerKeepsPaidOrders: the broker stops taking and serving records for longer than
// the PENDING timeout, so payment results wait in payment-service's outbox. The sweeper does not
// cancel on age: it asks payment-service, and the paid order — and the one whose gateway answer
// came too late, reconciled on the way — become PREPARING; the declined one and the one nobody
// paid are failed and compensated. When the broker is back the held-up results are no-ops.
func TestPausedBrokerKeepsPaidOrders(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		clk := &clock{}
		e := start(t, newURL, func(cfg *saga.Config) {
			cfg.Now = clk.Now
			cfg.Order = func(oc *order.Config) { oc.SweepInterval = time.Hour }
			cfg.Payment = func(pc *payment.Config) { pc.PGTimeout, pc.PGAttempts = 300*time.Millisecond, 1 }
		})
		ctx := context.Background()
		paid, declined, unpaid, late := e.place(t), e.place(t), e.place(t), e.place(t)

		pause := e.cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce, kmsg.Fetch}, Count: -1, Err: kerr.NotLeaderForPartition})
		if err := e.confirm(t, paid, "tpk_paid"); err != nil {
			t.Fatal(err)
		}
		if err := e.confirm(t, declined, "fail_declined"); err == nil {
			t.Fatal("a fail_ payment key was approved")
		}
		release := e.sys.PG.HoldAnswers()
		if err := e.confirm(t, late, "tpk_late"); err == nil {
			t.Fatal("a held gateway answer came in time")
		}
		release()

		clk.Advance(6 * time.Minute) // the results have been held up for longer than the timeout
		n, err := e.sys.Order.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			o      order.Order
			status string
			code   string
		}{
			{paid, order.StatusPreparing, ""},
			{late, order.StatusPreparing, ""},
			{declined, order.StatusFailed, order.FailurePayment},
			{unpaid, order.StatusFailed, order.FailurePendingLimit},
		} {
			if got := e.status(t, c.o.ID); got.Status != c.status || got.FailureCode != c.code {
				t.Fatalf("order %d after the sweep: %s %s, want %s %s", c.o.ID, got.Status, got.FailureCode, c.status, c.code)
			}
		}
		if n != 2 {
			t.Fatalf("the sweep failed %d orders, want 2", n)
		}

		pause.Remove()
		e.settled(t)
		noDeadLetters(t, e)
		if e.status(t, paid.ID).Status != order.StatusPreparing || e.status(t, late.ID).Status != order.StatusPreparing {
			t.Fatal("a held-up payment result changed a settled order")
		}
		if e.sys.PG.Approved() != 2 {
			t.Fatalf("%d charges, want 2", e.sys.PG.Approved())
		}
		waitFor(t, "the failed orders' stock back", func() bool {
			st, err := e.sys.Product.Store().Stock(ctx)
			return err == nil && st[e.options[0].ID] == 10-2
		})
		// The order nobody paid is closed to payments now.
		if err := e.confirm(t, unpaid, "tpk_too_late"); err == nil || e.sys.PG.Approved() != 2 {
			t.Fatalf("a payment of the swept order went through (%v; charges %d)", err, e.sys.PG.Approved())
		}
	})
}

// TestPaymentWaitsOutRowLock: the paid order's row is locked (on SQLite: the database's one
// writer is held) while its payments-paid arrives. The consumer retries in place, with backoff,
// for far longer than the old three attempts, keeping the records behind it on the partition
// waiting; a sweep past the timeout does not cancel the order; once the lock goes the payment is
// applied — nothing dead-lettered.
func TestPaymentWaitsOutRowLock(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		clk := &clock{}
		var orderDB string
		e := start(t, newURL, func(cfg *saga.Config) {
			cfg.Now = clk.Now
			cfg.Consumer.AttemptTimeout = 300 * time.Millisecond
			// The test's clock jumps six minutes to age the order for the sweeper; the consumer's
			// retry window runs on the same clock, so it is made long enough not to end with the jump.
			cfg.Consumer.RetryFor = time.Hour
			orderDB = cfg.OrderDB
			cfg.Order = func(oc *order.Config) { oc.SweepInterval = time.Hour }
		})
		ctx := context.Background()
		locked := e.place(t)
		var others []order.Order
		for range 6 {
			others = append(others, e.place(t))
		}

		var unlock func()
		if strings.HasPrefix(orderDB, "postgres") {
			db, err := store.Open(ctx, orderDB)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			tx, err := db.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, `SELECT id FROM orders WHERE id = $1 FOR UPDATE`, locked.ID); err != nil {
				t.Fatal(err)
			}
			unlock = func() { _ = tx.Rollback() }
		} else {
			held, release := make(chan struct{}), make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- e.sys.Order.Runtime().DB.Tx(ctx, func(*sql.Tx) error { close(held); <-release; return nil })
			}()
			<-held
			unlock = func() {
				close(release)
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
		}
		var once bool
		defer func() {
			if !once {
				unlock()
			}
		}()

		if err := e.confirm(t, locked, "tpk_locked"); err != nil {
			t.Fatal(err)
		}
		om := e.sys.Order.Runtime().Metrics
		waitFor(t, "the locked order's payments-paid to fail more often than the old three attempts", func() bool {
			return failedAttempts(t, om.Registry, event.TopicPaymentsPaid) >= 6
		})
		for i, o := range others {
			if err := e.confirm(t, o, "tpk_other_"+itoa(i)); err != nil {
				t.Fatal(err)
			}
		}
		kafkatest.Wait(t, e.cluster, event.TopicPaymentsPaid, 1+len(others))
		// Key order: whatever follows the locked record on its partition waits behind it.
		var at *struct {
			p   int32
			off int64
		}
		recs := kafkatest.Records(t, e.cluster, event.TopicPaymentsPaid)
		for _, r := range recs {
			if string(r.Key) == itoa(locked.ID) {
				at = &struct {
					p   int32
					off int64
				}{r.Partition, r.Offset}
			}
		}
		if at == nil {
			t.Fatal("the locked order's payments-paid is not on the topic")
		}
		behind := 0
		for _, r := range recs {
			if r.Partition == at.p && r.Offset > at.off {
				behind++
				if st := e.status(t, parseID(t, r.Key)).Status; st != order.StatusPending {
					t.Fatalf("order %s, behind the locked one on partition %d, is %s: the partition was not kept in order", r.Key, r.Partition, st)
				}
			}
		}
		if behind == 0 {
			t.Fatal("no payment result landed behind the locked one on its partition; the order check needs one")
		}
		if st := e.status(t, locked.ID).Status; st != order.StatusPending {
			t.Fatalf("locked order is %s while locked", st)
		}

		clk.Advance(6 * time.Minute)
		swept := make(chan error, 1)
		go func() { _, err := e.sys.Order.Sweep(ctx); swept <- err }()
		once = true
		unlock()
		if err := <-swept; err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the locked order PREPARING", func() bool { return e.status(t, locked.ID).Status == order.StatusPreparing })
		for _, o := range others {
			waitFor(t, "the other orders PREPARING", func() bool { return e.status(t, o.ID).Status == order.StatusPreparing })
		}
		e.settled(t)
		noDeadLetters(t, e)
		if n := testutil.CollectAndCount(om.DeadLettered); n != 0 {
			t.Fatalf("%d dead-letter series, want none", n)
		}
	})
}

// failedAttempts sums saga_kafka_records_failed_total over every error code for topic.
func failedAttempts(t *testing.T, reg *prometheus.Registry, topic string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != "saga_kafka_records_failed_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" && l.GetValue() == topic {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func itoa[N int | int64](n N) string { return strconv.FormatInt(int64(n), 10) }

func parseID(t *testing.T, key []byte) int64 {
	t.Helper()
	id, err := strconv.ParseInt(string(key), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSecondPaymentOfPaidOrderIsAnError: a payments-paid with another payment key for an order
// already PREPARING is a second charge, not a redelivery: it goes to the DLT as ORDER_PAID_TWICE
// and counts as a business error, and the order keeps its first payment.
func TestSecondPaymentOfPaidOrderIsAnError(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := start(t, newURL, nil)
		o := e.place(t)
		if err := e.confirm(t, o, "tpk_first"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the order PREPARING", func() bool { return e.status(t, o.ID).Status == order.StatusPreparing })
		cl, err := kgo.NewClient(kafkatest.ClientOpts(e.cluster)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ev := event.PaymentPaid{Envelope: event.NewEnvelope(event.TypePaymentPaid, time.Now()), OrderID: o.ID, PaymentKey: "tpk_second", Amount: o.Amount}
		v, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: event.TopicPaymentsPaid, Key: event.Key(o.ID), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		d := dlt.Decode(kafkatest.Wait(t, e.cluster, event.DLT(event.TopicPaymentsPaid), 1)[0])
		if d.ErrorCode != order.CodeOrderPaidTwice || d.Field("paymentKey") != "tpk_second" {
			t.Fatalf("dead letter %+v, want %s for tpk_second", d, order.CodeOrderPaidTwice)
		}
		if n := testutil.ToFloat64(e.sys.Order.Runtime().Metrics.BusinessErrors.WithLabelValues(order.CodeOrderPaidTwice)); n != 1 {
			t.Fatalf("business errors{%s} = %v, want 1", order.CodeOrderPaidTwice, n)
		}
		if got := e.status(t, o.ID); got.Status != order.StatusPreparing || got.PaymentKey != secret.Mask("tpk_first") {
			t.Fatalf("order after the second payment: %s paid by %s", got.Status, got.PaymentKey)
		}
	})
}

// TestOneOrderPerCoupon: eight orders race for one coupon. Exactly one gets it — stored with the
// discount, its lines, and the coupon USED by it — and every other is refused as a coupon error
// with nothing stored.
func TestOneOrderPerCoupon(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		st, err := order.NewStore(ctx, db, func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
		if err != nil {
			t.Fatal(err)
		}
		c, err := st.IssueCoupon(ctx, "alice", 300, 1000)
		if err != nil {
			t.Fatal(err)
		}
		const racers = 8
		type result struct {
			o   order.Order
			err error
		}
		results := make(chan result, racers)
		start := make(chan struct{})
		for i := range racers {
			go func() {
				<-start
				o, err := st.Create(ctx, order.NewOrder{UserID: "alice", CouponID: &c.ID, Lines: []order.Line{
					{OptionValueID: 7, Quantity: 2, UnitPrice: 500}, {OptionValueID: int64(8 + i), Quantity: 1, UnitPrice: 100}}})
				results <- result{o, err}
			}()
		}
		close(start)
		var won []order.Order
		for range racers {
			r := <-results
			var ce *order.CouponError
			switch {
			case r.err == nil:
				won = append(won, r.o)
			case !errors.As(r.err, &ce):
				t.Fatalf("a losing order failed with %v, want a coupon error", r.err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("%d orders got the coupon, want exactly 1", len(won))
		}
		w := won[0]
		if w.DiscountAmount != 300 || w.Amount != 800 || len(w.Lines) != 2 || w.Lines[0].ID == 0 || w.Lines[0].ID == w.Lines[1].ID {
			t.Fatalf("the winning order = %+v, want 1100 - 300 with two stored lines", w)
		}
		stored, err := st.Get(ctx, w.ID)
		if err != nil || stored.Amount != 800 || len(stored.Lines) != 2 {
			t.Fatalf("stored order = %+v, %v", stored, err)
		}
		got, err := st.Coupon(ctx, c.ID)
		if err != nil || got.Status != order.CouponUsed || got.OrderID == nil || *got.OrderID != w.ID {
			t.Fatalf("coupon = %+v, %v; want USED by order %d", got, err, w.ID)
		}
		var orders, lines int
		if err := db.SQL.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_details)`).Scan(&orders, &lines); err != nil {
			t.Fatal(err)
		}
		if orders != 1 || lines != 2 {
			t.Fatalf("%d orders and %d lines stored, want only the winner's 1 and 2", orders, lines)
		}
	})
}
