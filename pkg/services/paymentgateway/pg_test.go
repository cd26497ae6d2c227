package paymentgateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/services/paymentgateway"
)

func newPG(t *testing.T) (*paymentgateway.Server, *httptest.Server) {
	t.Helper()
	s := paymentgateway.NewServer("test_sk_secret", nil)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

func client(t *testing.T, url, key string) *paymentgateway.Client {
	t.Helper()
	c, err := paymentgateway.NewClient(url, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pgErr(t *testing.T, err error) *paymentgateway.Error {
	t.Helper()
	var pe *paymentgateway.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a PG answer", err)
	}
	return pe
}

func TestConfirm(t *testing.T) {
	srv, hs := newPG(t)
	c := client(t, hs.URL, "test_sk_secret")
	ctx := context.Background()
	req := paymentgateway.ConfirmRequest{PaymentKey: "pk_1", OrderID: "1", Amount: 1000}

	p, err := c.Confirm(ctx, "key-1", req)
	if err != nil || p.Status != "DONE" || p.TotalAmount != 1000 || p.PaymentKey != "pk_1" {
		t.Fatalf("approve: %+v, %v", p, err)
	}
	// Same key: the first answer again, no second approval.
	p2, err := c.Confirm(ctx, "key-1", req)
	if err != nil || *p2 != *p {
		t.Fatalf("repeat: %+v, %v", p2, err)
	}
	// Same key, different request: refused.
	_, err = c.Confirm(ctx, "key-1", paymentgateway.ConfirmRequest{PaymentKey: "pk_1", OrderID: "1", Amount: 5})
	if pe := pgErr(t, err); pe.Status != http.StatusUnprocessableEntity || pe.Declined() {
		t.Fatalf("key reuse: %+v", pe)
	}
	// A new key for a confirmed payment: ALREADY_PROCESSED_PAYMENT, which is not a decline.
	_, err = c.Confirm(ctx, "key-2", req)
	if pe := pgErr(t, err); !pe.AlreadyProcessed() || pe.Declined() {
		t.Fatalf("second confirm: %+v", pe)
	}
	// Scripted decline.
	_, err = c.Confirm(ctx, "key-3", paymentgateway.ConfirmRequest{PaymentKey: "fail_1", OrderID: "2", Amount: 1000})
	if pe := pgErr(t, err); pe.Code != paymentgateway.CodeRejectCard || !pe.Declined() || pe.Status != http.StatusForbidden {
		t.Fatalf("decline: %+v", pe)
	}
	// Temporary PG failure: not a decline, and not remembered under the key.
	srv.FailNext(1, &paymentgateway.Error{Status: http.StatusInternalServerError, Code: paymentgateway.CodeInternal, Message: "내부 시스템 처리 작업이 실패했습니다."})
	_, err = c.Confirm(ctx, "key-4", paymentgateway.ConfirmRequest{PaymentKey: "pk_4", OrderID: "4", Amount: 1})
	if pe := pgErr(t, err); pe.Declined() || pe.Status != 500 {
		t.Fatalf("temporary failure: %+v", pe)
	}
	if _, err := c.Confirm(ctx, "key-4", paymentgateway.ConfirmRequest{PaymentKey: "pk_4", OrderID: "4", Amount: 1}); err != nil {
		t.Fatalf("retry after a temporary failure: %v", err)
	}
	if srv.Approved() != 2 {
		t.Fatalf("approved %d payments, want 2", srv.Approved())
	}
}

func TestConfirmAuthAndTransport(t *testing.T) {
	_, hs := newPG(t)
	_, err := client(t, hs.URL, "wrong").Confirm(context.Background(), "k", paymentgateway.ConfirmRequest{PaymentKey: "p", OrderID: "1", Amount: 1})
	if pe := pgErr(t, err); pe.Code != paymentgateway.CodeUnauthorizedKey || pe.Declined() {
		t.Fatalf("bad key: %+v", pe)
	}
	// A non-JSON error body still yields a PG error with the status.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer plain.Close()
	_, err = client(t, plain.URL, "k").Confirm(context.Background(), "k", paymentgateway.ConfirmRequest{PaymentKey: "p", OrderID: "1", Amount: 1})
	if pe := pgErr(t, err); pe.Code != "HTTP_502" || pe.Declined() {
		t.Fatalf("plain 502: %+v", pe)
	}
	// No answer at all: a transport error, not a PG answer.
	hs.Close()
	_, err = client(t, hs.URL, "test_sk_secret").Confirm(context.Background(), "k", paymentgateway.ConfirmRequest{PaymentKey: "p", OrderID: "1", Amount: 1})
	var pe *paymentgateway.Error
	if err == nil || errors.As(err, &pe) {
		t.Fatalf("closed server: %v", err)
	}
}

func TestDeclined(t *testing.T) {
	for _, tc := range []struct {
		e    paymentgateway.Error
		want bool
	}{
		{paymentgateway.Error{Status: 403, Code: "REJECT_CARD_PAYMENT"}, true},
		{paymentgateway.Error{Status: 400, Code: "EXCEED_MAX_DAILY_PAYMENT_COUNT"}, true},
		{paymentgateway.Error{Status: 400, Code: paymentgateway.CodeAlreadyProcessed}, false},
		{paymentgateway.Error{Status: 400, Code: paymentgateway.CodeProviderError}, false},
		{paymentgateway.Error{Status: 401, Code: paymentgateway.CodeUnauthorizedKey}, false},
		{paymentgateway.Error{Status: 409, Code: paymentgateway.CodeIdempotentProcessing}, false},
		{paymentgateway.Error{Status: 429, Code: "TOO_MANY_REQUESTS"}, false},
		{paymentgateway.Error{Status: 500, Code: paymentgateway.CodeInternal}, false},
	} {
		if got := tc.e.Declined(); got != tc.want {
			t.Errorf("%s/%d Declined() = %v, want %v", tc.e.Code, tc.e.Status, got, tc.want)
		}
	}
}

func TestNewClientRequiresKey(t *testing.T) {
	if _, err := paymentgateway.NewClient("http://x", "", nil); err == nil {
		t.Fatal("a client without a secret key was created")
	}
}

// TestLookup: Toss' lookup by orderId shows an approved payment as DONE and a declined one as
// ABORTED, and an order without a payment as ErrNoPayment.
func TestLookup(t *testing.T) {
	_, hs := newPG(t)
	c := client(t, hs.URL, "test_sk_secret")
	ctx := context.Background()
	if _, err := c.Confirm(ctx, "key-1", paymentgateway.ConfirmRequest{PaymentKey: "pk_1", OrderID: "17", Amount: 1000}); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Confirm(ctx, "key-2", paymentgateway.ConfirmRequest{PaymentKey: "fail_2", OrderID: "18", Amount: 500})
	p, err := c.Lookup(ctx, "17")
	if err != nil || p.PaymentKey != "pk_1" || p.Status != paymentgateway.StatusDone || !p.Charged() || p.TotalAmount != 1000 {
		t.Fatalf("lookup of a paid order: %+v, %v", p, err)
	}
	p, err = c.Lookup(ctx, "18")
	if err != nil || p.Status != paymentgateway.StatusAborted || p.Charged() || !p.Failed() {
		t.Fatalf("lookup of a declined order: %+v, %v", p, err)
	}
	if _, err := c.Lookup(ctx, "19"); !errors.Is(err, paymentgateway.ErrNoPayment) {
		t.Fatalf("lookup of an order without payment: %v", err)
	}
	if _, err := client(t, hs.URL, "wrong").Lookup(ctx, "17"); err == nil || errors.Is(err, paymentgateway.ErrNoPayment) {
		t.Fatalf("lookup with a wrong key: %v", err)
	}
}

// TestHoldAnswers: while answers are held, a confirm is charged at once but answered only when
// released; a caller that gives up first gets nothing, and the charge stands.
func TestHoldAnswers(t *testing.T) {
	srv, hs := newPG(t)
	c := client(t, hs.URL, "test_sk_secret")
	release := srv.HoldAnswers()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Confirm(ctx, "key-1", paymentgateway.ConfirmRequest{PaymentKey: "pk_1", OrderID: "1", Amount: 10})
		done <- err
	}()
	waitFor(t, func() bool { return srv.Held() == 1 })
	if srv.Approved() != 1 {
		t.Fatalf("approved %d before the answer, want 1", srv.Approved())
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a caller that gave up got an answer")
	}
	waitFor(t, func() bool { return srv.Held() == 0 })
	release()
	p, err := c.Lookup(context.Background(), "1")
	if err != nil || !p.Charged() {
		t.Fatalf("after the caller left: %+v, %v", p, err)
	}
	if _, err := c.Confirm(context.Background(), "key-2", paymentgateway.ConfirmRequest{PaymentKey: "pk_2", OrderID: "2", Amount: 10}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
