package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Errors of the payment-result handlers; the consumer sends them straight to the DLT.
var (
	// ErrAlreadyFailed: a payment succeeded for an order that was already compensated.
	ErrAlreadyFailed = errors.New("order is already FAILED")
	// ErrAmountMismatch: the paid amount is not the order's payable amount.
	ErrAmountMismatch = errors.New("paid amount differs from the order's amount")
	// ErrPaidTwice: a second, different payment arrived for an order that is already paid.
	ErrPaidTwice = errors.New("order is already paid by another payment")
)

// Outcome says what applying a payment result did.
type Outcome string

// Outcomes of MarkPaid and MarkFailed.
const (
	Applied   Outcome = "applied"   // the order changed state
	Duplicate Outcome = "duplicate" // the order was already in the resulting state (redelivery)
	Ignored   Outcome = "ignored"   // a failure for an order that is already paid
)

// MarkPaid moves a PENDING order to PREPARING. An order already PREPARING by the same payment key
// is a duplicate; one PREPARING by another payment key yields ErrPaidTwice (the customer was
// charged twice), a FAILED order ErrAlreadyFailed, an unknown one ErrNotFound, a wrong amount
// ErrAmountMismatch — nothing changes in those cases.
func (s *Store) MarkPaid(ctx context.Context, ev event.PaymentPaid) (Outcome, error) {
	// The common case, a PENDING order, is one statement: no transaction round trips around it.
	res, err := s.db.Exec(ctx, markPaidQuery, StatusPreparing, ev.PaymentKey, store.Micros(s.now()), ev.OrderID, StatusPending, ev.Amount)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return Applied, nil
	}
	return paidOutcome(ctx, s.db.SQL, ev.OrderID, ev.PaymentKey, ev.Amount)
}

// markPaidQuery moves a PENDING order with the paid amount to PREPARING.
const markPaidQuery = `UPDATE orders SET status = $1, payment_key = $2, updated_at = $3
	WHERE id = $4 AND status = $5 AND amount = $6`

func (s *Store) markPaid(ctx context.Context, tx *sql.Tx, orderID int64, paymentKey string, amount int64, now time.Time) (Outcome, error) {
	res, err := tx.ExecContext(ctx, markPaidQuery, StatusPreparing, paymentKey, store.Micros(now), orderID, StatusPending, amount)
	if err != nil {
		return "", err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return Applied, nil
	}
	return paidOutcome(ctx, tx, orderID, paymentKey, amount)
}

// paidOutcome says why a payment of orderID was not applied (markPaidQuery changed nothing): a
// duplicate of the payment already applied, or the error naming what does not fit.
func paidOutcome(ctx context.Context, q store.Execer, orderID int64, paymentKey string, amount int64) (Outcome, error) {
	var st, paidBy string
	var payable int64
	var pk sql.NullString
	err := q.QueryRowContext(ctx, `SELECT status, amount, payment_key FROM orders WHERE id = $1`, orderID).Scan(&st, &payable, &pk)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("order %d: %w", orderID, ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	paidBy = pk.String
	switch st {
	case StatusPreparing:
		if paidBy != paymentKey {
			return "", fmt.Errorf("order %d is paid by %s, and payment %s arrived too: %w", orderID, secret.Mask(paidBy), secret.Mask(paymentKey), ErrPaidTwice)
		}
		return Duplicate, nil
	case StatusFailed:
		return "", fmt.Errorf("payment %s for order %d: %w", secret.Mask(paymentKey), orderID, ErrAlreadyFailed)
	}
	return "", fmt.Errorf("order %d: paid %d, payable %d: %w", orderID, amount, payable, ErrAmountMismatch)
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
	f := Failure{Code: FailurePayment, Reason: reason, PaymentKey: ev.PaymentKey}
	if s.db.Dialect() == store.Postgres {
		// One statement fails a PENDING order; any other is only read.
		comp, err := s.failOne(ctx, ev.OrderID, f, s.now())
		if err != nil || comp.Failed {
			return Applied, comp, err
		}
		st, _, err := status(ctx, s.db.SQL, ev.OrderID)
		if err != nil {
			return "", comp, err
		}
		if st == StatusPreparing {
			return Ignored, comp, nil
		}
		return Duplicate, comp, nil
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		comp, err = s.fail(ctx, tx, ev.OrderID, f, s.now())
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

// Stale lists up to limit orders PENDING since before cutoff, oldest first, after the order at
// cursor (a zero cursor starts at the oldest).
func (s *Store) Stale(ctx context.Context, cutoff time.Time, cursor StaleCursor, limit int) ([]int64, StaleCursor, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT id, created_at FROM orders
		WHERE status = $1 AND created_at <= $2 AND (created_at > $3 OR (created_at = $3 AND id > $4))
		ORDER BY created_at, id LIMIT $5`, StatusPending, store.Micros(cutoff), cursor.createdAt, cursor.id, limit)
	if err != nil {
		return nil, cursor, fmt.Errorf("list stale PENDING orders: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		if err := rows.Scan(&cursor.id, &cursor.createdAt); err != nil {
			return nil, cursor, err
		}
		ids = append(ids, cursor.id)
	}
	return ids, cursor, rows.Err()
}

// StaleCursor is where a listing of stale orders stopped.
type StaleCursor struct {
	createdAt, id int64
}

// Settlement is what settling swept orders did.
type Settlement struct {
	// Compensations are the orders failed (no payment, or a declined one).
	Compensations []Compensation
	// Paid counts orders moved to PREPARING because their payment is approved.
	Paid int
	// Waiting counts orders left PENDING because their payment's outcome is not known yet.
	Waiting int
	// Skipped counts orders left alone because they left PENDING meanwhile or another
	// transaction was changing them (their payment result being applied); the next sweep looks
	// again at those still PENDING.
	Skipped int
	// Mismatched lists orders whose approved payment does not match them (amount, or another
	// payment already applied): left as they are for an operator.
	Mismatched []error
}

// Settle applies what payment-service said about swept orders, in one transaction: an approved
// payment moves its order to PREPARING, a declined one or none fails it with compensation (coupon
// back, orders-failed per line), an unknown one leaves it PENDING. Orders that left PENDING
// meanwhile (their payment result arrived) are left alone, and so, on PostgreSQL, are orders
// another transaction holds a lock on: the sweeper never waits behind a consumer.
func (s *Store) Settle(ctx context.Context, answers []payment.OrderPayment, timeout time.Duration) (Settlement, error) {
	var st Settlement
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		st = Settlement{}
		now := s.now()
		for _, a := range answers {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM orders WHERE id = $1 AND status = $2`+s.db.SkipLocked(), a.OrderID, StatusPending).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				st.Skipped++
				continue
			}
			if err != nil {
				return err
			}
			var f Failure
			switch a.Outcome {
			case payment.OutcomePaid:
				out, err := s.markPaid(ctx, tx, a.OrderID, a.PaymentKey, a.Amount, now)
				switch {
				case errors.Is(err, ErrAmountMismatch), errors.Is(err, ErrPaidTwice), errors.Is(err, ErrAlreadyFailed):
					st.Mismatched = append(st.Mismatched, err)
				case err != nil:
					return err
				case out == Applied:
					st.Paid++
				}
				continue
			case payment.OutcomeUnknown:
				st.Waiting++
				continue
			case payment.OutcomeDeclined:
				f = Failure{Code: FailurePayment, Reason: "payment declined: " + a.Reason}
			case payment.OutcomeNone:
				f = Failure{Code: FailurePendingLimit, Reason: fmt.Sprintf("no payment within %s", timeout)}
			default:
				return fmt.Errorf("order %d: payment-service answered outcome %q", a.OrderID, a.Outcome)
			}
			c, err := s.fail(ctx, tx, a.OrderID, f, now)
			if err != nil {
				return err
			}
			if c.Failed {
				st.Compensations = append(st.Compensations, c)
			}
		}
		return nil
	})
	if err != nil {
		return Settlement{}, fmt.Errorf("settle %d swept orders: %w", len(answers), err)
	}
	return st, nil
}
