package saga_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/service"
)

// env is one in-process SAGA on its own kfake cluster and databases.
type env struct {
	t        testing.TB
	sys      *saga.System
	cluster  *kfake.Cluster
	client   *kgo.Client // for producing and admin calls
	options  []product.Option
	initial  map[int64]int64
	checkout []saga.Checkout
	coupons  map[int64]int64 // order id → coupon id
}

// fast tunes retries and polling for tests: milliseconds instead of seconds.
func fast(cfg *saga.Config) {
	cfg.DeliveryTimeout = time.Second
	cfg.Consumer = consumer.Config{Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	cfg.Relay = outbox.Config{PollInterval: 50 * time.Millisecond, RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond,
		MaxAttempts: 1_000_000} // Kafka outages in these tests outlast 30 fast retries
}

func startSaga(t testing.TB, newURL dbtest.NewURL, tweak ...func(*saga.Config)) *env {
	t.Helper()
	c := kafkatest.New(t)
	cfg := saga.Config{
		Brokers: c.ListenAddrs(), KafkaOpts: kafkatest.ClientOpts(c),
		OrderDB: newURL(), PaymentDB: newURL(), ProductDB: newURL(),
	}
	for _, f := range append([]func(*saga.Config){fast}, tweak...) {
		f(&cfg)
	}
	sys, err := saga.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sys.Close(); err != nil {
			t.Errorf("stopping the services: %v", err)
		}
	})
	cl, err := kgo.NewClient(kafkatest.ClientOpts(c)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e := &env{t: t, sys: sys, cluster: c, client: cl, coupons: map[int64]int64{}}
	e.options, err = sys.SeedCatalog(context.Background(), 3, 3, 1000, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	e.initial = e.stock()
	return e
}

func (e *env) stock() map[int64]int64 {
	e.t.Helper()
	st, err := e.sys.Product.Store().Stock(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// shop runs n checkouts with `workers` in parallel: every third payment is declined, every
// second order uses a freshly issued coupon; orders have 1 to 3 lines.
func (e *env) shop(n, workers int) {
	e.t.Helper()
	ctx := context.Background()
	type job struct {
		i      int
		req    order.PlaceRequest
		couple bool
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if j.couple {
					c, err := e.sys.Orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: j.req.UserID, DiscountAmount: 100})
					if err != nil {
						errs <- err
						continue
					}
					j.req.CouponID = &c.ID
				}
				co, err := e.sys.Checkout(ctx, j.req, j.i%3 == 0)
				if err != nil {
					errs <- fmt.Errorf("checkout %d: %w", j.i, err)
					continue
				}
				mu.Lock()
				e.checkout = append(e.checkout, co)
				if j.req.CouponID != nil {
					e.coupons[co.Order.ID] = *j.req.CouponID
				}
				mu.Unlock()
			}
		}()
	}
	rng := rand.New(rand.NewPCG(7, uint64(len(e.checkout))))
	for i := range n {
		req := order.PlaceRequest{UserID: fmt.Sprintf("user-%d", i%25)}
		for range 1 + rng.IntN(3) {
			req.Lines = append(req.Lines, order.PlaceLine{OptionValueID: e.options[rng.IntN(len(e.options))].ID, Quantity: 1 + rng.Int64N(3)})
		}
		jobs <- job{i: i, req: req, couple: i%2 == 0}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func unsent(t testing.TB, rt *service.Runtime) int {
	t.Helper()
	s, err := outbox.ReadStats(context.Background(), rt.DB.SQL)
	if err != nil {
		t.Fatal(err)
	}
	return s.Unsent
}

// lag is how many records of topics group has not committed yet.
func (e *env) lag(group string, topics ...string) int64 {
	e.t.Helper()
	return kafkatest.Lag(e.t, e.cluster, group, topics...)
}

// quiesce waits until the SAGA has nothing left to do, checking each hop in causal order:
// payment-service's outbox, order-service's consumer, order-service's outbox, product-service's
// consumer.
func (e *env) quiesce() {
	e.t.Helper()
	waitFor(e.t, "the SAGA to settle", func() bool {
		return unsent(e.t, e.sys.Payment.Runtime()) == 0 &&
			e.lag(event.GroupOrderService, event.TopicPaymentsPaid, event.TopicPaymentsFailed) == 0 &&
			unsent(e.t, e.sys.Order.Runtime()) == 0 &&
			e.lag(event.GroupProductService, event.TopicOrdersFailed) == 0
	})
}

func count(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n.Int64
}

// check asserts the end state of a settled SAGA: every order PREPARING or FAILED as its payment
// went, stock conserved (initial = on hand + sold), every failed order's coupon restored exactly
// once and every paid order's coupon still used, every failed line released, no dead letters,
// and compensation metrics counting each step once.
func (e *env) check() {
	e.t.Helper()
	ctx := context.Background()
	odb := e.sys.Order.Runtime().DB.SQL
	pdb := e.sys.Product.Runtime().DB.SQL
	var declined, declinedWithCoupon, failedLines int64
	for _, co := range e.checkout {
		o, err := e.sys.Order.Store().Get(ctx, co.Order.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		want := order.StatusPreparing
		if co.Declined {
			want = order.StatusFailed
			declined++
			failedLines += int64(len(o.Lines))
		}
		if o.Status != want {
			e.t.Fatalf("order %d is %s, want %s (declined=%v)", o.ID, o.Status, want, co.Declined)
		}
		if cid, ok := e.coupons[o.ID]; ok {
			c, err := e.sys.Order.Store().Coupon(ctx, cid)
			if err != nil {
				e.t.Fatal(err)
			}
			switch {
			case co.Declined && (c.Status != order.CouponAvailable || c.OrderID != nil || c.RestoredCount != 1):
				e.t.Fatalf("coupon %d of failed order %d: %+v, want AVAILABLE and restored exactly once", cid, o.ID, c)
			case !co.Declined && (c.Status != order.CouponUsed || c.OrderID == nil || *c.OrderID != o.ID || c.RestoredCount != 0):
				e.t.Fatalf("coupon %d of paid order %d: %+v, want USED by it", cid, o.ID, c)
			}
			if co.Declined {
				declinedWithCoupon++
			}
		}
		rs, err := e.sys.Product.Store().Reservations(ctx, o.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range rs {
			if (co.Declined && r.State != product.StateReleased) || (!co.Declined && r.State != product.StateReserved) {
				e.t.Fatalf("order %d (declined=%v) line %d reservation is %s", o.ID, co.Declined, r.OrderDetailID, r.State)
			}
		}
		if len(rs) != len(o.Lines) {
			e.t.Fatalf("order %d has %d lines but %d reservations", o.ID, len(o.Lines), len(rs))
		}
	}
	if n := count(e.t, odb, `SELECT COUNT(*) FROM orders`); n != int64(len(e.checkout)) {
		e.t.Fatalf("%d orders stored, %d placed", n, len(e.checkout))
	}
	// Stock: initial = on hand + sold, per option; sold from order-service's paid lines.
	sold := map[int64]int64{}
	rows, err := odb.Query(`SELECT d.option_value_id, SUM(d.quantity) FROM order_details d JOIN orders o ON o.id = d.order_id
		WHERE o.status = 'PREPARING' GROUP BY d.option_value_id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, q int64
		if err := rows.Scan(&id, &q); err != nil {
			e.t.Fatal(err)
		}
		sold[id] = q
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	now := e.stock()
	for id, init := range e.initial {
		if init != now[id]+sold[id] {
			e.t.Fatalf("option %d: initial %d != on hand %d + sold %d", id, init, now[id], sold[id])
		}
	}
	if n := count(e.t, pdb, `SELECT COUNT(*) FROM reservations WHERE state = 'VOID'`); n != 0 {
		e.t.Fatalf("%d void reservations; no compensation should have overtaken a reservation", n)
	}
	for _, topic := range event.Topics() {
		if recs := kafkatest.Records(e.t, e.cluster, event.DLT(topic)); len(recs) != 0 {
			e.t.Fatalf("%d dead letters on %s, want none; first: %s", len(recs), event.DLT(topic), recs[0].Value)
		}
	}
	om, pm := e.sys.Order.Runtime().Metrics, e.sys.Product.Runtime().Metrics
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"order_failed", testutil.ToFloat64(om.Compensations.WithLabelValues("order_failed")), float64(declined)},
		{"coupon_restored", testutil.ToFloat64(om.Compensations.WithLabelValues("coupon_restored")), float64(declinedWithCoupon)},
		{"stock_restored", testutil.ToFloat64(pm.Compensations.WithLabelValues("stock_restored")), float64(failedLines)},
	} {
		if c.got != c.want {
			e.t.Fatalf("compensations{step=%q} = %v, want %v", c.name, c.got, c.want)
		}
	}
	if declined == 0 || declined == int64(len(e.checkout)) {
		e.t.Fatalf("workload had %d declines of %d; the test needs both outcomes", declined, len(e.checkout))
	}
	e.t.Logf("%d orders: %d paid, %d failed (%d with coupons, %d lines restored)",
		len(e.checkout), int64(len(e.checkout))-declined, declined, declinedWithCoupon, failedLines)
}
