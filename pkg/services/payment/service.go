package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/httpapi"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/service"
)

// Name is the service's name.
const Name = "payment-service"

// Config configures payment-service.
type Config struct {
	// Service is the runtime's configuration.
	Service service.Options
	// Relay tunes the outbox relay; its DB, Producer, Metrics, Logger and Now are filled in.
	Relay outbox.Config
	// PGBaseURL is the PG's base URL (Toss: https://api.tosspayments.com).
	PGBaseURL string
	// PGSecretKey is the PG secret key (Basic auth). It is never logged.
	PGSecretKey string
	// PGHTTPClient calls the PG; one with PGTimeout is used when nil.
	PGHTTPClient *http.Client
	// PGTimeout bounds one PG call (default 10s). The call runs detached from the client's
	// request, so this, not the client, decides how long a charge may take.
	PGTimeout time.Duration
	// PGAttempts is how often a confirm is sent to the PG (same key) when it gives no usable
	// answer, before the payment is left UNKNOWN for the reconciler (default 3).
	PGAttempts int
	// OrderURL is order-service's base URL, asked for an order's amount and state before a
	// charge; used when Orders is nil.
	OrderURL string
	// Orders overrides the order-service client.
	Orders Orders
	// StaleAfter is when a payment left IN_PROGRESS (its request stopped) may be taken over by a
	// retry or the reconciler (default 1m). It must exceed a request's longest run: PGAttempts
	// calls of PGTimeout.
	StaleAfter time.Duration
	// ReconcileInterval is how often payments with an unknown outcome are reconciled with the
	// gateway (default 30s).
	ReconcileInterval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ConfigFromEnv reads the configuration: the shared settings (service.OptionsFromEnv), the outbox
// timing (service.RelayFromEnv), the gateway and order-service. Problems are collected in e.
func ConfigFromEnv(e *service.Env) Config {
	return Config{
		Service:           service.OptionsFromEnv(Name, e),
		Relay:             service.RelayFromEnv(e),
		PGBaseURL:         e.String("PG_BASE_URL", "https://api.tosspayments.com", "the payment gateway's base URL"),
		PGSecretKey:       e.Required("PG_SECRET_KEY", "the payment gateway's secret key (Toss: test_sk_… or live_sk_…)"),
		PGTimeout:         e.Duration("PG_TIMEOUT", 10*time.Second, "bound of one gateway call"),
		OrderURL:          e.String("ORDER_SERVICE_URL", "http://order-service:8080", "order-service's base URL (the order's amount and state are checked before a charge)"),
		StaleAfter:        e.Duration("PAYMENT_STALE_AFTER", time.Minute, "when a payment whose request stopped is taken over"),
		ReconcileInterval: e.Duration("RECONCILE_INTERVAL", 30*time.Second, "how often payments with an unknown gateway outcome are reconciled"),
	}
}

// Service is a running payment-service.
type Service struct {
	rt     *service.Runtime
	store  *Store
	relay  *outbox.Relay
	pg     *paymentgateway.Client
	orders Orders
	cfg    Config
	now    func() time.Time
	awaits time.Duration
}

// New starts the runtime, migrates the database and wires the routes, the reconciler and the
// outbox relay.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Service.Name == "" {
		cfg.Service.Name = Name
	}
	if cfg.PGTimeout <= 0 {
		cfg.PGTimeout = 10 * time.Second
	}
	if cfg.PGAttempts <= 0 {
		cfg.PGAttempts = 3
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = time.Minute
	}
	if longest := time.Duration(cfg.PGAttempts)*cfg.PGTimeout + time.Duration(cfg.PGAttempts)*time.Second; cfg.StaleAfter <= longest {
		// A payment is taken over only when its request cannot still be talking to the gateway.
		return nil, fmt.Errorf("payment-service: StaleAfter (PAYMENT_STALE_AFTER) %s must exceed the longest gateway call, %d attempts of %s",
			cfg.StaleAfter, cfg.PGAttempts, cfg.PGTimeout)
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Orders == nil {
		if cfg.OrderURL == "" {
			return nil, errors.New("payment-service: OrderURL (ORDER_SERVICE_URL) or Orders is required")
		}
		cfg.Orders = NewOrderClient(cfg.OrderURL, nil)
	}
	hc := cfg.PGHTTPClient
	if hc == nil {
		hc = httpapi.NewHTTPClient(cfg.PGTimeout)
	}
	pgc, err := paymentgateway.NewClient(cfg.PGBaseURL, cfg.PGSecretKey, hc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
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
	s := &Service{rt: rt, store: st, relay: relay, pg: pgc, orders: cfg.Orders, cfg: cfg, now: cfg.Now, awaits: 200 * time.Millisecond}
	rt.Handle("POST /payments/confirm", s.confirm)
	rt.Handle("GET /payments", s.listPayments)
	rt.Handle("POST /internal/payments/resolve", s.resolve)
	rt.Go(service.StageIntake, "payment reconciler", s.runReconciler)
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

// Error codes of the payment API (declines carry the PG's own code).
const (
	CodeKeyReused  = "IDEMPOTENCY_KEY_REUSED"
	CodeInProgress = "REQUEST_IN_PROGRESS"
	// CodePGUnavailable: the gateway gave no usable answer; the outcome is being reconciled.
	CodePGUnavailable = "PG_UNAVAILABLE"
	// CodeOrderAlreadyPaid: the order has an approved payment; nothing was charged again.
	CodeOrderAlreadyPaid = "ORDER_ALREADY_PAID"
	// CodePaymentExists: the order has another payment (declined, or its outcome not known yet).
	CodePaymentExists = "ORDER_PAYMENT_EXISTS"
	// CodeAmountMismatch: the amount is not the order's payable amount; nothing was charged.
	CodeAmountMismatch = "PAYMENT_AMOUNT_MISMATCH"
	// CodeOrderNotPayable: the order is not PENDING (failed or paid); nothing was charged.
	CodeOrderNotPayable = "ORDER_NOT_PAYABLE"
	// CodeOrderNotFound: no such order; nothing was charged.
	CodeOrderNotFound = "ORDER_NOT_FOUND"
	// CodeOrderUnavailable: order-service could not be asked; nothing was charged.
	CodeOrderUnavailable = "ORDER_SERVICE_UNAVAILABLE"
)

func (s *Service) confirm(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	key := r.Header.Get("Idempotency-Key")
	if u, err := uuid.Parse(key); err != nil || u.Version() != 4 {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest,
			"Idempotency-Key header must be a UUIDv4 generated by the client, got %q; %s", key, service.Unchanged)
	}
	var req ConfirmRequest
	if err := service.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	switch {
	case req.PaymentKey == "" || len(req.PaymentKey) > 200:
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "paymentKey must be 1 to 200 characters; %s", service.Unchanged)
	case req.OrderID <= 0:
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "orderId must be a positive number, got %d; %s", req.OrderID, service.Unchanged)
	case req.Amount <= 0:
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "amount must be positive, got %d; %s", req.Amount, service.Unchanged)
	}

	// The order is read from order-service while the payment is claimed: the check costs no
	// extra wait, and nothing reaches the gateway before both are done.
	order := make(chan orderAnswer, 1)
	go func() {
		o, err := s.orders.Order(ctx, req.OrderID)
		order <- orderAnswer{o, err}
	}()
	prior, claim, err := s.store.Begin(ctx, key, req, s.cfg.StaleAfter)
	var paid *OrderPaidError
	switch {
	case errors.Is(err, ErrKeyReused):
		return service.Errorf(http.StatusUnprocessableEntity, CodeKeyReused, "%v; generate a new key for a new payment; %s", err, service.Unchanged)
	case errors.Is(err, ErrInProgress):
		return service.Errorf(http.StatusConflict, CodeInProgress, "%v; retry with the same key shortly", err)
	case errors.As(err, &paid):
		return s.orderHasPayment(ctx, paid)
	case err != nil:
		return err
	case prior != nil:
		w.Header().Set("Idempotent-Replayed", "true")
		writeRaw(w, prior.Status, prior.Body)
		return nil
	}
	a, err := s.carryOn(ctx, claim, order)
	if err != nil {
		return err
	}
	writeRaw(w, a.Status, a.Body)
	return nil
}

// orderAnswer is order-service's answer about an order.
type orderAnswer struct {
	o   OrderInfo
	err error
}

// orderHasPayment answers a confirm for an order that has another payment. A payment whose
// outcome is unknown is reconciled first, so the answer says what really happened to it.
func (s *Service) orderHasPayment(ctx context.Context, e *OrderPaidError) error {
	existing := e.Existing
	if e.Unresolved {
		if rec, err := s.reconcileKey(ctx, existing.IdempotencyKey); err != nil {
			s.rt.Logger.WarnContext(ctx, "reconciling the order's earlier payment failed", "orderId", existing.OrderID, "err", err)
		} else if rec != nil {
			existing = *rec
		}
	}
	name := fmt.Sprintf("payment %s (paymentKey %s, amount %d)", existing.IdempotencyKey, secret.Mask(existing.PaymentKey), existing.Amount)
	var ae *service.APIError
	switch existing.Status {
	case StatusDone:
		ae = service.Errorf(http.StatusConflict, CodeOrderAlreadyPaid, "order %d is already paid by %s; nothing was charged", existing.OrderID, name)
	case StatusFailed:
		ae = service.Errorf(http.StatusConflict, CodePaymentExists, "order %d's %s was declined and the order is being cancelled; place a new order; nothing was charged", existing.OrderID, name)
	case StatusVoid:
		ae = service.Errorf(http.StatusConflict, CodeOrderNotPayable, "order %d was cancelled because no payment arrived in time; place a new order; nothing was charged", existing.OrderID)
	default:
		ae = service.Errorf(http.StatusConflict, CodePaymentExists, "order %d has %s whose outcome is not known yet (%s); nothing was charged — retry later and it will say what became of that payment",
			existing.OrderID, name, existing.Status)
	}
	ae = ae.With("orderId", existing.OrderID).With("existingStatus", existing.Status)
	if existing.Status != StatusVoid {
		ae = ae.With("existingIdempotencyKey", existing.IdempotencyKey).With("existingPaymentKey", secret.Mask(existing.PaymentKey))
	}
	return ae
}

// carryOn takes a claimed payment to its end and returns the answer the client gets (stored under
// the key too when final): for a new payment the order check and the gateway call; for one whose
// outcome is unknown the gateway's lookup, and the confirm repeated under the same key when the
// lookup shows no charge; for one a stopped worker left, the lookup, then the order check (the
// worker may have stopped before it) and the confirm. Gateway calls and the writes that record
// them are detached from ctx — a client hanging up ends neither a charge nor its record — but
// nothing is sent to the gateway once ctx has ended before the order check. order, when not nil,
// delivers the order read in advance.
func (s *Service) carryOn(ctx context.Context, c *Claim, order <-chan orderAnswer) (Answer, error) {
	log := s.rt.Logger.With("orderId", c.Req.OrderID, "paymentKey", secret.Mask(c.Req.PaymentKey), "idempotencyKey", c.Key)
	bg := context.WithoutCancel(ctx)
	if c.Resumed != "" {
		// The confirm may have gone out before and its answer been lost: ask the gateway what
		// became of the order's payment first.
		lctx, cancel := context.WithTimeout(bg, s.cfg.PGTimeout)
		found, lerr := s.pg.Lookup(lctx, strconv.FormatInt(c.Req.OrderID, 10))
		cancel()
		switch {
		case lerr == nil && found.PaymentKey == c.Req.PaymentKey && found.Charged():
			log.InfoContext(ctx, "the gateway shows the payment approved; recording it", "pg_status", found.Status)
			return s.record(bg, c, found, nil, log)
		case lerr == nil && found.PaymentKey != c.Req.PaymentKey && found.Charged():
			log.ErrorContext(ctx, "the gateway shows another payment key charged for this order", "gateway_payment_key", secret.Mask(found.PaymentKey))
		case lerr != nil && !errors.Is(lerr, paymentgateway.ErrNoPayment) && c.Resumed == StatusInProgress:
			// The stopped worker may have been charging, or may have stopped before the order was
			// checked: without the gateway's word neither a refusal nor a confirm is safe. The
			// payment stays IN_PROGRESS and is taken up again once stale.
			log.WarnContext(ctx, "looking the order's payment up at the gateway failed; the payment waits for the next round", "err", lerr)
			return Answer{}, service.Errorf(http.StatusBadGateway, CodePGUnavailable,
				"the payment gateway could not be asked about order %d's interrupted payment (%v); it is retried after %s — retry with the same Idempotency-Key later",
				c.Req.OrderID, lerr, s.cfg.StaleAfter).With("orderId", c.Req.OrderID)
		case lerr != nil && !errors.Is(lerr, paymentgateway.ErrNoPayment):
			log.WarnContext(ctx, "looking the order's payment up at the gateway failed; asking with the confirm", "err", lerr)
		}
	}
	if c.Resumed != StatusUnknown {
		if order == nil {
			ch := make(chan orderAnswer, 1)
			o, err := s.orders.Order(ctx, c.Req.OrderID)
			ch <- orderAnswer{o, err}
			order = ch
		}
		if a, refused, err := s.checkOrder(ctx, c, <-order, log); refused || err != nil {
			return a, err
		}
	}
	// Repeated under the same key, the confirm is answered as it was the first time: a charge
	// made then is not made again.
	p, err := s.confirmWithPG(bg, c)
	return s.record(bg, c, p, err, log)
}

// checkOrder checks the payment against order-service's answer about the order before anything
// is charged. A refusal is recorded (REJECTED, the answer stored under the key) and returned with
// refused set.
func (s *Service) checkOrder(ctx context.Context, c *Claim, ans orderAnswer, log *slog.Logger) (Answer, bool, error) {
	o, err := ans.o, ans.err
	var ae *service.APIError
	switch {
	case ctx.Err() != nil:
		// The client left before anything was sent: send nothing, and let the key start over.
		wctx, cancel := detached(ctx)
		rerr := s.store.Release(wctx, c)
		cancel()
		if rerr != nil {
			return Answer{}, true, fmt.Errorf("the request for order %d ended before the payment was sent, and releasing it failed: %w", c.Req.OrderID, rerr)
		}
		return Answer{}, true, fmt.Errorf("the request for order %d ended before the payment was sent; nothing was charged: %w", c.Req.OrderID, ctx.Err())
	case errors.Is(err, ErrOrderNotFound):
		ae = service.Errorf(http.StatusNotFound, CodeOrderNotFound, "order %d does not exist; nothing was charged", c.Req.OrderID)
	case err != nil:
		// Nothing reached the gateway: forget the claim so a retry with the same key starts over.
		wctx, cancel := detached(ctx)
		rerr := s.store.Release(wctx, c)
		cancel()
		if rerr != nil {
			return Answer{}, true, fmt.Errorf("order %d could not be checked (%v), and releasing its payment failed: %w", c.Req.OrderID, err, rerr)
		}
		log.WarnContext(ctx, "order-service could not be asked about the order; nothing charged", "err", err)
		return Answer{}, true, service.Errorf(http.StatusServiceUnavailable, CodeOrderUnavailable,
			"order-service could not confirm order %d's amount (%v); nothing was charged — retry with the same Idempotency-Key", c.Req.OrderID, err)
	case o.Amount != c.Req.Amount:
		s.rt.Metrics.BusinessErrors.WithLabelValues(CodeAmountMismatch).Inc()
		ae = service.Errorf(http.StatusUnprocessableEntity, CodeAmountMismatch, "amount %d is not order %d's payable amount %d; nothing was charged",
			c.Req.Amount, c.Req.OrderID, o.Amount).With("payableAmount", o.Amount)
	case o.Status != orderPending:
		ae = service.Errorf(http.StatusConflict, CodeOrderNotPayable, "order %d is %s, not awaiting payment; nothing was charged", c.Req.OrderID, o.Status).
			With("orderStatus", o.Status)
	default:
		return Answer{}, false, nil
	}
	ae = ae.With("orderId", c.Req.OrderID)
	body, err := json.Marshal(ae)
	if err != nil {
		return Answer{}, true, fmt.Errorf("encode the refusal of order %d's payment: %w", c.Req.OrderID, err)
	}
	a := Answer{Status: ae.Status, Body: body}
	wctx, cancel := detached(ctx)
	defer cancel()
	if err := s.store.Finish(wctx, c, StatusRejected, ae.Code, a, nil); err != nil {
		return Answer{}, true, err
	}
	log.InfoContext(ctx, "payment refused before the gateway", "code", ae.Code)
	return a, true, nil
}

// record stores what the gateway said about c — approved, declined, or no usable answer — and
// returns the client's answer.
func (s *Service) record(ctx context.Context, c *Claim, p *paymentgateway.Payment, cerr error, log *slog.Logger) (Answer, error) {
	req := c.Req
	wctx, cancel := detached(ctx)
	defer cancel()
	var pe *paymentgateway.Error
	switch {
	case cerr == nil || (errors.As(cerr, &pe) && pe.AlreadyProcessed()):
		resp := ConfirmResponse{OrderID: req.OrderID, PaymentKey: req.PaymentKey, Status: StatusDone, Amount: req.Amount}
		code := ""
		if p != nil {
			resp.ApprovedAt = p.ApprovedAt
		} else {
			resp.AlreadyProcessed, code = true, paymentgateway.CodeAlreadyProcessed
			log.InfoContext(ctx, "PG says the payment was confirmed before; treating it as approved")
		}
		body, err := json.Marshal(resp)
		if err != nil {
			return Answer{}, fmt.Errorf("encode the approval of order %d: %w", req.OrderID, err)
		}
		ev, err := paidEvent(s.now(), req)
		if err != nil {
			return Answer{}, err
		}
		a := Answer{Status: http.StatusOK, Body: body}
		if err := s.store.Finish(wctx, c, StatusDone, code, a, ev); err != nil {
			return Answer{}, fmt.Errorf("the gateway approved the payment of order %d but recording it failed; the reconciler will record it: %w", req.OrderID, err)
		}
		s.relay.Kick()
		s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomePaymentApproved).Inc()
		log.InfoContext(ctx, "payment approved", "amount", req.Amount)
		return a, nil
	case pe != nil && pe.Declined():
		ae := service.Errorf(declineStatus, pe.Code, "the payment was declined: %s", pe.Message).With("orderId", req.OrderID)
		body, err := json.Marshal(ae)
		if err != nil {
			return Answer{}, fmt.Errorf("encode the decline of order %d: %w", req.OrderID, err)
		}
		ev, err := failedEvent(s.now(), req, pe)
		if err != nil {
			return Answer{}, err
		}
		a := Answer{Status: declineStatus, Body: body}
		if err := s.store.Finish(wctx, c, StatusFailed, pe.Code, a, ev); err != nil {
			return Answer{}, fmt.Errorf("the gateway declined the payment of order %d but recording it failed; the reconciler will record it: %w", req.OrderID, err)
		}
		s.relay.Kick()
		s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomePaymentDeclined).Inc()
		log.InfoContext(ctx, "payment declined", "pg_code", pe.Code)
		return a, nil
	}
	// No usable answer: the charge may or may not have happened. The payment is kept as UNKNOWN
	// and reconciled; nothing is announced until the gateway says what happened.
	if err := s.store.Unknown(wctx, c); err != nil {
		return Answer{}, fmt.Errorf("the gateway gave no usable answer for order %d (%v) and recording that failed; the payment stays IN_PROGRESS and is reconciled once stale: %w",
			req.OrderID, cerr, err)
	}
	log.WarnContext(ctx, "the PG gave no usable answer; the payment is kept as UNKNOWN and reconciled", "err", cerr)
	ae := service.Errorf(http.StatusBadGateway, CodePGUnavailable,
		"the payment gateway did not answer usably (%v); the payment may or may not have gone through and is being reconciled — retry with the same Idempotency-Key to learn its outcome", cerr).
		With("orderId", req.OrderID)
	body, err := json.Marshal(ae)
	if err != nil {
		return Answer{}, fmt.Errorf("encode the answer for order %d: %w", req.OrderID, err)
	}
	return Answer{Status: ae.Status, Body: body}, nil
}

// writeTimeout bounds a write that records a gateway outcome.
const writeTimeout = 10 * time.Second

// detached returns the context for a write that records a gateway outcome: it must happen even
// when the request that caused it is gone, so it keeps ctx's values (the trace) but not its end.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
}

// confirmWithPG calls the PG, repeating the call (same key, so at most one charge) while it gives
// no usable answer. Each call has PGTimeout of its own; ctx only carries the trace.
func (s *Service) confirmWithPG(ctx context.Context, c *Claim) (*paymentgateway.Payment, error) {
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.cfg.PGTimeout)
		var p *paymentgateway.Payment
		p, err = s.pg.Confirm(actx, c.Key, paymentgateway.ConfirmRequest{PaymentKey: c.Req.PaymentKey, OrderID: strconv.FormatInt(c.Req.OrderID, 10), Amount: c.Req.Amount})
		cancel()
		var pe *paymentgateway.Error
		if err == nil || (errors.As(err, &pe) && (pe.Declined() || pe.AlreadyProcessed() || pe.Status == http.StatusUnauthorized)) {
			return p, err
		}
		if attempt >= s.cfg.PGAttempts {
			return nil, err
		}
		time.Sleep(time.Duration(attempt) * s.awaits)
	}
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}

// PaymentsResponse is the answer of GET /payments?orderId=N (payment keys masked).
type PaymentsResponse struct {
	Payments []Record `json:"payments"`
}

func (s *Service) listPayments(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.URL.Query().Get("orderId"), 10, 64)
	if err != nil || id <= 0 {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "orderId must be a positive number, e.g. ?orderId=17")
	}
	ps, err := s.store.Payments(r.Context(), id)
	if err != nil {
		return err
	}
	for i := range ps {
		ps[i].PaymentKey = secret.Mask(ps[i].PaymentKey)
	}
	service.WriteJSON(w, http.StatusOK, PaymentsResponse{Payments: ps})
	return nil
}
