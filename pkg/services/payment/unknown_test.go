package payment_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/saga"
)

// clock is real time plus an offset the test moves forward.
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

// tuned gives payment-service a short gateway timeout and one attempt, so a held gateway answer
// is an unknown outcome at once, and no periodic reconciler unless a test asks for one.
func tuned(pgTimeout, reconcile time.Duration, now func() time.Time) func(*saga.Config) {
	return func(cfg *saga.Config) {
		cfg.Now = now
		cfg.Payment = func(pc *payment.Config) {
			pc.PGTimeout, pc.PGAttempts, pc.ReconcileInterval = pgTimeout, 1, reconcile
		}
	}
}

// TestGatewayAnswersLate: the gateway approves the charge but answers after payment-service's
// timeout. The payment is kept as UNKNOWN — never deleted, nothing announced — and the next
// confirm with the same key reconciles it through the gateway's lookup by orderId: approved,
// announced once, charged once.
func TestGatewayAnswersLate(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL, tuned(300*time.Millisecond, time.Hour, nil))
		ctx := context.Background()
		o := r.place(t, 1)
		key := uuid.NewString()
		req := payment.ConfirmRequest{PaymentKey: "tpk_late", OrderID: o.ID, Amount: o.Amount}
		release := r.pg.HoldAnswers()
		_, err := r.client.Confirm(ctx, key, req)
		if ae := apiErr(t, err); ae.Status != http.StatusBadGateway || ae.Code != payment.CodePGUnavailable {
			t.Fatalf("late gateway: %+v", ae)
		}
		release()
		if r.pg.Approved() != 1 {
			t.Fatalf("the gateway charged %d times, want 1 (it approved, then answered late)", r.pg.Approved())
		}
		if st := status(t, r, key); st != payment.StatusUnknown {
			t.Fatalf("payment after a late answer is %q, want %s (kept for reconciliation)", st, payment.StatusUnknown)
		}
		if unsent(t, r) != 0 || orderStatus(t, r, o.ID) != order.StatusPending {
			t.Fatal("an unknown outcome was announced")
		}
		ok, err := r.client.Confirm(ctx, key, req)
		if err != nil || ok.Status != payment.StatusDone || ok.OrderID != o.ID {
			t.Fatalf("retry with the same key: %+v, %v", ok, err)
		}
		if r.pg.Calls() != 1 || r.pg.Approved() != 1 {
			t.Fatalf("gateway confirms %d, charges %d; the retry must learn the outcome from the lookup, not confirm again", r.pg.Calls(), r.pg.Approved())
		}
		kafkatest.Wait(t, r.cluster, event.TopicPaymentsPaid, 1)
		waitFor(t, "the order PREPARING", func() bool { return orderStatus(t, r, o.ID) == order.StatusPreparing })
		waitFor(t, "the outbox to drain", func() bool { return unsent(t, r) == 0 })
		if n := len(kafkatest.Records(t, r.cluster, event.TopicPaymentsPaid)); n != 1 {
			t.Fatalf("%d payments-paid, want 1", n)
		}
		// A confirm with another key for the now paid order is told so.
		_, err = r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "tpk_again", OrderID: o.ID, Amount: o.Amount})
		if ae := apiErr(t, err); ae.Code != payment.CodeOrderAlreadyPaid {
			t.Fatalf("confirm of a reconciled paid order: %+v", ae)
		}
	})
}

// TestClientHangsUp: the customer's connection drops while the gateway is charging. The gateway
// call is not the request's: it finishes, and its approval is recorded and announced with a
// context of its own, without any retry from the client (and with no reconciler running, so the
// record can only come from the call itself).
func TestClientHangsUp(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL, tuned(10*time.Second, time.Hour, nil))
		o := r.place(t, 1)
		key := uuid.NewString()
		release := r.pg.HoldAnswers()
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := r.client.Confirm(ctx, key, payment.ConfirmRequest{PaymentKey: "tpk_gone", OrderID: o.ID, Amount: o.Amount})
			done <- err
		}()
		waitFor(t, "the gateway to charge and hold its answer", func() bool { return r.pg.Held() == 1 })
		cancel() // the customer goes away
		if err := <-done; err == nil {
			t.Fatal("the abandoned request got an answer")
		}
		release()
		waitFor(t, "the approval recorded", func() bool { return status(t, r, key) == payment.StatusDone })
		kafkatest.Wait(t, r.cluster, event.TopicPaymentsPaid, 1)
		waitFor(t, "the order PREPARING", func() bool { return orderStatus(t, r, o.ID) == order.StatusPreparing })
		if r.pg.Calls() != 1 || r.pg.Approved() != 1 {
			t.Fatalf("gateway confirms %d, charges %d, want 1 and 1", r.pg.Calls(), r.pg.Approved())
		}
	})
}

// TestReconcilerFinishesPayments: payments nobody will retry are finished by the reconciler —
// one whose gateway answer came too late (UNKNOWN), one left IN_PROGRESS by a crash before the
// gateway was called, and one left IN_PROGRESS by a crash after the gateway charged. Each ends
// approved and announced with exactly one charge; an IN_PROGRESS payment waits until it is older
// than StaleAfter, in case its request is still running.
func TestReconcilerFinishesPayments(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		clk := &clock{}
		r := start(t, newURL, tuned(300*time.Millisecond, time.Hour, clk.Now))
		ctx := context.Background()
		svc := r.svc()
		late, crashedBefore, crashedAfter := r.place(t, 1), r.place(t, 1), r.place(t, 1)

		lateKey := uuid.NewString()
		release := r.pg.HoldAnswers()
		if _, err := r.client.Confirm(ctx, lateKey, payment.ConfirmRequest{PaymentKey: "tpk_a", OrderID: late.ID, Amount: late.Amount}); err == nil {
			t.Fatal("a held gateway answer was answered in time")
		}
		release()

		beforeKey := uuid.NewString()
		if _, _, err := svc.Store().Begin(ctx, beforeKey, payment.ConfirmRequest{PaymentKey: "tpk_b", OrderID: crashedBefore.ID, Amount: crashedBefore.Amount}, time.Minute); err != nil {
			t.Fatal(err)
		}
		afterKey := uuid.NewString()
		afterReq := payment.ConfirmRequest{PaymentKey: "tpk_c", OrderID: crashedAfter.ID, Amount: crashedAfter.Amount}
		if _, _, err := svc.Store().Begin(ctx, afterKey, afterReq, time.Minute); err != nil {
			t.Fatal(err)
		}
		gw, err := paymentgateway.NewClient(r.sys.PGURL, saga.PGSecretKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Confirm(ctx, afterKey, paymentgateway.ConfirmRequest{PaymentKey: "tpk_c", OrderID: itoa(crashedAfter.ID), Amount: crashedAfter.Amount}); err != nil {
			t.Fatal(err) // the charge the crashed process never recorded
		}

		n, err := svc.Reconcile(ctx)
		if err != nil || n != 1 {
			t.Fatalf("first reconcile finished %d payments (%v), want the unknown one only", n, err)
		}
		if st := status(t, r, beforeKey) + "," + status(t, r, afterKey); st != "IN_PROGRESS,IN_PROGRESS" {
			t.Fatalf("fresh in-progress payments were touched: %s", st)
		}
		clk.Advance(2 * time.Minute)
		if n, err := svc.Reconcile(ctx); err != nil || n != 2 {
			t.Fatalf("second reconcile finished %d payments (%v), want the two crashed ones", n, err)
		}
		for _, k := range []string{lateKey, beforeKey, afterKey} {
			if st := status(t, r, k); st != payment.StatusDone {
				t.Fatalf("payment %s is %s, want DONE", k, st)
			}
		}
		if r.pg.Approved() != 3 || r.pg.Calls() != 3 {
			t.Fatalf("charges %d, gateway confirms %d; want 3 and 3 (the lookup finds the recorded ones, only the never-sent one is confirmed)",
				r.pg.Approved(), r.pg.Calls())
		}
		kafkatest.Wait(t, r.cluster, event.TopicPaymentsPaid, 3)
		for _, o := range []order.Order{late, crashedBefore, crashedAfter} {
			waitFor(t, "the order PREPARING", func() bool { return orderStatus(t, r, o.ID) == order.StatusPreparing })
		}
		if n := testutil.ToFloat64(svc.Runtime().Metrics.PaymentsUnresolved); n != 0 {
			t.Fatalf("unresolved payments gauge = %v after reconciling, want 0", n)
		}
	})
}

// TestPeriodicReconciler: with no client retry and no sweep, the reconciler running in the
// background records an outcome the gateway answered too late.
func TestPeriodicReconciler(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL, tuned(300*time.Millisecond, 50*time.Millisecond, nil))
		o := r.place(t, 1)
		key := uuid.NewString()
		release := r.pg.HoldAnswers()
		if _, err := r.client.Confirm(context.Background(), key, payment.ConfirmRequest{PaymentKey: "tpk_bg", OrderID: o.ID, Amount: o.Amount}); err == nil {
			t.Fatal("a held gateway answer was answered in time")
		}
		release()
		waitFor(t, "the reconciler to record the approval", func() bool { return status(t, r, key) == payment.StatusDone })
		waitFor(t, "the order PREPARING", func() bool { return orderStatus(t, r, o.ID) == order.StatusPreparing })
		if r.pg.Approved() != 1 {
			t.Fatalf("%d charges, want 1", r.pg.Approved())
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestInterruptedPaymentWaitsForTheGateway: a payment a crashed worker left IN_PROGRESS may or may
// not have been charged; while the gateway cannot be asked, the reconciler neither refuses nor
// confirms it — it stays IN_PROGRESS — and once the gateway answers it is finished, charged once.
func TestInterruptedPaymentWaitsForTheGateway(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		clk := &clock{}
		r := start(t, newURL, tuned(300*time.Millisecond, time.Hour, clk.Now))
		ctx := context.Background()
		o := r.place(t, 1)
		key := uuid.NewString()
		if _, _, err := r.svc().Store().Begin(ctx, key, payment.ConfirmRequest{PaymentKey: "tpk_i", OrderID: o.ID, Amount: o.Amount}, time.Minute); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		r.pg.FailLookups(1, &paymentgateway.Error{Status: 500, Code: paymentgateway.CodeInternal, Message: "내부 시스템 처리 작업이 실패했습니다."})
		if n, err := r.svc().Reconcile(ctx); err != nil || n != 0 {
			t.Fatalf("reconcile without the gateway finished %d payments (%v), want none", n, err)
		}
		if st := status(t, r, key); st != payment.StatusInProgress || r.pg.Calls() != 0 {
			t.Fatalf("payment %s, gateway confirms %d; want it left IN_PROGRESS and nothing sent", st, r.pg.Calls())
		}
		clk.Advance(2 * time.Minute)
		if n, err := r.svc().Reconcile(ctx); err != nil || n != 1 {
			t.Fatalf("reconcile with the gateway back finished %d payments (%v), want 1", n, err)
		}
		if st := status(t, r, key); st != payment.StatusDone || r.pg.Approved() != 1 {
			t.Fatalf("payment %s, charges %d; want DONE and 1", st, r.pg.Approved())
		}
	})
}
