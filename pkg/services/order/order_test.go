package order_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/service"
)

// clock is a controllable clock: real time plus an offset the test moves forward.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type env struct {
	sys     *saga.System
	cluster *kfake.Cluster
	options []product.Option
}

func start(t *testing.T, newURL dbtest.NewURL, tweak func(*saga.Config)) *env {
	t.Helper()
	c := kafkatest.New(t)
	cfg := saga.Config{
		Brokers: c.ListenAddrs(), KafkaOpts: kafkatest.ClientOpts(c),
		OrderDB: newURL(), PaymentDB: newURL(), ProductDB: newURL(), DeliveryTimeout: time.Second,
		Consumer: consumer.Config{Backoff: 10 * time.Millisecond},
		Relay:    outbox.Config{PollInterval: 50 * time.Millisecond, RetryBackoff: 20 * time.Millisecond},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	sys, err := saga.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sys.Close(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	opts, err := sys.SeedCatalog(context.Background(), 1, 2, 1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sys: sys, cluster: c, options: opts}
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBadOrders: each bad request gets a 4xx with a clear JSON error and leaves no trace —
// no order, no line, no coupon change, no event, no stock reserved.
func TestBadOrders(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		e := start(t, newURL, nil)
		ctx := context.Background()
		a, b := e.options[0].ID, e.options[1].ID
		mine, err := e.sys.Orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: "alice", DiscountAmount: 300})
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := e.sys.Orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: "bob", DiscountAmount: 300})
		if err != nil {
			t.Fatal(err)
		}
		big, err := e.sys.Orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: "alice", DiscountAmount: 100, MinOrderAmount: 50_000})
		if err != nil {
			t.Fatal(err)
		}
		// One good order uses a coupon, so "already used" can be tried.
		used, err := e.sys.Orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: "alice", DiscountAmount: 100})
		if err != nil {
			t.Fatal(err)
		}
		good, err := e.sys.Orders.Place(ctx, order.PlaceRequest{UserID: "alice", CouponID: &used.ID, Lines: []order.PlaceLine{{OptionValueID: a, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if good.Status != order.StatusPending || good.Amount != 900 || good.DiscountAmount != 100 || len(good.Lines) != 1 {
			t.Fatalf("good order %+v", good)
		}

		odb := e.sys.Order.Runtime().DB.SQL
		before := func() [4]int {
			return [4]int{count(t, odb, `SELECT COUNT(*) FROM orders`), count(t, odb, `SELECT COUNT(*) FROM order_details`),
				count(t, odb, `SELECT COUNT(*) FROM outbox`), count(t, odb, `SELECT COUNT(*) FROM coupons WHERE status = 'USED'`)}
		}
		snap := before()
		stock, err := e.sys.Product.Store().Stock(ctx)
		if err != nil {
			t.Fatal(err)
		}

		line := func(opt int64, q int) string { return fmt.Sprintf(`{"optionValueId":%d,"quantity":%d}`, opt, q) }
		for _, tc := range []struct {
			name, body string
			status     int
			code, msg  string
		}{
			{"malformed JSON", `{"userId":"alice","lines":[` + line(a, 1), 400, service.CodeInvalidRequest, "truncated"},
			{"not JSON", `userId=alice`, 400, service.CodeInvalidRequest, "not valid JSON"},
			{"negative quantity", `{"userId":"alice","lines":[` + line(a, 1) + `,` + line(b, -1) + `]}`, 400, service.CodeInvalidRequest, "lines[1].quantity must be between 1 and 1000, got -1"},
			{"zero quantity", `{"userId":"alice","lines":[` + line(a, 0) + `]}`, 400, service.CodeInvalidRequest, "lines[0].quantity"},
			{"no lines", `{"userId":"alice","lines":[]}`, 400, service.CodeInvalidRequest, "lines must hold 1 to 100 lines"},
			{"no user", `{"lines":[` + line(a, 1) + `]}`, 400, service.CodeInvalidRequest, "userId"},
			{"unknown field", `{"userId":"alice","lines":[` + line(a, 1) + `],"coupon":5}`, 400, service.CodeInvalidRequest, "unknown field"},
			{"unknown option", `{"userId":"alice","lines":[` + line(a, 1) + `,` + line(987654, 1) + `]}`, 422, order.CodeOptionNotFound, "option 987654 does not exist"},
			{"stock short", `{"userId":"alice","lines":[` + line(b, 6) + `,` + line(b, 5) + `]}`, 409, order.CodeStockShort, "10 in stock, 11 requested"},
			{"coupon of another user", fmt.Sprintf(`{"userId":"alice","couponId":%d,"lines":[%s]}`, theirs.ID, line(a, 1)), 422, order.CodeCouponInvalid, "belongs to another user"},
			{"coupon already used", fmt.Sprintf(`{"userId":"alice","couponId":%d,"lines":[%s]}`, used.ID, line(a, 1)), 422, order.CodeCouponInvalid, "already used"},
			{"coupon minimum", fmt.Sprintf(`{"userId":"alice","couponId":%d,"lines":[%s]}`, big.ID, line(a, 1)), 422, order.CodeCouponInvalid, "below its minimum of 50000"},
			{"unknown coupon", fmt.Sprintf(`{"userId":"alice","couponId":%d,"lines":[%s]}`, 424242, line(a, 1)), 422, order.CodeCouponInvalid, "does not exist"},
			{"huge body", `{"userId":"alice","lines":[` + strings.Repeat(line(a, 1)+",", 3000) + line(a, 1) + `]}`, 413, service.CodeBodyTooLarge, "larger than"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := http.Post(e.sys.Order.URL()+"/orders", "application/json", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body := string(raw)
				if resp.StatusCode != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, tc.msg) {
					t.Fatalf("= %d %s\nwant %d %s mentioning %q", resp.StatusCode, body, tc.status, tc.code, tc.msg)
				}
				if !strings.Contains(body, service.Unchanged) {
					t.Fatalf("the error does not say that nothing changed: %s", body)
				}
			})
		}
		if after := before(); after != snap {
			t.Fatalf("refused requests wrote something: orders/lines/outbox/used coupons %v → %v", snap, after)
		}
		after, err := e.sys.Product.Store().Stock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range stock {
			if after[id] != n {
				t.Fatalf("option %d stock %d → %d after refused requests", id, n, after[id])
			}
		}
		mc, err := e.sys.Orders.Coupon(ctx, mine.ID)
		if err != nil || mc.Status != order.CouponAvailable {
			t.Fatalf("untouched coupon: %+v, %v", mc, err)
		}
		var ae *service.APIError
		if _, err := e.sys.Orders.Order(ctx, 999999); !errors.As(err, &ae) || ae.Status != 404 {
			t.Fatalf("missing order: %v", err)
		}
	})
}

// TestSweeperAndLatePayment: orders PENDING for more than five minutes (moved forward on a
// controllable clock) with no payment are failed by concurrent sweeps — each exactly once,
// coupons restored, stock given back — while a fresh order stays PENDING. A payment attempted
// afterwards for a swept order is refused by payment-service before the gateway: nothing is
// charged, so there is no paid-but-cancelled order to dead-letter.
func TestSweeperAndLatePayment(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		clk := &clock{}
		e := start(t, newURL, func(cfg *saga.Config) {
			cfg.Now = clk.Now
			cfg.Order = func(oc *order.Config) {
				oc.SweepChunk = 2                        // several chunks per sweep
				oc.SweepInterval = 50 * time.Millisecond // the background sweeper races the explicit sweeps
			}
		})
		ctx := context.Background()
		a, b := e.options[0].ID, e.options[1].ID
		var stale []order.Order
		coupons := map[int64]int64{}
		for i := range 5 {
			req := order.PlaceRequest{UserID: fmt.Sprintf("u%d", i), Lines: []order.PlaceLine{{OptionValueID: a, Quantity: 1}, {OptionValueID: b, Quantity: 1}}}
			if i%2 == 0 {
				c, err := e.sys.Orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: req.UserID, DiscountAmount: 50})
				if err != nil {
					t.Fatal(err)
				}
				req.CouponID = &c.ID
			}
			o, err := e.sys.Orders.Place(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			stale = append(stale, o)
			if req.CouponID != nil {
				coupons[o.ID] = *req.CouponID
			}
		}
		clk.Advance(4 * time.Minute)
		if n, err := e.sys.Order.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("sweep at 4 minutes failed %d orders (%v), want none", n, err)
		}
		clk.Advance(2 * time.Minute)
		fresh, err := e.sys.Orders.Place(ctx, order.PlaceRequest{UserID: "late", Lines: []order.PlaceLine{{OptionValueID: a, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.sys.Order.Sweep(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		// A sweep skips the orders another sweep holds and returns; the background sweeper may
		// still be committing the ones it claimed, so the explicit sweeps' return is not the end.
		for _, o := range stale {
			var got order.Order
			var err error
			waitFor(t, fmt.Sprintf("stale order %d to leave PENDING", o.ID), func() bool {
				got, err = e.sys.Orders.Order(ctx, o.ID)
				return err != nil || got.Status != order.StatusPending
			})
			if err != nil || got.Status != order.StatusFailed || got.FailureCode != order.FailurePendingLimit {
				t.Fatalf("stale order %d: %+v, %v", o.ID, got, err)
			}
			if cid, ok := coupons[o.ID]; ok {
				c, err := e.sys.Orders.Coupon(ctx, cid)
				if err != nil || c.Status != order.CouponAvailable || c.RestoredCount != 1 {
					t.Fatalf("coupon of swept order %d: %+v, %v", o.ID, c, err)
				}
			}
		}
		if got, err := e.sys.Orders.Order(ctx, fresh.ID); err != nil || got.Status != order.StatusPending {
			t.Fatalf("fresh order: %+v, %v", got, err)
		}
		// A sweep counts its compensations just after its commit.
		om := e.sys.Order.Runtime().Metrics
		waitFor(t, "order_failed = 5 (each stale order once)", func() bool {
			return testutil.ToFloat64(om.Compensations.WithLabelValues("order_failed")) == 5
		})
		waitFor(t, "coupon_restored = 3", func() bool {
			return testutil.ToFloat64(om.Compensations.WithLabelValues("coupon_restored")) == 3
		})
		if n := count(t, e.sys.Order.Runtime().DB.SQL, `SELECT COUNT(*) FROM outbox WHERE topic = 'orders-failed'`); n != 10 {
			t.Fatalf("%d orders-failed events written, want 10 (one per line)", n)
		}
		// Stock comes back for the swept orders; the fresh order keeps its reservation.
		waitFor(t, "stock restored", func() bool {
			st, err := e.sys.Product.Store().Stock(ctx)
			return err == nil && st[a] == 9 && st[b] == 10
		})

		// Late payments for swept orders are refused before the gateway; nothing is charged or
		// announced.
		for i, pk := range []string{"tpk_late", "fail_late"} {
			late := stale[1+i]
			_, err := e.sys.Payments.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: pk, OrderID: late.ID, Amount: late.Amount})
			var ae *service.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != payment.CodeOrderNotPayable {
				t.Fatalf("late payment %s of swept order %d: %v, want 409 %s", pk, late.ID, err, payment.CodeOrderNotPayable)
			}
			if got, _ := e.sys.Orders.Order(ctx, late.ID); got.Status != order.StatusFailed {
				t.Fatalf("late-paid order is %s, want FAILED", got.Status)
			}
		}
		if e.sys.PG.Calls() != 0 {
			t.Fatalf("the gateway was called %d times for swept orders", e.sys.PG.Calls())
		}
		for _, topic := range []string{event.TopicPaymentsPaid, event.TopicPaymentsFailed} {
			if n := len(kafkatest.Records(t, e.cluster, topic)); n != 0 {
				t.Fatalf("%d records on %s after refused late payments", n, topic)
			}
		}
		if n := testutil.ToFloat64(om.Compensations.WithLabelValues("order_failed")); n != 5 {
			t.Fatalf("order_failed = %v after the late payments, want still 5", n)
		}
	})
}
