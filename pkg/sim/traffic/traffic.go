// Package traffic is the sandbox's storefront: customer journeys against the SAGA services at a
// steady rate — browse the catalogue (product-service), sometimes get a coupon and always place
// an order (order-service), then pay (payment-service) with a share of payments the payment
// gateway declines — so the services, their Kafka topics and their metrics carry live traffic.
//
// On a schedule it also opens fault windows (see Faults) that make real dead letters of both
// SAGA dead-letter schemas, and runs "late payment" journeys: an order that waits for its
// payment past the PENDING timeout, is cancelled by the sweeper, and is paid afterwards — which
// payment-service refuses before the gateway (ORDER_NOT_PAYABLE), so no paid order is cancelled.
//
// Every request goes to the URL Config.URL returns, in the sandbox the simulated mesh's route
// for the journey's environment, so the traffic shows in Istio's metrics per subset.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/services/service"
)

// Kubernetes app names of the services the journeys call.
const (
	appOrder   = "order-service"
	appPayment = "payment-service"
	appProduct = "product-service"
)

// DeclinePrefix makes the sandbox's payment gateway decline a payment key (pg.DeclineByPrefix).
const DeclinePrefix = "fail_"

// Window is a recurring fault window: open from Start (after the generator starts) for Length,
// then again every Every (0: once).
type Window struct {
	Fault  Fault
	Start  time.Duration
	Length time.Duration
	Every  time.Duration
}

// Config configures a Generator.
type Config struct {
	// URL returns the base URL of app (order-service, payment-service, product-service) in env.
	URL func(env, app string) string
	// Options are the option value ids customers buy.
	Options []int64
	// Envs are the environments journeys take turns in (default prod, dev).
	Envs []string
	// Rate is journeys per second (default 4).
	Rate float64
	// DeclineRatio is the share of payments declined, 0 to 1.
	DeclineRatio float64
	// CouponRatio is the share of journeys that use a freshly issued coupon, 0 to 1.
	CouponRatio float64
	// Faults are the switches Windows open; required when Windows are given.
	Faults *Faults
	// Windows are the fault windows.
	Windows []Window
	// LatePayments is how often a late-payment journey starts, the first at once (0: never).
	LatePayments time.Duration
	// LateWait bounds how long a late-payment journey waits for the sweeper (default 5m).
	LateWait time.Duration
	// Concurrency bounds journeys in flight (default 16); a tick finding them all busy is skipped.
	Concurrency int
	// Seed makes the journeys reproducible.
	Seed uint64
	// Logger receives failed journeys at debug level (default: discarded).
	Logger *slog.Logger
	// HTTPClient calls the services (default: 15s timeout).
	HTTPClient *http.Client
}

// Stats count what the generator did.
type Stats struct {
	Journeys, Paid, Declined, Failed, Skipped int64
	// LateRefused counts late payments for orders the sweeper had cancelled that payment-service
	// refused, as it must. A late payment that went through counts as Failed.
	LateRefused int64
}

// Generator runs journeys.
type Generator struct {
	cfg Config
	log *slog.Logger

	mu  sync.Mutex
	rng *rand.Rand
	env int

	journeys, paid, declined, failed, skipped, lateRefused atomic.Int64
}

// New checks cfg and returns a Generator.
func New(cfg Config) (*Generator, error) {
	switch {
	case cfg.URL == nil:
		return nil, errors.New("traffic: Config.URL is required")
	case len(cfg.Options) == 0:
		return nil, errors.New("traffic: no options to buy (seed the catalogue first)")
	case cfg.DeclineRatio < 0 || cfg.DeclineRatio > 1:
		return nil, fmt.Errorf("traffic: decline ratio %v must be between 0 and 1", cfg.DeclineRatio)
	case cfg.CouponRatio < 0 || cfg.CouponRatio > 1:
		return nil, fmt.Errorf("traffic: coupon ratio %v must be between 0 and 1", cfg.CouponRatio)
	case cfg.Rate < 0:
		return nil, fmt.Errorf("traffic: rate %v must not be negative", cfg.Rate)
	case len(cfg.Windows) > 0 && cfg.Faults == nil:
		return nil, errors.New("traffic: fault windows need Config.Faults")
	}
	for _, w := range cfg.Windows {
		if err := (&Faults{}).Set(w.Fault, false); err != nil {
			return nil, fmt.Errorf("traffic: %w", err)
		}
		if w.Length <= 0 || (w.Every > 0 && w.Every <= w.Length) || w.Start < 0 {
			return nil, fmt.Errorf("traffic: fault window %s: want Start ≥ 0, Length > 0 and Every 0 or longer than Length", w.Fault)
		}
	}
	if cfg.Rate == 0 {
		cfg.Rate = 4
	}
	if len(cfg.Envs) == 0 {
		cfg.Envs = []string{"prod", "dev"}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.LateWait <= 0 {
		cfg.LateWait = 5 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Generator{cfg: cfg, log: log, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed))}, nil
}

// Stats returns the counts so far.
func (g *Generator) Stats() Stats {
	return Stats{Journeys: g.journeys.Load(), Paid: g.paid.Load(), Declined: g.declined.Load(),
		Failed: g.failed.Load(), Skipped: g.skipped.Load(), LateRefused: g.lateRefused.Load()}
}

// Run generates traffic until ctx ends, then waits for the journeys in flight and closes every
// fault window it opened.
func (g *Generator) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, w := range g.cfg.Windows {
		wg.Add(1)
		go func() { defer wg.Done(); g.window(ctx, w) }()
	}
	if g.cfg.LatePayments > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); g.latePayments(ctx, &wg) }()
	}
	sem := make(chan struct{}, g.cfg.Concurrency)
	t := time.NewTicker(time.Duration(float64(time.Second) / g.cfg.Rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			g.skipped.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			g.journey(ctx)
		}()
	}
}

// window opens and closes one fault window on its schedule. New has checked that w.Fault is a
// fault Faults knows, so Set cannot fail here.
func (g *Generator) window(ctx context.Context, w Window) {
	defer func() { _ = g.cfg.Faults.Set(w.Fault, false) }()
	if !sleep(ctx, w.Start) {
		return
	}
	for {
		_ = g.cfg.Faults.Set(w.Fault, true)
		g.log.Info("fault window opened", "fault", string(w.Fault), "for", w.Length.String())
		if !sleep(ctx, w.Length) {
			return
		}
		_ = g.cfg.Faults.Set(w.Fault, false)
		g.log.Info("fault window closed", "fault", string(w.Fault))
		if w.Every == 0 || !sleep(ctx, w.Every-w.Length) {
			return
		}
	}
}

func (g *Generator) latePayments(ctx context.Context, wg *sync.WaitGroup) {
	for {
		wg.Add(1)
		go func() { defer wg.Done(); g.latePayment(ctx) }()
		if !sleep(ctx, g.cfg.LatePayments) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// plan is one journey's random choices, drawn under the lock.
type plan struct {
	env     string
	lines   []order.PlaceLine
	user    string
	coupon  bool
	decline bool
}

func (g *Generator) plan() plan {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := plan{env: g.cfg.Envs[g.env%len(g.cfg.Envs)], user: fmt.Sprintf("user-%d", g.rng.IntN(200))}
	g.env++
	for range 1 + g.rng.IntN(3) {
		p.lines = append(p.lines, order.PlaceLine{OptionValueID: g.cfg.Options[g.rng.IntN(len(g.cfg.Options))], Quantity: 1 + g.rng.Int64N(3)})
	}
	p.coupon = g.rng.Float64() < g.cfg.CouponRatio
	p.decline = g.rng.Float64() < g.cfg.DeclineRatio
	return p
}

func (g *Generator) clients(env string) (*productapi.Client, *orderapi.Client, *payment.Client) {
	return productapi.NewClient(g.cfg.URL(env, appProduct), g.cfg.HTTPClient),
		orderapi.NewClient(g.cfg.URL(env, appOrder), g.cfg.HTTPClient),
		payment.NewClient(g.cfg.URL(env, appPayment), g.cfg.HTTPClient)
}

// journey is one customer: browse, maybe take a coupon, order, pay.
func (g *Generator) journey(ctx context.Context) {
	g.journeys.Add(1)
	p := g.plan()
	err := g.checkout(ctx, p)
	switch {
	case err == nil:
	case isDecline(err):
		g.declined.Add(1)
	case ctx.Err() != nil:
	default:
		g.failed.Add(1)
		g.log.Debug("journey failed", "env", p.env, "err", err)
	}
}

func (g *Generator) checkout(ctx context.Context, p plan) error {
	products, orders, payments := g.clients(p.env)
	ids := make([]int64, len(p.lines))
	for i, l := range p.lines {
		ids[i] = l.OptionValueID
	}
	if _, err := products.Options(ctx, ids); err != nil {
		return fmt.Errorf("browse: %w", err)
	}
	req := order.PlaceRequest{UserID: p.user, Lines: p.lines}
	if p.coupon {
		c, err := orders.IssueCoupon(ctx, order.IssueCouponRequest{UserID: p.user, DiscountAmount: 500})
		if err != nil {
			return fmt.Errorf("coupon: %w", err)
		}
		req.CouponID = &c.ID
	}
	o, err := orders.Place(ctx, req)
	if err != nil {
		return fmt.Errorf("place order: %w", err)
	}
	key := fmt.Sprintf("tpk_%d_%s", o.ID, uuid.NewString()[:8])
	if p.decline {
		key = DeclinePrefix + key
	}
	if _, err := payments.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: key, OrderID: o.ID, Amount: o.Amount}); err != nil {
		return fmt.Errorf("pay order %d: %w", o.ID, err)
	}
	g.paid.Add(1)
	return nil
}

func isDecline(err error) bool {
	var ae *service.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusPaymentRequired
}

// latePayment places an order, waits until the PENDING sweeper has cancelled it, then tries to pay
// it: payment-service must refuse before the gateway (409 ORDER_NOT_PAYABLE) — a payment taken for
// a cancelled order would be a paid order cancelled.
func (g *Generator) latePayment(ctx context.Context) {
	p := g.plan()
	_, orders, payments := g.clients(p.env)
	o, err := orders.Place(ctx, order.PlaceRequest{UserID: "late-" + p.user, Lines: p.lines[:1]})
	if err != nil {
		if ctx.Err() == nil {
			g.failed.Add(1)
			g.log.Debug("late payment: place order failed", "err", err)
		}
		return
	}
	deadline := time.Now().Add(g.cfg.LateWait)
	for {
		if !sleep(ctx, 500*time.Millisecond) {
			return
		}
		cur, err := orders.Order(ctx, o.ID)
		if err == nil && cur.Status == order.StatusFailed {
			break
		}
		if time.Now().After(deadline) {
			g.log.Warn("late payment: the sweeper never failed the order; giving up", "orderId", o.ID, "waited", g.cfg.LateWait.String())
			return
		}
	}
	key := fmt.Sprintf("tpk_late_%d_%s", o.ID, uuid.NewString()[:8])
	_, err = payments.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: key, OrderID: o.ID, Amount: o.Amount})
	var ae *service.APIError
	switch {
	case errors.As(err, &ae) && ae.Code == payment.CodeOrderNotPayable:
		g.lateRefused.Add(1)
		g.log.Info("late payment for an order the sweeper cancelled was refused", "orderId", o.ID, "env", p.env)
	case err == nil:
		g.failed.Add(1)
		g.log.Error("late payment for an order the sweeper cancelled went through: a paid order is cancelled", "orderId", o.ID, "env", p.env)
	case ctx.Err() == nil:
		g.failed.Add(1)
		g.log.Debug("late payment: confirm failed", "orderId", o.ID, "err", err)
	}
}
