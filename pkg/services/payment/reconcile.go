package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/come2us/opsctl/pkg/services/service"
)

// Outcomes of Resolve: where an order's payment stands.
const (
	// OutcomePaid: the order's payment is approved.
	OutcomePaid = "PAID"
	// OutcomeDeclined: the gateway declined the order's payment.
	OutcomeDeclined = "DECLINED"
	// OutcomeUnknown: the order has a payment whose outcome is not known yet (a request is
	// working on it, or the gateway could not be asked); the order must wait.
	OutcomeUnknown = "UNKNOWN"
	// OutcomeNone: the order has no payment (and, when voided, never will).
	OutcomeNone = "NONE"
)

// OrderPayment is where one order's payment stands.
type OrderPayment struct {
	OrderID int64  `json:"orderId"`
	Outcome string `json:"outcome"`
	// PaymentKey and Amount are the approved payment's (OutcomePaid). This is an internal API:
	// the key is not masked, order-service stores it on the order as payments-paid would.
	PaymentKey string `json:"paymentKey,omitempty"`
	Amount     int64  `json:"amount,omitempty"`
	// Reason is the gateway's code of a decline, or why the outcome is unknown.
	Reason string `json:"reason,omitempty"`
}

// ResolveRequest is the body of POST /internal/payments/resolve.
type ResolveRequest struct {
	OrderIDs []int64 `json:"orderIds"`
	// Void records, for every order without a payment, that it gets none any more: a confirm
	// arriving later is refused. order-service's sweeper sets it before it cancels such orders.
	Void bool `json:"void"`
}

// ResolveResponse is the answer of POST /internal/payments/resolve, one entry per order asked.
type ResolveResponse struct {
	Orders []OrderPayment `json:"orders"`
}

// MaxResolve is how many orders one Resolve call may ask about.
const MaxResolve = 500

// Resolve says where the payment of each order stands, reconciling first every payment whose
// outcome is unknown and nobody works on. With void, an order that has no payment is marked so
// that none can start: the caller may cancel it without racing a confirm. Once ctx ends the
// remaining unknown payments are reported as unknown without being reconciled.
func (s *Service) Resolve(ctx context.Context, orderIDs []int64, void bool) ([]OrderPayment, error) {
	out := make([]OrderPayment, 0, len(orderIDs))
	for _, id := range orderIDs {
		op, err := s.resolveOne(ctx, id, void)
		if err != nil {
			return out, err
		}
		out = append(out, op)
	}
	return out, nil
}

func (s *Service) resolveOne(ctx context.Context, orderID int64, void bool) (OrderPayment, error) {
	op := OrderPayment{OrderID: orderID, Outcome: OutcomeNone}
	p, err := s.store.slot(ctx, orderID)
	if err != nil {
		return op, err
	}
	if p == nil && void {
		if p, err = s.store.void(ctx, orderID); err != nil {
			return op, err
		}
	}
	if p == nil {
		return op, nil
	}
	if p.stale(s.now(), s.cfg.StaleAfter) && ctx.Err() == nil {
		rec, err := s.reconcileKey(ctx, p.IdempotencyKey)
		if err != nil {
			s.rt.Logger.WarnContext(ctx, "reconciling a payment failed", "orderId", orderID, "err", err)
		} else if rec != nil {
			p.Record = *rec
		}
	}
	switch p.Status {
	case StatusDone:
		op.Outcome, op.PaymentKey, op.Amount = OutcomePaid, p.PaymentKey, p.Amount
	case StatusFailed:
		op.Outcome, op.Reason = OutcomeDeclined, p.PGCode
	case StatusVoid:
		op.Outcome = OutcomeNone
	default:
		op.Outcome, op.Reason = OutcomeUnknown, fmt.Sprintf("payment %s is %s", p.IdempotencyKey, p.Status)
	}
	return op, nil
}

// reconcileKey carries the payment under key on when nobody works on it and returns its record
// afterwards (nil when it no longer exists).
func (s *Service) reconcileKey(ctx context.Context, key string) (*Record, error) {
	c, err := s.store.retake(ctx, key, s.cfg.StaleAfter)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if _, err := s.carryOn(ctx, c, nil); err != nil {
			var ae *service.APIError
			if !errors.As(err, &ae) { // an API error is an answer (the order could not be checked), not a failure
				return nil, err
			}
		}
	}
	return s.store.record(ctx, key)
}

// Reconcile finishes the payments whose outcome is unknown and nobody works on — UNKNOWN, or
// IN_PROGRESS for longer than StaleAfter after a crash — up to 100 per call, and returns how many
// it brought to an end (approved, declined or refused). The reconciler runs it every
// ReconcileInterval; tests call it directly.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	keys, total, err := s.store.unresolved(ctx, s.cfg.StaleAfter, 100)
	if err != nil {
		return 0, err
	}
	s.rt.Metrics.PaymentsUnresolved.Set(float64(total))
	done := 0
	var errs []error
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		rec, err := s.reconcileKey(ctx, k)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("payment %s: %w", k, err))
		case rec == nil || rec.Status == StatusDone || rec.Status == StatusFailed || rec.Status == StatusRejected:
			done++
		}
	}
	if done > 0 {
		s.rt.Metrics.PaymentsUnresolved.Set(float64(max(0, total-done)))
		s.rt.Logger.InfoContext(ctx, "reconciled payments with an unknown outcome", "finished", done, "left", total-done)
	}
	return done, errors.Join(errs...)
}

func (s *Service) runReconciler(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.rt.Logger.Error("reconciling payments failed; the next run retries", "err", err)
			}
		}
	}
}

func (s *Service) resolve(w http.ResponseWriter, r *http.Request) error {
	var req ResolveRequest
	if err := service.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	if len(req.OrderIDs) == 0 || len(req.OrderIDs) > MaxResolve {
		return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "orderIds must hold 1 to %d order ids, got %d; %s",
			MaxResolve, len(req.OrderIDs), service.Unchanged)
	}
	for i, id := range req.OrderIDs {
		if id <= 0 {
			return service.Errorf(http.StatusBadRequest, service.CodeInvalidRequest, "orderIds[%d] must be a positive number, got %d; %s", i, id, service.Unchanged)
		}
	}
	out, err := s.Resolve(r.Context(), req.OrderIDs, req.Void)
	if err != nil {
		return fmt.Errorf("resolve the payments of %d orders (%d answered): %w", len(req.OrderIDs), len(out), err)
	}
	service.WriteJSON(w, http.StatusOK, ResolveResponse{Orders: out})
	return nil
}
