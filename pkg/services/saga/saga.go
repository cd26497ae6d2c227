// Package saga runs the whole SAGA — product-, payment- and order-service plus an in-memory PG —
// inside one process against one Kafka cluster. The end-to-end tests, the benchmark and
// `opsctl sandbox` use it; in production each service runs alone from cmd/services/<name>.
//
// Each service keeps its own database, as in production, and talks to the others only through
// HTTP and Kafka.
package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/services/service"
)

// PGSecretKey is the secret key the in-memory PG accepts.
const PGSecretKey = "test_sk_sandbox"

// Config configures a System.
type Config struct {
	// Brokers is the Kafka cluster (a kfake cluster's ListenAddrs in tests and the sandbox).
	Brokers []string
	// KafkaOpts are extra client options for every service (e.g. kafkatest.ClientOpts).
	KafkaOpts []kgo.Opt
	// OrderDB, PaymentDB and ProductDB are the services' database URLs (see store.Open).
	OrderDB, PaymentDB, ProductDB string
	// Logger receives every service's logs (each line carries its service); discarded when nil.
	Logger *slog.Logger
	// Decide scripts the PG; paymentgateway.DeclineByPrefix("fail") when nil.
	Decide paymentgateway.Decision
	// Now is every service's clock; time.Now when nil.
	Now func() time.Time
	// DeliveryTimeout bounds one publish (default 30s).
	DeliveryTimeout time.Duration
	// Consumer and Relay tune every service's consumer and outbox relay (zero values: defaults).
	Consumer consumer.Config
	Relay    outbox.Config
	// Order, Payment and Product adjust a service's configuration after the defaults are set.
	Order   func(*order.Config)
	Payment func(*payment.Config)
	Product func(*product.Config)
}

// System is the running SAGA.
type System struct {
	Product *product.Service
	Payment *payment.Service
	Order   *order.Service
	// PG is the in-memory payment gateway payment-service calls, at PGURL.
	PG    *paymentgateway.Server
	PGURL string

	// Clients for the three HTTP APIs.
	Products *productapi.Client
	Payments *payment.Client
	Orders   *orderapi.Client

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
	pgSrv   *http.Server
	closers []func(context.Context)
	stopped bool
}

// Start starts the PG, then product-, payment- and order-service, and returns once all serve.
// Stop them with Close.
func Start(ctx context.Context, cfg Config) (*System, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &System{cancel: cancel, PG: paymentgateway.NewServer(PGSecretKey, cfg.Decide)}
	ok := false
	defer func() {
		if !ok {
			_ = s.close(ctx)
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("saga: PG listener: %w", err)
	}
	s.pgSrv = &http.Server{Handler: s.PG, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.pgSrv.Serve(ln) }()
	pgURL := "http://" + ln.Addr().String()
	s.PGURL = pgURL

	opts := func(name, db string) service.Options {
		return service.Options{
			Name: name, Addr: "127.0.0.1:0", DatabaseURL: db,
			Kafka: kafka.Config{Brokers: cfg.Brokers}, KafkaOpts: cfg.KafkaOpts,
			DeliveryTimeout: cfg.DeliveryTimeout, Logger: cfg.Logger.With("service", name),
			ShutdownTimeout: 20 * time.Second,
		}
	}

	pc := product.Config{Service: opts(product.Name, cfg.ProductDB), Consumer: cfg.Consumer, Now: cfg.Now}
	if cfg.Product != nil {
		cfg.Product(&pc)
	}
	if s.Product, err = product.New(ctx, pc); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Product.Runtime().Close)
	s.run(runCtx, product.Name, s.Product.Run)

	// payment-service checks orders with order-service, which starts after it (it asks
	// payment-service in turn): the check is bound to order-service once that is up.
	orders := &laterOrders{}
	yc := payment.Config{Service: opts(payment.Name, cfg.PaymentDB), Relay: cfg.Relay, PGBaseURL: pgURL, PGSecretKey: PGSecretKey,
		Orders: orders, Now: cfg.Now}
	if cfg.Payment != nil {
		cfg.Payment(&yc)
	}
	if s.Payment, err = payment.New(ctx, yc); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Payment.Runtime().Close)
	s.run(runCtx, payment.Name, s.Payment.Run)

	oc := order.Config{Service: opts(order.Name, cfg.OrderDB), Consumer: cfg.Consumer, Relay: cfg.Relay,
		ProductURL: s.Product.URL(), PaymentURL: s.Payment.URL(), Now: cfg.Now}
	if cfg.Order != nil {
		cfg.Order(&oc)
	}
	if s.Order, err = order.New(ctx, oc); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Order.Runtime().Close)
	s.run(runCtx, order.Name, s.Order.Run)

	orders.bind(payment.NewOrderClient(s.Order.URL(), nil))

	s.Products = productapi.NewClient(s.Product.URL(), nil)
	s.Payments = payment.NewClient(s.Payment.URL(), nil)
	s.Orders = orderapi.NewClient(s.Order.URL(), nil)
	ok = true
	return s, nil
}

func (s *System) run(ctx context.Context, name string, fn func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := fn(ctx); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
		}
	}()
}

// Close shuts every service down gracefully and returns what failed on the way.
func (s *System) Close() error {
	// No caller's context to keep: the services run detached from Start's already (runCtx).
	return s.close(context.Background())
}

// close is Close for a caller with a context (a Start that failed): it runs even when ctx has
// ended, keeping ctx's values but not its cancellation.
func (s *System) close(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	// A service created but never run still holds its resources (closing twice is harmless).
	for _, c := range s.closers {
		c(ctx)
	}
	if s.pgSrv != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.pgSrv.Shutdown(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// laterOrders is payment-service's view of order-service, bound once order-service is up.
type laterOrders struct {
	mu sync.Mutex
	c  payment.Orders
}

func (l *laterOrders) bind(c payment.Orders) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.c = c
}

// Order reads the order from order-service, or says that order-service is not up yet.
func (l *laterOrders) Order(ctx context.Context, id int64) (payment.OrderInfo, error) {
	l.mu.Lock()
	c := l.c
	l.mu.Unlock()
	if c == nil {
		return payment.OrderInfo{}, errors.New("order-service is not started yet")
	}
	return c.Order(ctx, id)
}
