package payment_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
)

func TestConfirm(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		o1, o2 := r.place(t, 1), r.place(t, 2)

		// Approved, then repeated with the same key: the same answer, one charge, one event.
		k1 := uuid.NewString()
		req1 := payment.ConfirmRequest{PaymentKey: "pk_1", OrderID: o1.ID, Amount: o1.Amount}
		ok, err := r.client.Confirm(ctx, k1, req1)
		if err != nil || ok.Status != "DONE" || ok.ApprovedAt == "" {
			t.Fatalf("approve: %+v, %v", ok, err)
		}
		again, err := r.client.Confirm(ctx, k1, req1)
		if err != nil || again != ok {
			t.Fatalf("repeat: %+v, %v; want %+v", again, err, ok)
		}

		// Declined, then repeated: the same 402 answer and a single payments-failed.
		k3 := uuid.NewString()
		req2 := payment.ConfirmRequest{PaymentKey: "fail_2", OrderID: o2.ID, Amount: o2.Amount}
		_, err = r.client.Confirm(ctx, k3, req2)
		d := apiErr(t, err)
		if d.Status != http.StatusPaymentRequired || d.Code != paymentgateway.CodeRejectCard {
			t.Fatalf("decline: %+v", d)
		}
		_, err = r.client.Confirm(ctx, k3, req2)
		if d2 := apiErr(t, err); d2.Code != d.Code || d2.Message != d.Message {
			t.Fatalf("repeated decline answered differently: %+v", d2)
		}
		if n := r.pg.Calls(); n != 2 {
			t.Fatalf("the PG was called %d times, want 2 (repeats are answered from storage)", n)
		}

		waitFor(t, "the outbox to drain", func() bool { return unsent(t, r) == 0 })
		paid := kafkatest.Records(t, r.cluster, event.TopicPaymentsPaid)
		failed := kafkatest.Records(t, r.cluster, event.TopicPaymentsFailed)
		if len(paid) != 1 || len(failed) != 1 {
			t.Fatalf("%d payments-paid and %d payments-failed, want 1 and 1", len(paid), len(failed))
		}
		ev, err := event.Decode[event.PaymentPaid](paid[0].Value)
		if err != nil || ev.OrderID != o1.ID || ev.PaymentKey != "pk_1" || ev.Amount != o1.Amount || string(paid[0].Key) != fmt.Sprint(o1.ID) {
			t.Fatalf("payments-paid %s: %+v, %v", paid[0].Value, ev, err)
		}
		fe, err := event.Decode[event.PaymentFailed](failed[0].Value)
		if err != nil || fe.OrderID != o2.ID || fe.ReasonCode != paymentgateway.CodeRejectCard || string(failed[0].Key) != fmt.Sprint(o2.ID) {
			t.Fatalf("payments-failed %s: %+v, %v", failed[0].Value, fe, err)
		}
		// A declined card is a business outcome, not a failure of the system: the canary gate's
		// business-error counter does not move.
		m := r.svc().Runtime().Metrics
		if n := testutil.ToFloat64(m.BusinessOutcomes.WithLabelValues(metrics.OutcomePaymentDeclined)); n != 1 {
			t.Fatalf("outcomes{payment_declined} = %v, want 1", n)
		}
		if n := testutil.ToFloat64(m.BusinessOutcomes.WithLabelValues(metrics.OutcomePaymentApproved)); n != 1 {
			t.Fatalf("outcomes{payment_approved} = %v, want 1", n)
		}
		if n := testutil.CollectAndCount(m.BusinessErrors); n != 0 {
			t.Fatalf("%d business-error series after an approval and a decline, want none", n)
		}
		recs, err := r.client.Payments(ctx, o1.ID)
		if err != nil || len(recs) != 1 || recs[0].PaymentKey != "***" || recs[0].Status != payment.StatusDone {
			t.Fatalf("payments of order %d: %+v, %v", o1.ID, recs, err)
		}
		waitFor(t, "the paid order PREPARING", func() bool { return orderStatus(t, r, o1.ID) == order.StatusPreparing })
		waitFor(t, "the declined order FAILED", func() bool { return orderStatus(t, r, o2.ID) == order.StatusFailed })
	})
}

// TestPGUnavailable: with no usable PG answer nothing is announced, the payment is kept as
// UNKNOWN (not forgotten), and the client's retry with the same key finds out and goes through.
func TestPGUnavailable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		o := r.place(t, 1)
		r.pg.FailNext(3, &paymentgateway.Error{Status: 500, Code: paymentgateway.CodeInternal, Message: "내부 시스템 처리 작업이 실패했습니다."})
		key := uuid.NewString()
		req := payment.ConfirmRequest{PaymentKey: "pk_9", OrderID: o.ID, Amount: o.Amount}
		_, err := r.client.Confirm(ctx, key, req)
		if ae := apiErr(t, err); ae.Status != http.StatusBadGateway || ae.Code != payment.CodePGUnavailable {
			t.Fatalf("PG down: %+v", ae)
		}
		if st := status(t, r, key); st != payment.StatusUnknown {
			t.Fatalf("payment after no usable answer is %q, want %s", st, payment.StatusUnknown)
		}
		if unsent(t, r) != 0 || len(kafkatest.Records(t, r.cluster, event.TopicPaymentsFailed)) != 0 {
			t.Fatal("an unanswered confirm was announced")
		}
		if _, err := r.client.Confirm(ctx, key, req); err != nil {
			t.Fatalf("retry with the same key: %v", err)
		}
		kafkatest.Wait(t, r.cluster, event.TopicPaymentsPaid, 1)
		if n := r.pg.Approved(); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
	})
}

// TestBadRequests: refused with 4xx, nothing stored, nothing sent to the PG or Kafka.
func TestBadRequests(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		o := r.place(t, 1)
		used := uuid.NewString()
		if _, err := r.client.Confirm(ctx, used, payment.ConfirmRequest{PaymentKey: "pk_1", OrderID: o.ID, Amount: o.Amount}); err != nil {
			t.Fatal(err)
		}
		calls := r.pg.Calls()
		v1 := uuid.Must(uuid.NewUUID()).String()
		for _, tc := range []struct {
			name, key, body string
			status          int
			code, msg       string
		}{
			{"no key", "", `{"paymentKey":"p","orderId":1,"amount":1}`, 400, "INVALID_REQUEST", "Idempotency-Key header must be a UUIDv4"},
			{"not v4", v1, `{"paymentKey":"p","orderId":1,"amount":1}`, 400, "INVALID_REQUEST", "UUIDv4"},
			{"malformed", uuid.NewString(), `{"paymentKey":`, 400, "INVALID_REQUEST", "truncated"},
			{"negative amount", uuid.NewString(), `{"paymentKey":"p","orderId":1,"amount":-5}`, 400, "INVALID_REQUEST", "amount must be positive"},
			{"no order", uuid.NewString(), `{"paymentKey":"p","amount":5}`, 400, "INVALID_REQUEST", "orderId"},
			{"huge", uuid.NewString(), `{"paymentKey":"` + strings.Repeat("p", 100_000) + `","orderId":1,"amount":1}`, 413, "BODY_TOO_LARGE", "larger than"},
			{"key reused", used, `{"paymentKey":"pk_other","orderId":2,"amount":10}`, 422, payment.CodeKeyReused, "different payment"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, r.svc().URL()+"/payments/confirm", strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				if tc.key != "" {
					req.Header.Set("Idempotency-Key", tc.key)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+tc.code+`"`) || !strings.Contains(string(b), tc.msg) {
					t.Fatalf("= %d %s, want %d %s mentioning %q", resp.StatusCode, b, tc.status, tc.code, tc.msg)
				}
			})
		}
		if r.pg.Calls() != calls {
			t.Fatal("a refused request reached the PG")
		}
		db := r.svc().Runtime().DB.SQL
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM payments`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("payments rows = %d (%v), want only the first payment", n, err)
		}
		var ob int
		if err := db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&ob); err != nil || ob != 1 {
			t.Fatalf("outbox rows = %d (%v), want 1", ob, err)
		}
	})
}

// TestStaleKeyTakenOver: a request that died while holding its key (before it reached the
// gateway) does not block the key forever; the retry after StaleAfter carries the payment on.
func TestStaleKeyTakenOver(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		o := r.place(t, 1)
		key := uuid.NewString()
		req := payment.ConfirmRequest{PaymentKey: "pk_5", OrderID: o.ID, Amount: o.Amount}
		// A crashed request: claimed, never finished.
		if _, _, err := r.svc().Store().Begin(ctx, key, req, time.Minute); err != nil {
			t.Fatal(err)
		}
		_, err := r.client.Confirm(ctx, key, req)
		if ae := apiErr(t, err); ae.Status != http.StatusConflict || ae.Code != payment.CodeInProgress {
			t.Fatalf("while held: %+v", ae)
		}
		// Make the claim old.
		if _, err := r.svc().Runtime().DB.SQL.ExecContext(ctx, `UPDATE payments SET updated_at = updated_at - $1 WHERE idempotency_key = $2`,
			int64(2*time.Minute/time.Microsecond), key); err != nil {
			t.Fatal(err)
		}
		if _, err := r.client.Confirm(ctx, key, req); err != nil {
			t.Fatalf("after the claim went stale: %v", err)
		}
		if st := status(t, r, key); st != payment.StatusDone {
			t.Fatalf("status %q", st)
		}
		if n := r.pg.Approved(); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
	})
}

// TestResolveAPI: the internal API answers where each order's payment stands, and voiding an
// order without a payment closes it to confirms.
func TestResolveAPI(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		paid, declined, none := r.place(t, 1), r.place(t, 1), r.place(t, 1)
		if _, err := r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "pk_p", OrderID: paid.ID, Amount: paid.Amount}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "fail_d", OrderID: declined.ID, Amount: declined.Amount}); err == nil {
			t.Fatal("a fail_ key was approved")
		}
		got, err := r.client.Resolve(ctx, []int64{paid.ID, declined.ID, none.ID}, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []payment.OrderPayment{
			{OrderID: paid.ID, Outcome: payment.OutcomePaid, PaymentKey: "pk_p", Amount: paid.Amount},
			{OrderID: declined.ID, Outcome: payment.OutcomeDeclined, Reason: paymentgateway.CodeRejectCard},
			{OrderID: none.ID, Outcome: payment.OutcomeNone},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Resolve = %+v\nwant %+v", got, want)
		}
		// Without void a later confirm may still pay the order; with void it may not.
		if _, err := r.client.Resolve(ctx, []int64{none.ID}, true); err != nil {
			t.Fatal(err)
		}
		calls := r.pg.Calls()
		_, err = r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "pk_late", OrderID: none.ID, Amount: none.Amount})
		if ae := apiErr(t, err); ae.Status != http.StatusConflict || ae.Code != payment.CodeOrderNotPayable || !strings.Contains(ae.Message, "nothing was charged") {
			t.Fatalf("confirm after void: %+v", ae)
		}
		if r.pg.Calls() != calls {
			t.Fatal("a confirm of a voided order reached the gateway")
		}
		for _, body := range []string{`{"orderIds":[]}`, `{"orderIds":[0]}`, `{"orderIds":[1],"x":1}`} {
			resp, err := http.Post(r.svc().URL()+"/internal/payments/resolve", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s answered %d, want 400", body, resp.StatusCode)
			}
		}
	})
}

// TestConcurrentConfirmsOfOneOrder: many confirms of one order at once, each with its own key and
// payment key: exactly one charge, every other request told about the existing payment.
func TestConcurrentConfirmsOfOneOrder(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		o := r.place(t, 1)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.client.Confirm(context.Background(), uuid.NewString(),
					payment.ConfirmRequest{PaymentKey: fmt.Sprintf("pk_race_%d", i), OrderID: o.ID, Amount: o.Amount})
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			if ae := apiErr(t, err); ae.Status != http.StatusConflict {
				t.Fatalf("a losing confirm got %+v, want 409", ae)
			}
		}
		if ok != 1 || r.pg.Approved() != 1 {
			t.Fatalf("%d confirms succeeded and the gateway charged %d times, want 1 and 1", ok, r.pg.Approved())
		}
	})
}
