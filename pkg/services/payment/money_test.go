package payment_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/store"
)

// TestDoubleCharge: an order confirmed twice, each time with a new Idempotency-Key and a new
// paymentKey, is charged once. The second confirm gets 409 naming the existing payment without
// reaching the gateway, one payments-paid goes out, and the database itself refuses a second
// payment of the order.
func TestDoubleCharge(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		o := r.place(t, 1)
		first := uuid.NewString()
		if _, err := r.client.Confirm(ctx, first, payment.ConfirmRequest{PaymentKey: "tpk_first_1234", OrderID: o.ID, Amount: o.Amount}); err != nil {
			t.Fatal(err)
		}
		calls := r.pg.Calls()
		_, err := r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "tpk_second_5678", OrderID: o.ID, Amount: o.Amount})
		if err == nil {
			t.Fatalf("the second confirm of order %d was approved; the gateway charged %d times", o.ID, r.pg.Approved())
		}
		ae := apiErr(t, err)
		if ae.Status != http.StatusConflict || ae.Code != "ORDER_ALREADY_PAID" || !strings.Contains(ae.Message, first) ||
			!strings.Contains(ae.Message, "paymentKey tpk***") || !strings.Contains(ae.Message, "nothing was charged") {
			t.Fatalf("second confirm: %+v; want 409 ORDER_ALREADY_PAID naming payment %s and saying nothing was charged", ae, first)
		}
		if r.pg.Calls() != calls || r.pg.Approved() != 1 {
			t.Fatalf("gateway calls %d → %d, charges %d; the second confirm must not reach the gateway", calls, r.pg.Calls(), r.pg.Approved())
		}
		waitFor(t, "the outbox to drain", func() bool { return unsent(t, r) == 0 })
		if n := len(kafkatest.Records(t, r.cluster, event.TopicPaymentsPaid)); n != 1 {
			t.Fatalf("%d payments-paid records, want 1", n)
		}
		waitFor(t, "the order PREPARING", func() bool { return orderStatus(t, r, o.ID) == order.StatusPreparing })

		// The rule lives in the database: a second payment of the order that may charge cannot be
		// stored, whichever code path tries.
		_, err = r.svc().Runtime().DB.SQL.ExecContext(ctx, `INSERT INTO payments (idempotency_key, payment_key, order_id, amount, status, created_at, updated_at)
			VALUES ($1, 'tpk_third', $2, $3, 'IN_PROGRESS', 1, 1)`, uuid.NewString(), o.ID, o.Amount)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("a second in-progress payment of order %d was stored (err %v); want a unique-constraint violation", o.ID, err)
		}
	})
}

// TestAmountCheckedBeforeGateway: a confirm of 1 for an order of 1000 is refused before the
// gateway is called — nothing charged, nothing announced, the order still payable — and counts
// as a business error; the right amount then goes through.
func TestAmountCheckedBeforeGateway(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL)
		ctx := context.Background()
		o := r.place(t, 1)
		if o.Amount != 1000 {
			t.Fatalf("order amount %d, want 1000", o.Amount)
		}
		_, err := r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "tpk_cheap", OrderID: o.ID, Amount: 1})
		if err == nil {
			t.Fatalf("a confirm of 1 for an order of 1000 was approved; the gateway charged %d times", r.pg.Approved())
		}
		ae := apiErr(t, err)
		if ae.Status != http.StatusUnprocessableEntity || ae.Code != "PAYMENT_AMOUNT_MISMATCH" ||
			!strings.Contains(ae.Message, "1000") || !strings.Contains(ae.Message, "nothing was charged") {
			t.Fatalf("wrong amount: %+v", ae)
		}
		if r.pg.Calls() != 0 {
			t.Fatalf("the gateway was called %d times for a wrong amount", r.pg.Calls())
		}
		var rows int
		if err := r.svc().Runtime().DB.SQL.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&rows); err != nil || rows != 0 {
			t.Fatalf("outbox rows = %d (%v) after a refused confirm, want 0", rows, err)
		}
		if n := testutil.ToFloat64(r.svc().Runtime().Metrics.BusinessErrors.WithLabelValues("PAYMENT_AMOUNT_MISMATCH")); n != 1 {
			t.Fatalf("business errors{PAYMENT_AMOUNT_MISMATCH} = %v, want 1", n)
		}
		if st := orderStatus(t, r, o.ID); st != order.StatusPending {
			t.Fatalf("order is %s after a refused confirm, want PENDING", st)
		}
		// The refusal holds nothing: the customer pays the right amount with a new key.
		ok, err := r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "tpk_right", OrderID: o.ID, Amount: o.Amount})
		if err != nil || ok.Status != "DONE" || r.pg.Approved() != 1 {
			t.Fatalf("right amount: %+v, %v; charges %d", ok, err, r.pg.Approved())
		}
		// Unknown orders are refused the same way.
		_, err = r.client.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: "tpk_ghost", OrderID: o.ID + 1000, Amount: 5})
		if ae := apiErr(t, err); ae.Status != http.StatusNotFound || !strings.Contains(ae.Message, fmt.Sprint(o.ID+1000)) {
			t.Fatalf("unknown order: %+v", ae)
		}
		if r.pg.Calls() != 1 {
			t.Fatalf("gateway calls = %d, want 1", r.pg.Calls())
		}
	})
}

// TestFinishAfterLostClaim: a worker whose claim was taken over (the payment changed after it
// claimed it) records nothing — neither the result nor the event announcing it — while the
// worker holding the claim records both, together.
func TestFinishAfterLostClaim(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		st, err := payment.NewStore(ctx, db, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		claim := func(key string, order int64) *payment.Claim {
			t.Helper()
			_, c, err := st.Begin(ctx, key, payment.ConfirmRequest{PaymentKey: "tpk_" + key, OrderID: order, Amount: 1000}, time.Minute)
			if err != nil || c == nil {
				t.Fatalf("Begin(%s) = %v, %v; want a claim", key, c, err)
			}
			return c
		}
		ev := &outbox.Message{Topic: "payments-paid", Key: []byte("1"), Value: []byte(`{"orderId":1}`)}
		answer := payment.Answer{Status: 200, Body: []byte(`{"status":"DONE"}`)}
		scalar := func(q string, args ...any) (v string) {
			t.Helper()
			if err := db.SQL.QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return v
		}

		lost := claim("k1", 1)
		if _, err := db.SQL.ExecContext(ctx, `UPDATE payments SET updated_at = updated_at + 1 WHERE idempotency_key = 'k1'`); err != nil {
			t.Fatal(err)
		}
		if err := st.Finish(ctx, lost, payment.StatusDone, "", answer, ev); err == nil || !strings.Contains(err.Error(), "taken over") {
			t.Fatalf("Finish after the claim was taken over = %v, want an error saying so", err)
		}
		if got := scalar(`SELECT status FROM payments WHERE idempotency_key = 'k1'`); got != payment.StatusInProgress {
			t.Fatalf("payment k1 is %s after a lost Finish, want it untouched (%s)", got, payment.StatusInProgress)
		}
		if got := scalar(`SELECT COUNT(*) FROM outbox`); got != "0" {
			t.Fatalf("%s outbox rows after a lost Finish, want none", got)
		}

		held := claim("k2", 2)
		if err := st.Finish(ctx, held, payment.StatusDone, "", answer, ev); err != nil {
			t.Fatalf("Finish with the claim held: %v", err)
		}
		if got := scalar(`SELECT status FROM payments WHERE idempotency_key = 'k2'`); got != payment.StatusDone {
			t.Fatalf("payment k2 is %s, want %s", got, payment.StatusDone)
		}
		if got := scalar(`SELECT COUNT(*) FROM outbox WHERE topic = 'payments-paid'`); got != "1" {
			t.Fatalf("%s payments-paid rows in the outbox, want 1", got)
		}
	})
}
