package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/store"
)

// Errors of the payment-result handlers; the consumer sends them straight to the DLT.
var (
	// ErrAlreadyFailed: a payment succeeded for an order that was already compensated.
	ErrAlreadyFailed = errors.New("order is already FAILED")
	// ErrAmountMismatch: the paid amount is not the order's payable amount.
	ErrAmountMismatch = errors.New("paid amount differs from the order's amount")
)

// Outcome says what applying a payment result did.
type Outcome string

// Outcomes of MarkPaid and MarkFailed.
const (
	Applied   Outcome = "applied"   // the order changed state
	Duplicate Outcome = "duplicate" // the order was already in the resulting state (redelivery)
	Ignored   Outcome = "ignored"   // a failure for an order that is already paid
)

// MarkPaid moves a PENDING order to PREPARING. An order already PREPARING is a duplicate; a FAILED
// order yields ErrAlreadyFailed, an unknown one ErrNotFound, a wrong amount ErrAmountMismatch —
// nothing changes in those cases.
func (s *Store) MarkPaid(ctx context.Context, ev event.PaymentPaid) (Outcome, error) {
	var out Outcome
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE orders SET status = $1, payment_key = $2, updated_at = $3
			WHERE id = $4 AND status = $5 AND amount = $6`,
			StatusPreparing, ev.PaymentKey, store.Micros(s.now()), ev.OrderID, StatusPending, ev.Amount)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out = Applied
			return nil
		}
		st, amount, err := status(ctx, tx, ev.OrderID)
		if err != nil {
			return err
		}
		switch st {
		case StatusPreparing:
			out = Duplicate
			return nil
		case StatusFailed:
			return fmt.Errorf("payment %s for order %d: %w", ev.PaymentKey, ev.OrderID, ErrAlreadyFailed)
		}
		return fmt.Errorf("order %d: paid %d, payable %d: %w", ev.OrderID, ev.Amount, amount, ErrAmountMismatch)
	})
	return out, err
}

// MarkFailed fails a PENDING order after its payment failed: FAILED, coupon given back, one
// orders-failed per line in the outbox, in one transaction. An order already FAILED is a
// duplicate; an order already PREPARING (paid) is left alone.
func (s *Store) MarkFailed(ctx context.Context, ev event.PaymentFailed) (Outcome, Compensation, error) {
	var out Outcome
	var comp Compensation
	reason := ev.ReasonCode
	if ev.Reason != "" {
		reason += ": " + ev.Reason
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		comp, err = s.fail(ctx, tx, ev.OrderID, Failure{Code: FailurePayment, Reason: reason, PaymentKey: ev.PaymentKey}, s.now())
		if err != nil || comp.Failed {
			out = Applied
			return err
		}
		st, _, err := status(ctx, tx, ev.OrderID)
		if err != nil {
			return err
		}
		out = Duplicate
		if st == StatusPreparing {
			out = Ignored
		}
		return nil
	})
	return out, comp, err
}

// Sweep fails every order PENDING since before cutoff, chunk orders per transaction, and returns
// how many it failed. Each chunk claims its rows with FOR UPDATE SKIP LOCKED (PostgreSQL), so
// replicas sweeping at once share the work instead of doubling it, and a failure costs one chunk.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time, chunk int, timeout time.Duration, onChunk func([]Compensation)) (int, error) {
	total := 0
	for {
		var comps []Compensation
		var claimed int
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			comps, claimed = comps[:0], 0
			rows, err := tx.QueryContext(ctx, `SELECT id FROM orders WHERE status = $1 AND created_at <= $2
				ORDER BY created_at, id LIMIT $3`+s.db.SkipLocked(), StatusPending, store.Micros(cutoff), chunk)
			if err != nil {
				return err
			}
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, id)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			claimed = len(ids)
			now := s.now()
			for _, id := range ids {
				c, err := s.fail(ctx, tx, id, Failure{Code: FailurePendingLimit,
					Reason: fmt.Sprintf("no payment result within %s", timeout)}, now)
				if err != nil {
					return err
				}
				if c.Failed {
					comps = append(comps, c)
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sweep PENDING orders: %w", err)
		}
		total += len(comps)
		if onChunk != nil && len(comps) > 0 {
			onChunk(comps)
		}
		if claimed < chunk || ctx.Err() != nil {
			return total, nil
		}
	}
}
