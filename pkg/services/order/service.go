package order

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/services/consumer"
	"github.com/come2us/opsctl/pkg/services/httpapi"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/services/service"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Name is the service's name.
const Name = "order-service"

// Payments is what the PENDING sweeper asks payment-service before it cancels anything: where the
// payments of stale orders stand, reconciled with the gateway, with orders nobody paid closed to
// payments (void). *payment.Client implements it over payment-service's internal API.
type Payments interface {
	Resolve(ctx context.Context, orderIDs []int64, void bool) ([]payment.OrderPayment, error)
}

// Catalog is what order-service needs from product-service: option prices and stock, and the
// reservation of an order's lines. *productapi.Client implements it over HTTP.
type Catalog interface {
	Options(ctx context.Context, ids []int64) ([]productapi.Option, error)
	Reserve(ctx context.Context, req productapi.ReserveRequest) (productapi.ReserveResponse, error)
}

// Config configures order-service.
type Config struct {
	// Service is the runtime's configuration.
	Service service.Options
	// Consumer tunes the payment-result consumer; its Service, Group, Handlers, Producer, Metrics
	// and Logger are filled in.
	Consumer consumer.Config
	// Relay tunes the outbox relay; its DB, Producer, Metrics, Logger and Now are filled in.
	Relay outbox.Config
	// ProductURL is product-service's base URL; used when Catalog is nil.
	ProductURL string
	// Catalog overrides the product-service client.
	Catalog Catalog
	// PaymentURL is payment-service's base URL, asked by the sweeper; used when Payments is nil.
	PaymentURL string
	// Payments overrides the payment-service client.
	Payments Payments
	// ResolveTimeout bounds one sweeper call to payment-service (default 1m): it may reconcile
	// payments with the gateway first.
	ResolveTimeout time.Duration
	// SweepInterval is how often the PENDING sweeper runs (default 1m).
	SweepInterval time.Duration
	// PendingTimeout is how long an order may stay PENDING before the sweeper asks
	// payment-service about it (default 5m).
	PendingTimeout time.Duration
	// SweepChunk is how many orders the sweeper asks about and settles at once (default 500,
	// at most payment.MaxResolve).
	SweepChunk int
	// Now is the clock (orders' timestamps and the sweeper's cutoff); time.Now when nil. Tests
	// move it forward to age orders.
	Now func() time.Time
}

// ConfigFromEnv reads the configuration: the shared settings (service.OptionsFromEnv), the
// consumer policy and outbox timing, product- and payment-service and the sweeper. Problems are
// collected in e.
func ConfigFromEnv(e *service.Env) Config {
	return Config{
		Service:        service.OptionsFromEnv(Name, e),
		Consumer:       service.ConsumerFromEnv(e),
		Relay:          service.RelayFromEnv(e),
		ProductURL:     e.String("PRODUCT_SERVICE_URL", "http://product-service:8080", "product-service's base URL"),
		PaymentURL:     e.String("PAYMENT_SERVICE_URL", "http://payment-service:8080", "payment-service's base URL (the sweeper asks it before cancelling an order)"),
		SweepInterval:  e.Duration("SWEEP_INTERVAL", time.Minute, "how often PENDING orders are swept"),
		PendingTimeout: e.Duration("PENDING_TIMEOUT", 5*time.Minute, "how long an order may stay PENDING before the sweeper asks payment-service about it"),
		SweepChunk:     e.Int("SWEEP_CHUNK", 500, "orders settled per sweeper transaction (at most 500)"),
	}
}

// Service is a running order-service.
type Service struct {
	rt       *service.Runtime
	store    *Store
	relay    *outbox.Relay
	catalog  Catalog
	payments Payments
	cfg      Config
}

// New starts the runtime, migrates the database and wires routes, consumer, sweeper and relay.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Service.Name == "" {
		cfg.Service.Name = Name
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.PendingTimeout <= 0 {
		cfg.PendingTimeout = 5 * time.Minute
	}
	if cfg.SweepChunk <= 0 || cfg.SweepChunk > payment.MaxResolve {
		cfg.SweepChunk = payment.MaxResolve
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Catalog == nil {
		if cfg.ProductURL == "" {
			return nil, errors.New("order-service: ProductURL (PRODUCT_SERVICE_URL) or Catalog is required")
		}
		cfg.Catalog = productapi.NewClient(cfg.ProductURL, nil)
	}
	if cfg.Payments == nil {
		if cfg.PaymentURL == "" {
			return nil, errors.New("order-service: PaymentURL (PAYMENT_SERVICE_URL) or Payments is required")
		}
		cfg.Payments = payment.NewClient(cfg.PaymentURL, httpapi.NewHTTPClient(cfg.ResolveTimeout))
	}
	rt, err := service.New(ctx, cfg.Service)
	if err != nil {
		return nil, err
	}
	st, err := NewStore(ctx, rt.DB, cfg.Now)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	rc := cfg.Relay
	rc.DB, rc.Producer, rc.Metrics, rc.Logger, rc.Now = rt.DB, rt.Producer, rt.Metrics, rt.Logger, cfg.Now
	relay, err := outbox.NewRelay(rc)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	s := &Service{rt: rt, store: st, relay: relay, catalog: cfg.Catalog, payments: cfg.Payments, cfg: cfg}

	cc := cfg.Consumer
	cc.Service, cc.Group, cc.Producer = rt.Name, event.GroupOrderService, rt.Producer
	cc.Metrics, cc.Logger, cc.Tracer, cc.Now = rt.Metrics, rt.Logger, rt.Tracer, cfg.Now
	cc.Handlers = map[string]consumer.Handler{
		event.TopicPaymentsPaid:   s.handlePaymentPaid,
		event.TopicPaymentsFailed: s.handlePaymentFailed,
	}
	c, err := consumer.New(rt.ClientOpts(), cc)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("%s: %w", Name, err)
	}

	rt.Handle("POST /orders", s.placeOrder)
	rt.Handle("GET /orders/{id}", s.getOrder)
	rt.Handle("GET /internal/orders/{id}", s.payable)
	rt.Handle("POST /coupons", s.issueCoupon)
	rt.Handle("GET /coupons/{id}", s.getCoupon)
	rt.Go(service.StageIntake, "payment-result consumer", c.Run)
	rt.Go(service.StageIntake, "PENDING sweeper", s.runSweeper)
	rt.Go(service.StageIntake, "order gauge", s.runGauge)
	rt.Go(service.StagePublish, "outbox relay", relay.Run)
	return s, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Service) Run(ctx context.Context) error { return s.rt.Run(ctx) }

// URL is the service's HTTP base URL.
func (s *Service) URL() string { return s.rt.URL() }

// Store is the service's data access.
func (s *Service) Store() *Store { return s.store }

// Runtime is the service's runtime (metrics, logger, database).
func (s *Service) Runtime() *service.Runtime { return s.rt }

// Sweep runs the PENDING sweeper once, now (section 6.9): orders PENDING for longer than the
// timeout are not failed on age alone — their payment may be approved and its payments-paid held
// up (a paused broker, a locked row, a consumer restart). For each chunk the sweeper asks
// payment-service, which reconciles unknown outcomes with the gateway first and closes orders
// without a payment to late ones, and acts on the answer: approved → PREPARING; declined or none →
// FAILED with compensation (coupon back, stock through orders-failed); unknown → still PENDING,
// asked again next time. It returns how many orders it failed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	cutoff := s.cfg.Now().Add(-s.cfg.PendingTimeout)
	var cursor StaleCursor
	failed, paid, waiting := 0, 0, 0
	defer func() {
		if failed+paid+waiting > 0 {
			s.rt.Logger.Info("PENDING sweeper settled stale orders", "failed", failed, "paid", paid, "waiting_for_payment", waiting,
				"timeout", s.cfg.PendingTimeout.String())
		}
	}()
	for {
		ids, next, err := s.store.Stale(ctx, cutoff, cursor, s.cfg.SweepChunk)
		if err != nil {
			return failed, fmt.Errorf("sweep PENDING orders: %w", err)
		}
		if len(ids) == 0 {
			return failed, nil
		}
		cursor = next
		rctx, cancel := context.WithTimeout(ctx, s.cfg.ResolveTimeout)
		answers, err := s.payments.Resolve(rctx, ids, true)
		cancel()
		if err != nil {
			return failed, fmt.Errorf("sweep PENDING orders: ask payment-service about %d orders (nothing changed for them): %w", len(ids), err)
		}
		st, err := s.store.Settle(ctx, answers, s.cfg.PendingTimeout)
		if err != nil {
			return failed, fmt.Errorf("sweep PENDING orders: %w", err)
		}
		for _, c := range st.Compensations {
			s.compensated(c)
		}
		for _, err := range st.Mismatched {
			s.rt.Metrics.BusinessErrors.WithLabelValues(codeOf(err)).Inc()
			s.rt.Logger.Error("PENDING sweeper: the order's approved payment does not fit it; left for an operator", "err", err)
		}
		if len(st.Compensations) > 0 {
			s.relay.Kick()
		}
		failed, paid, waiting = failed+len(st.Compensations), paid+st.Paid, waiting+st.Waiting
		if len(ids) < s.cfg.SweepChunk || ctx.Err() != nil {
			return failed, nil
		}
	}
}

func (s *Service) runSweeper(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.rt.Logger.Error("PENDING sweep failed; the next run retries", "err", err)
			}
		}
	}
}

// runGauge keeps saga_orders{state} current. Every replica reports the database-wide counts, so
// dashboards aggregate the series with max, not sum.
func (s *Service) runGauge(ctx context.Context) error {
	for {
		if counts, err := s.store.Counts(ctx); err == nil {
			for st, n := range counts {
				s.rt.Metrics.Orders.WithLabelValues(st).Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
}

func (s *Service) compensated(c Compensation) {
	if !c.Failed {
		return
	}
	s.rt.Metrics.Compensations.WithLabelValues("order_failed").Inc()
	if c.CouponRestored {
		s.rt.Metrics.Compensations.WithLabelValues("coupon_restored").Inc()
	}
}

// Error codes of the consumer (DLT errorCode) and of the business-error metric.
const (
	CodeOrderAlreadyFailed = "ORDER_ALREADY_FAILED"
	CodeOrderNotFound      = "ORDER_NOT_FOUND"
	CodeAmountMismatch     = "PAYMENT_AMOUNT_MISMATCH"
	CodeOrderPaidTwice     = "ORDER_PAID_TWICE"
)

// codeOf names a business failure of applying a payment result, or "" for anything else.
func codeOf(err error) string {
	switch {
	case errors.Is(err, ErrAlreadyFailed):
		return CodeOrderAlreadyFailed
	case errors.Is(err, ErrNotFound):
		return CodeOrderNotFound
	case errors.Is(err, ErrAmountMismatch):
		return CodeAmountMismatch
	case errors.Is(err, ErrPaidTwice):
		return CodeOrderPaidTwice
	}
	return ""
}

// classify turns a handler's error into the consumer's: business failures go to the DLT at once
// (and count as business errors: money moved that does not fit the order), database trouble that
// passes by itself is retried for minutes, anything else a few times.
func (s *Service) classify(err error) error {
	if code := codeOf(err); code != "" {
		s.rt.Metrics.BusinessErrors.WithLabelValues(code).Inc()
		return consumer.Permanent(code, err)
	}
	if store.Transient(err) {
		return consumer.Transient(store.Code(err), err)
	}
	return consumer.Retryable(store.Code(err), err)
}

func (s *Service) handlePaymentPaid(ctx context.Context, rec *kgo.Record) error {
	ev, err := event.Decode[event.PaymentPaid](rec.Value)
	if err != nil {
		return err
	}
	out, err := s.store.MarkPaid(ctx, ev)
	if err != nil {
		return s.classify(err)
	}
	s.rt.Logger.InfoContext(ctx, "payment result applied", "orderId", ev.OrderID, "result", "paid", "outcome", string(out))
	return nil
}

func (s *Service) handlePaymentFailed(ctx context.Context, rec *kgo.Record) error {
	ev, err := event.Decode[event.PaymentFailed](rec.Value)
	if err != nil {
		return err
	}
	out, comp, err := s.store.MarkFailed(ctx, ev)
	if err != nil {
		return s.classify(err)
	}
	s.compensated(comp)
	if comp.Lines > 0 {
		s.relay.Kick()
	}
	log := s.rt.Logger.With("orderId", ev.OrderID, "result", "failed", "outcome", string(out))
	if out == Ignored {
		log.WarnContext(ctx, "payments-failed for an order that is already paid; left PREPARING")
		return nil
	}
	log.InfoContext(ctx, "payment result applied", "coupon_restored", comp.CouponRestored, "lines", comp.Lines)
	return nil
}

// Error codes of the order API.
const (
	CodeOptionNotFound     = "OPTION_NOT_FOUND"
	CodeStockShort         = "STOCK_SHORT"
	CodeCouponInvalid      = "COUPON_INVALID"
	CodeProductUnavailable = "PRODUCT_UNAVAILABLE"
)

func (s *Service) placeOrder(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req PlaceRequest
	if err := service.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if err := validatePlace(req); err != nil {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "%v; %s", err, service.Unchanged)
	}
	// Price and check the lines before writing anything: an unknown option or missing stock is
	// refused without a trace.
	ids := make([]int64, 0, len(req.Lines))
	want := map[int64]int64{}
	for _, l := range req.Lines {
		if _, seen := want[l.OptionValueID]; !seen {
			ids = append(ids, l.OptionValueID)
		}
		want[l.OptionValueID] += l.Quantity
	}
	opts, err := s.catalog.Options(ctx, ids)
	if err != nil {
		return service.Errorf(http.StatusServiceUnavailable, CodeProductUnavailable, "product-service could not price the order (%v); %s — retry later", err, service.Unchanged)
	}
	byID := map[int64]productapi.Option{}
	for _, o := range opts {
		byID[o.ID] = o
	}
	var missing []string
	for _, id := range ids {
		if _, ok := byID[id]; !ok {
			missing = append(missing, strconv.FormatInt(id, 10))
		}
	}
	if len(missing) > 0 {
		s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomeOptionNotFound).Inc()
		return service.Errorf(http.StatusUnprocessableEntity, CodeOptionNotFound, "option %s does not exist; %s", strings.Join(missing, ", "), service.Unchanged)
	}
	for _, id := range ids {
		if o := byID[id]; o.Stock < want[id] {
			s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomeStockShort).Inc()
			return service.Errorf(http.StatusConflict, CodeStockShort, "option %d has %d in stock, %d requested; %s", id, o.Stock, want[id], service.Unchanged).
				With("optionValueId", id).With("available", o.Stock).With("requested", want[id])
		}
	}
	no := NewOrder{UserID: req.UserID, CouponID: req.CouponID}
	for _, l := range req.Lines {
		no.Lines = append(no.Lines, Line{OptionValueID: l.OptionValueID, Quantity: l.Quantity, UnitPrice: byID[l.OptionValueID].Price})
	}
	o, err := s.store.Create(ctx, no)
	var ce *CouponError
	if errors.As(err, &ce) {
		s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomeCouponInvalid).Inc()
		return service.Errorf(http.StatusUnprocessableEntity, CodeCouponInvalid, "%v; %s", ce, service.Unchanged).With("couponId", ce.CouponID)
	}
	if err != nil {
		return err
	}

	// Reserve the stock, idempotently per line (the line ids are the keys), retrying transport
	// failures. If the reservation fails the order is compensated at once.
	rr := productapi.ReserveRequest{OrderID: o.ID}
	for _, l := range o.Lines {
		rr.Lines = append(rr.Lines, productapi.Line{OrderDetailID: l.ID, OptionValueID: l.OptionValueID, Quantity: l.Quantity})
	}
	var rerr error
	for attempt := 1; attempt <= 3; attempt++ {
		if _, rerr = s.catalog.Reserve(ctx, rr); rerr == nil {
			break
		}
		var ae *service.APIError
		if errors.As(rerr, &ae) && ae.Status < 500 {
			break // a refusal, not a hiccup
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
	if rerr == nil {
		s.rt.Logger.InfoContext(ctx, "order placed", "orderId", o.ID, "amount", o.Amount, "lines", len(o.Lines))
		service.WriteJSON(w, http.StatusCreated, o)
		return nil
	}
	code, status := FailureReservation, http.StatusServiceUnavailable
	var ae *service.APIError
	if errors.As(rerr, &ae) && ae.Status < 500 {
		code, status = ae.Code, ae.Status
		if ae.Code == productapi.CodeStockShort {
			code = FailureStockShort
			s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomeStockShort).Inc()
		}
	}
	// The reservation may or may not have happened (a timeout); orders-failed for every line
	// releases whatever was taken.
	comp, ferr := s.store.Fail(context.WithoutCancel(ctx), o.ID, Failure{Code: code, Reason: rerr.Error()})
	if ferr != nil {
		return fmt.Errorf("order %d: reserving stock failed (%v) and so did failing the order: %w", o.ID, rerr, ferr)
	}
	s.compensated(comp)
	s.relay.Kick()
	return service.Errorf(status, code, "stock could not be reserved (%v); order %d was recorded as FAILED and its coupon released", rerr, o.ID).
		With("orderId", o.ID)
}

func validatePlace(req PlaceRequest) error {
	if strings.TrimSpace(req.UserID) == "" || len(req.UserID) > 100 {
		return errors.New("userId must be 1 to 100 characters")
	}
	if len(req.Lines) == 0 || len(req.Lines) > productapi.MaxLines {
		return fmt.Errorf("lines must hold 1 to %d lines, got %d", productapi.MaxLines, len(req.Lines))
	}
	for i, l := range req.Lines {
		if l.OptionValueID <= 0 {
			return fmt.Errorf("lines[%d].optionValueId must be a positive number, got %d", i, l.OptionValueID)
		}
		if l.Quantity <= 0 || l.Quantity > productapi.MaxQuantity {
			return fmt.Errorf("lines[%d].quantity must be between 1 and %d, got %d", i, productapi.MaxQuantity, l.Quantity)
		}
	}
	if req.CouponID != nil && *req.CouponID <= 0 {
		return fmt.Errorf("couponId must be a positive number, got %d", *req.CouponID)
	}
	return nil
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "id %q is not a positive number", r.PathValue("id"))
	}
	return id, nil
}

func (s *Service) getOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	o, err := s.store.Get(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return service.Errorf(http.StatusNotFound, service.CodeNotFound, "order %d does not exist", id)
	}
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, o)
	return nil
}

// Payable is the answer of GET /internal/orders/{id}: what payment-service checks a payment
// against before it charges anything.
type Payable struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Amount int64  `json:"amount"`
}

func (s *Service) payable(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	st, amount, err := status(r.Context(), s.store.db.SQL, id)
	if errors.Is(err, ErrNotFound) {
		return service.Errorf(http.StatusNotFound, service.CodeNotFound, "order %d does not exist", id)
	}
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, Payable{ID: id, Status: st, Amount: amount})
	return nil
}

// The API's request bodies live in orderapi, which clients use without linking the service.
type (
	// PlaceRequest is the body of POST /orders (orderapi.PlaceRequest).
	PlaceRequest = orderapi.PlaceRequest
	// PlaceLine is one requested line of a PlaceRequest (orderapi.PlaceLine).
	PlaceLine = orderapi.PlaceLine
	// IssueCouponRequest is the body of POST /coupons (orderapi.IssueCouponRequest).
	IssueCouponRequest = orderapi.IssueCouponRequest
)

func (s *Service) issueCoupon(w http.ResponseWriter, r *http.Request) error {
	var req IssueCouponRequest
	if err := service.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(req.UserID) == "" || len(req.UserID) > 100:
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "userId must be 1 to 100 characters; %s", service.Unchanged)
	case req.DiscountAmount <= 0:
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "discountAmount must be positive, got %d; %s", req.DiscountAmount, service.Unchanged)
	case req.MinOrderAmount < 0:
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "minOrderAmount must not be negative, got %d; %s", req.MinOrderAmount, service.Unchanged)
	}
	c, err := s.store.IssueCoupon(r.Context(), req.UserID, req.DiscountAmount, req.MinOrderAmount)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Service) getCoupon(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	c, err := s.store.Coupon(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return service.Errorf(http.StatusNotFound, service.CodeNotFound, "coupon %d does not exist", id)
	}
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, c)
	return nil
}
