package payment_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/kafkatest"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/saga"
	"github.com/come2us/opsctl/pkg/services/service"
)

// running is the whole SAGA in-process: payment-service checks orders with the real
// order-service, and the only fake is the payment gateway.
type running struct {
	sys     *saga.System
	client  *payment.Client
	pg      *paymentgateway.Server
	cluster *kfake.Cluster
	options []product.Option
}

func start(t *testing.T, newURL dbtest.NewURL, tweak ...func(*saga.Config)) *running {
	t.Helper()
	c := kafkatest.New(t)
	cfg := saga.Config{
		Brokers: c.ListenAddrs(), KafkaOpts: kafkatest.ClientOpts(c),
		OrderDB: newURL(), PaymentDB: newURL(), ProductDB: newURL(), DeliveryTimeout: time.Second,
		Consumer: consumer.Config{Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		Relay:    outbox.Config{PollInterval: 20 * time.Millisecond, RetryBackoff: 10 * time.Millisecond},
	}
	for _, f := range tweak {
		f(&cfg)
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
	opts, err := sys.SeedCatalog(context.Background(), 1, 2, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return &running{sys: sys, client: sys.Payments, pg: sys.PG, cluster: c, options: opts}
}

// place places an order of n units of the first option (1000 each) and returns it.
func (r *running) place(t *testing.T, n int64) order.Order {
	t.Helper()
	o, err := r.sys.Orders.Place(context.Background(), order.PlaceRequest{UserID: "u", Lines: []order.PlaceLine{{OptionValueID: r.options[0].ID, Quantity: n}}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (r *running) svc() *payment.Service { return r.sys.Payment }

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
	s, err := outbox.ReadStats(context.Background(), r.svc().Runtime().DB.SQL)
	if err != nil {
		t.Fatal(err)
	}
	return s.Unsent
}

// status reads the stored status of the payment under key ("" when there is none).
func status(t *testing.T, r *running, key string) string {
	t.Helper()
	var st string
	err := r.svc().Runtime().DB.SQL.QueryRow(`SELECT status FROM payments WHERE idempotency_key = $1`, key).Scan(&st)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return st
}

func orderStatus(t *testing.T, r *running, id int64) string {
	t.Helper()
	o, err := r.sys.Orders.Order(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o.Status
}
