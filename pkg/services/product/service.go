package product

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
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/services/service"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Name is the service's name (its errorSource, metrics label and Kubernetes app).
const Name = "product-service"

// Config configures product-service.
type Config struct {
	// Service is the runtime's configuration.
	Service service.Options
	// Consumer tunes the orders-failed consumer (attempts, backoff, timeouts); its Service,
	// Group, Handlers, Producer, Metrics and Logger are filled in.
	Consumer consumer.Config
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ConfigFromEnv reads the configuration (see service.OptionsFromEnv and service.ConsumerFromEnv).
// Problems are collected in e.
func ConfigFromEnv(e *service.Env) Config {
	return Config{Service: service.OptionsFromEnv(Name, e), Consumer: service.ConsumerFromEnv(e)}
}

// Service is a running product-service.
type Service struct {
	rt    *service.Runtime
	store *Store
}

// New starts the runtime, migrates the database and wires the routes and the consumer. Call Run
// to serve.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Service.Name == "" {
		cfg.Service.Name = Name
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
	s := &Service{rt: rt, store: st}
	rt.Handle("POST /products", s.createProduct)
	rt.Handle("GET /products/{id}", s.getProduct)
	rt.Handle("GET /options", s.listOptions)
	rt.Handle("POST /reservations", s.reserve)
	rt.Handle("GET /reservations", s.listReservations)

	cc := cfg.Consumer
	cc.Service, cc.Group, cc.Producer = rt.Name, event.GroupProductService, rt.Producer
	cc.Metrics, cc.Logger, cc.Tracer, cc.Now = rt.Metrics, rt.Logger, rt.Tracer, cfg.Now
	cc.Handlers = map[string]consumer.Handler{event.TopicOrdersFailed: s.handleOrderFailed}
	c, err := consumer.New(rt.ClientOpts(), cc)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	rt.Go(service.StageIntake, "orders-failed consumer", c.Run)
	return s, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Service) Run(ctx context.Context) error { return s.rt.Run(ctx) }

// URL is the service's HTTP base URL.
func (s *Service) URL() string { return s.rt.URL() }

// Store is the service's data access, for reconciliation and tests.
func (s *Service) Store() *Store { return s.store }

// Runtime is the service's runtime (metrics, logger, database).
func (s *Service) Runtime() *service.Runtime { return s.rt }

// handleOrderFailed restores the stock of one failed order line.
func (s *Service) handleOrderFailed(ctx context.Context, rec *kgo.Record) error {
	ev, err := event.Decode[event.OrderFailed](rec.Value)
	if err != nil {
		return err
	}
	out, err := s.store.Restore(ctx, ev)
	switch {
	case errors.Is(err, ErrRestoreMismatch):
		// The compensation cannot be applied as sent: stock is not restored — our failure.
		s.rt.Metrics.BusinessErrors.WithLabelValues(CodeRestoreMismatch).Inc()
		return consumer.Permanent(CodeRestoreMismatch, err)
	case errors.Is(err, errReservationRacing):
		return consumer.Retryable("RESERVATION_RACE", err)
	case store.Transient(err):
		return consumer.Transient(store.Code(err), err)
	case err != nil:
		return consumer.Retryable(store.Code(err), err)
	}
	log := s.rt.Logger.With("orderId", ev.OrderID, "orderDetailId", ev.OrderDetailID, "optionValueId", ev.OptionValueID)
	switch out {
	case Restored:
		s.rt.Metrics.Compensations.WithLabelValues("stock_restored").Inc()
		log.InfoContext(ctx, "stock restored", "quantity", ev.Quantity)
	case NoReservation:
		log.WarnContext(ctx, "orders-failed for a line that never reserved stock; the line is void")
	case Duplicate:
		log.DebugContext(ctx, "orders-failed already applied")
	}
	return nil
}

// The API's request and answer bodies live in productapi, which clients use without linking the
// service.
type (
	// CreateProductRequest is the body of POST /products (productapi.CreateProductRequest).
	CreateProductRequest = productapi.CreateProductRequest
	// OptionsResponse is the answer of GET /options (productapi.OptionsResponse).
	OptionsResponse = productapi.OptionsResponse
	// ReserveRequest is the body of POST /reservations (productapi.ReserveRequest).
	ReserveRequest = productapi.ReserveRequest
	// ReserveResponse is the answer of POST /reservations (productapi.ReserveResponse).
	ReserveResponse = productapi.ReserveResponse
	// ReservationsResponse is the answer of GET /reservations?orderId=N
	// (productapi.ReservationsResponse).
	ReservationsResponse = productapi.ReservationsResponse
)

// Error codes of the reservation API (productapi).
const (
	CodeOptionNotFound   = productapi.CodeOptionNotFound
	CodeStockShort       = productapi.CodeStockShort
	CodeLineCompensated  = productapi.CodeLineCompensated
	CodeReservationClash = productapi.CodeReservationClash
	CodeRestoreMismatch  = productapi.CodeRestoreMismatch
)

func (s *Service) createProduct(w http.ResponseWriter, r *http.Request) error {
	var req CreateProductRequest
	if err := service.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, format+"; "+service.Unchanged, args...)
	}
	if strings.TrimSpace(req.Name) == "" || len(req.Name) > 200 {
		return bad("name must be 1 to 200 characters")
	}
	if len(req.Options) == 0 || len(req.Options) > MaxLines {
		return bad("options must hold 1 to %d options, got %d", MaxLines, len(req.Options))
	}
	for i, o := range req.Options {
		switch {
		case strings.TrimSpace(o.Name) == "" || len(o.Name) > 200:
			return bad("options[%d].name must be 1 to 200 characters", i)
		case o.Price < 0:
			return bad("options[%d].price must not be negative, got %d", i, o.Price)
		case o.Stock < 0:
			return bad("options[%d].stock must not be negative, got %d", i, o.Stock)
		}
	}
	p, err := s.store.CreateProduct(r.Context(), req.Name, req.Options)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusCreated, p)
	return nil
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "%s %q is not a positive number", name, r.PathValue(name))
	}
	return id, nil
}

func (s *Service) getProduct(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := s.store.Product(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		return service.Errorf(http.StatusNotFound, service.CodeNotFound, "product %d does not exist", id)
	}
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, p)
	return nil
}

func (s *Service) listOptions(w http.ResponseWriter, r *http.Request) error {
	raw := r.URL.Query().Get("ids")
	var ids []int64
	for _, part := range strings.Split(raw, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil || id <= 0 {
			return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "ids: %q is not a positive number", part)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 || len(ids) > MaxLines {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "ids must list 1 to %d option ids, e.g. ?ids=1,2", MaxLines)
	}
	opts, err := s.store.Options(r.Context(), ids)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, OptionsResponse{Options: opts})
	return nil
}

func (s *Service) reserve(w http.ResponseWriter, r *http.Request) error {
	var req ReserveRequest
	if err := service.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if err := validateLines(req.OrderID, req.Lines); err != nil {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "%v; %s", err, service.Unchanged)
	}
	lines, err := s.store.Reserve(r.Context(), req.OrderID, req.Lines)
	var oe *OptionError
	switch {
	case errors.As(err, &oe) && errors.Is(err, ErrNotFound):
		s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomeOptionNotFound).Inc()
		return service.Errorf(http.StatusUnprocessableEntity, CodeOptionNotFound,
			"option %d does not exist; no stock was reserved for order %d", oe.OptionValueID, req.OrderID).With("optionValueId", oe.OptionValueID)
	case errors.As(err, &oe) && errors.Is(err, ErrStockShort):
		s.rt.Metrics.BusinessOutcomes.WithLabelValues(metrics.OutcomeStockShort).Inc()
		return service.Errorf(http.StatusConflict, CodeStockShort,
			"option %d has %d in stock, %d requested; no stock was reserved for order %d", oe.OptionValueID, oe.Available, oe.Requested, req.OrderID).
			With("optionValueId", oe.OptionValueID).With("available", oe.Available).With("requested", oe.Requested)
	case errors.Is(err, ErrLineCompensated):
		return service.Errorf(http.StatusConflict, CodeLineCompensated, "%v; no stock was reserved for order %d", err, req.OrderID)
	case errors.Is(err, ErrReservationClash):
		return service.Errorf(http.StatusConflict, CodeReservationClash, "%v; no stock was reserved for order %d", err, req.OrderID)
	case err != nil:
		return err
	}
	service.WriteJSON(w, http.StatusOK, ReserveResponse{OrderID: req.OrderID, Lines: lines})
	return nil
}

func (s *Service) listReservations(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.URL.Query().Get("orderId"), 10, 64)
	if err != nil || id <= 0 {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "orderId must be a positive number, e.g. ?orderId=17")
	}
	res, err := s.store.Reservations(r.Context(), id)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, ReservationsResponse{Reservations: res})
	return nil
}
