package traffic_test

import (
	"context"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/store"
	"github.com/come2us/opsctl/pkg/sim/traffic"
)

// TestFaultWindowsMakeEveryDeadLetter runs the generator against the whole SAGA (SQLite, kfake),
// opens each fault until it produced a dead letter, runs one late payment (refused: the sweeper
// cancelled its order), and checks that each dead letter carries the failing service's own code
// — and that ordinary journeys paid or were declined. (The windows are switched by hand here so that a slow machine cannot close one
// before a record met it; TestWindowsOpenAndClose covers the schedule.)
func TestFaultWindowsMakeEveryDeadLetter(t *testing.T) {
	c := kafkatest.New(t)
	newURL := dbtest.URLs(t, dbtest.SQLite)
	faults := &traffic.Faults{}
	sys, err := saga.Start(context.Background(), saga.Config{
		Brokers: c.ListenAddrs(), KafkaOpts: kafkatest.ClientOpts(c),
		OrderDB: newURL(), PaymentDB: newURL(), ProductDB: newURL(),
		Decide:          paymentgateway.DeclineByPrefix(traffic.DeclinePrefix),
		DeliveryTimeout: time.Second,
		Consumer:        consumer.Config{Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		Relay:           outbox.Config{PollInterval: 50 * time.Millisecond},
		Order: func(oc *order.Config) {
			oc.Consumer.Fault = faults.OrderHook
			oc.PendingTimeout, oc.SweepInterval = time.Second, 200*time.Millisecond
		},
		Product: func(pc *product.Config) { pc.Consumer.Fault = faults.ProductHook },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sys.Close(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	opts, err := sys.SeedCatalog(context.Background(), 2, 2, 1000, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, o := range opts {
		ids = append(ids, o.ID)
	}
	urls := map[string]string{"order-service": sys.Order.URL(), "payment-service": sys.Payment.URL(), "product-service": sys.Product.URL()}
	gen, err := traffic.New(traffic.Config{
		URL:     func(_, app string) string { return urls[app] },
		Options: ids, Rate: 40, DeclineRatio: 0.5, CouponRatio: 0.3, Seed: 1,
		LatePayments: time.Hour, LateWait: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gen.Run(ctx) }()

	want := []struct {
		fault               traffic.Fault
		topic, source, code string
	}{
		{traffic.FaultProductRestore, event.DLT(event.TopicOrdersFailed), product.Name, store.CodeLockTimeout},
		{traffic.FaultOrderPayments, event.DLT(event.TopicPaymentsFailed), order.Name, store.CodeUnavailable},
	}
	for _, w := range want {
		if w.fault != "" {
			_ = faults.Set(w.fault, true)
		}
		rec := kafkatest.Wait(t, c, w.topic, 1)[0]
		if w.fault != "" {
			_ = faults.Set(w.fault, false)
		}
		d := dlt.Decode(rec)
		if d.Format != dlt.FormatSaga || d.ErrorSource != w.source || d.ErrorCode != w.code {
			t.Fatalf("%s: dead letter from %s with %s (format %s), want %s with %s", w.topic, d.ErrorSource, d.ErrorCode, d.Format, w.source, w.code)
		}
	}
	waitStats(t, gen, func(s traffic.Stats) bool { return s.LateRefused == 1 && s.Paid > 0 && s.Declined > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := gen.Stats()
	if st.Failed != 0 {
		t.Fatalf("%d journeys failed outright (stats %+v)", st.Failed, st)
	}
	t.Logf("stats %+v", st)
}

// TestWindowsOpenAndClose: a recurring window opens, closes and opens again, and Run closes it
// when it returns.
func TestWindowsOpenAndClose(t *testing.T) {
	faults := &traffic.Faults{}
	gen, err := traffic.New(traffic.Config{
		URL: func(string, string) string { return "http://127.0.0.1:1" }, Options: []int64{1}, Rate: 0.001, Faults: faults,
		Windows: []traffic.Window{{Fault: traffic.FaultOrderPayments, Length: 20 * time.Millisecond, Every: 40 * time.Millisecond}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gen.Run(ctx) }()
	var transitions int
	last := false
	deadline := time.Now().Add(20 * time.Second)
	for transitions < 3 && time.Now().Before(deadline) {
		if now := faults.Active(traffic.FaultOrderPayments); now != last {
			transitions++
			last = now
		}
		time.Sleep(time.Millisecond)
	}
	if transitions < 3 {
		t.Fatalf("saw %d open/close transitions, want at least 3", transitions)
	}
	if faults.Active(traffic.FaultProductRestore) {
		t.Fatal("a window nobody scheduled is open")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if faults.Active(traffic.FaultOrderPayments) {
		t.Fatal("the window is still open after Run returned")
	}
}

func waitStats(t *testing.T, g *traffic.Generator, ok func(traffic.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok(g.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v never got there", g.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigValidation(t *testing.T) {
	url := func(string, string) string { return "http://127.0.0.1:1" }
	tests := []struct {
		name string
		cfg  traffic.Config
	}{
		{"no URL", traffic.Config{Options: []int64{1}}},
		{"no catalogue", traffic.Config{URL: url}},
		{"decline ratio above 1", traffic.Config{URL: url, Options: []int64{1}, DeclineRatio: 1.5}},
		{"negative rate", traffic.Config{URL: url, Options: []int64{1}, Rate: -1}},
		{"windows without faults", traffic.Config{URL: url, Options: []int64{1}, Windows: []traffic.Window{{Fault: traffic.FaultOrderPayments, Length: time.Second}}}},
		{"unknown fault", traffic.Config{URL: url, Options: []int64{1}, Faults: &traffic.Faults{}, Windows: []traffic.Window{{Fault: "disk-full", Length: time.Second}}}},
		{"period shorter than window", traffic.Config{URL: url, Options: []int64{1}, Faults: &traffic.Faults{},
			Windows: []traffic.Window{{Fault: traffic.FaultOrderPayments, Length: time.Minute, Every: time.Second}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := traffic.New(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
