package payment_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/outbox"
	"github.com/come2us/opsctl/pkg/payment"
	"github.com/come2us/opsctl/pkg/pg"
	"github.com/come2us/opsctl/pkg/service"
)

type running struct {
	svc     *payment.Service
	client  *payment.Client
	pg      *pg.Server
	cluster *kfake.Cluster
}

func start(t *testing.T, url string) *running {
	t.Helper()
	c := kafkatest.New(t)
	pgs := pg.NewServer("test_sk_x", pg.DeclineByPrefix("fail"))
	hs := httptest.NewServer(pgs)
	t.Cleanup(hs.Close)
	svc, err := payment.New(context.Background(), payment.Config{
		Service: service.Options{Name: payment.Name, Addr: "127.0.0.1:0", DatabaseURL: url,
			Kafka: config.Kafka{Brokers: c.ListenAddrs()}, KafkaOpts: kafkatest.ClientOpts(c),
			DeliveryTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)},
		Relay:     outbox.Config{PollInterval: 20 * time.Millisecond, RetryBackoff: 10 * time.Millisecond},
		PGBaseURL: hs.URL, PGSecretKey: "test_sk_x",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &running{svc: svc, client: payment.NewClient(svc.URL(), nil), pg: pgs, cluster: c}
}

func apiErr(t *testing.T, err error) *service.APIError {
	t.Helper()
	var ae *service.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error answer", err)
	}
	return ae
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

func unsent(t *testing.T, r *running) int {
	t.Helper()
	s, err := outbox.ReadStats(context.Background(), r.svc.Runtime().DB.SQL)
	if err != nil {
		t.Fatal(err)
	}
	return s.Unsent
}

func TestConfirm(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL())
		ctx := context.Background()

		// Approved, then repeated with the same key: the same answer, one charge, one event.
		k1 := uuid.NewString()
		ok, err := r.client.Confirm(ctx, k1, payment.ConfirmRequest{PaymentKey: "pk_1", OrderID: 1, Amount: 1000})
		if err != nil || ok.Status != "DONE" || ok.ApprovedAt == "" {
			t.Fatalf("approve: %+v, %v", ok, err)
		}
		again, err := r.client.Confirm(ctx, k1, payment.ConfirmRequest{PaymentKey: "pk_1", OrderID: 1, Amount: 1000})
		if err != nil || again != ok {
			t.Fatalf("repeat: %+v, %v; want %+v", again, err, ok)
		}
		// A new key for the same payment key: the PG says ALREADY_PROCESSED_PAYMENT, which is a
		// success and announced as one — never a failure.
		k2 := uuid.NewString()
		ap, err := r.client.Confirm(ctx, k2, payment.ConfirmRequest{PaymentKey: "pk_1", OrderID: 1, Amount: 1000})
		if err != nil || ap.Status != "DONE" || !ap.AlreadyProcessed {
			t.Fatalf("already processed: %+v, %v", ap, err)
		}

		// Declined, then repeated: the same 402 answer and a single payments-failed.
		k3 := uuid.NewString()
		_, err = r.client.Confirm(ctx, k3, payment.ConfirmRequest{PaymentKey: "fail_2", OrderID: 2, Amount: 500})
		d := apiErr(t, err)
		if d.Status != http.StatusPaymentRequired || d.Code != pg.CodeRejectCard {
			t.Fatalf("decline: %+v", d)
		}
		_, err = r.client.Confirm(ctx, k3, payment.ConfirmRequest{PaymentKey: "fail_2", OrderID: 2, Amount: 500})
		if d2 := apiErr(t, err); d2.Code != d.Code || d2.Message != d.Message {
			t.Fatalf("repeated decline answered differently: %+v", d2)
		}
		if n := r.pg.Calls(); n != 3 {
			t.Fatalf("the PG was called %d times, want 3 (repeats are answered from storage)", n)
		}

		waitFor(t, "the outbox to drain", func() bool { return unsent(t, r) == 0 })
		paid := kafkatest.Records(t, r.cluster, event.TopicPaymentsPaid)
		failed := kafkatest.Records(t, r.cluster, event.TopicPaymentsFailed)
		if len(paid) != 2 || len(failed) != 1 {
			t.Fatalf("%d payments-paid and %d payments-failed, want 2 and 1", len(paid), len(failed))
		}
		for _, rec := range paid {
			ev, err := event.Decode[event.PaymentPaid](rec.Value)
			if err != nil || ev.OrderID != 1 || ev.PaymentKey != "pk_1" || ev.Amount != 1000 || string(rec.Key) != "1" {
				t.Fatalf("payments-paid %s: %+v, %v", rec.Value, ev, err)
			}
		}
		fe, err := event.Decode[event.PaymentFailed](failed[0].Value)
		if err != nil || fe.OrderID != 2 || fe.ReasonCode != pg.CodeRejectCard || string(failed[0].Key) != "2" {
			t.Fatalf("payments-failed %s: %+v, %v", failed[0].Value, fe, err)
		}
		if n := testutil.ToFloat64(r.svc.Runtime().Metrics.BusinessErrors.WithLabelValues(payment.CodePaymentDecline)); n != 1 {
			t.Fatalf("business errors = %v, want 1", n)
		}
		recs, err := r.client.Payments(ctx, 1)
		if err != nil || len(recs) != 2 || recs[0].PaymentKey != "***" || recs[0].Status != payment.StatusDone {
			t.Fatalf("payments of order 1: %+v, %v", recs, err)
		}
	})
}

// TestPGUnavailable: with no usable PG answer nothing is announced and the key is released; the
// client's retry with the same key then goes through.
func TestPGUnavailable(t *testing.T) {
	r := start(t, dbtest.URLs(t, dbtest.SQLite)())
	ctx := context.Background()
	r.pg.FailNext(3, &pg.Error{Status: 500, Code: pg.CodeInternal, Message: "내부 시스템 처리 작업이 실패했습니다."})
	key := uuid.NewString()
	req := payment.ConfirmRequest{PaymentKey: "pk_9", OrderID: 9, Amount: 900}
	_, err := r.client.Confirm(ctx, key, req)
	if ae := apiErr(t, err); ae.Status != http.StatusBadGateway || ae.Code != payment.CodePGUnavailable {
		t.Fatalf("PG down: %+v", ae)
	}
	if unsent(t, r) != 0 || len(kafkatest.Records(t, r.cluster, event.TopicPaymentsFailed)) != 0 {
		t.Fatal("an unanswered confirm was announced")
	}
	if _, err := r.client.Confirm(ctx, key, req); err != nil {
		t.Fatalf("retry with the same key: %v", err)
	}
	kafkatest.Wait(t, r.cluster, event.TopicPaymentsPaid, 1)
}

// TestBadRequests: refused with 4xx, nothing stored, nothing sent to the PG or Kafka.
func TestBadRequests(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		r := start(t, newURL())
		ctx := context.Background()
		used := uuid.NewString()
		if _, err := r.client.Confirm(ctx, used, payment.ConfirmRequest{PaymentKey: "pk_1", OrderID: 1, Amount: 10}); err != nil {
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
				req, _ := http.NewRequest(http.MethodPost, r.svc.URL()+"/payments/confirm", strings.NewReader(tc.body))
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
		var n int
		if err := r.svc.Runtime().DB.SQL.QueryRow(`SELECT COUNT(*) FROM payments`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("payments rows = %d (%v), want only the first payment", n, err)
		}
		var ob int
		if err := r.svc.Runtime().DB.SQL.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&ob); err != nil || ob != 1 {
			t.Fatalf("outbox rows = %d (%v), want 1", ob, err)
		}
	})
}

// TestStaleKeyTakenOver: a request that died while holding its key does not block the key forever.
func TestStaleKeyTakenOver(t *testing.T) {
	r := start(t, dbtest.URLs(t, dbtest.SQLite)())
	ctx := context.Background()
	key := uuid.NewString()
	req := payment.ConfirmRequest{PaymentKey: "pk_5", OrderID: 5, Amount: 50}
	// A crashed request: claimed, never finished.
	if _, err := r.svc.Store().Begin(ctx, key, req, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := r.client.Confirm(ctx, key, req)
	if ae := apiErr(t, err); ae.Status != http.StatusConflict || ae.Code != payment.CodeInProgress {
		t.Fatalf("while held: %+v", ae)
	}
	// Make the claim old.
	if _, err := r.svc.Runtime().DB.SQL.ExecContext(ctx, `UPDATE payments SET updated_at = updated_at - $1 WHERE idempotency_key = $2`,
		int64(2*time.Minute/time.Microsecond), key); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.Confirm(ctx, key, req); err != nil {
		t.Fatalf("after the claim went stale: %v", err)
	}
	var status string
	if err := r.svc.Runtime().DB.SQL.QueryRow(`SELECT status FROM payments WHERE idempotency_key = $1`, key).Scan(&status); err != nil || status != payment.StatusDone {
		t.Fatalf("status %q, %v", status, err)
	}
}
