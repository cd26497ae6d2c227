// Package payment is payment-service: POST /payments/confirm confirms a payment with the PG and
// announces the result — payments-paid on approval, payments-failed on a decline — through the
// transactional outbox (section 6.2, 6.7, 6.8).
//
// Idempotency works at two levels. The client sends a UUIDv4 Idempotency-Key; the service stores
// the first answer under it and repeats that answer for every later request with the key, and
// passes the same key to the PG, which deduplicates too. ALREADY_PROCESSED_PAYMENT from the PG
// means the payment went through earlier: it is answered and announced as a success and never
// starts compensation. When the PG gives no usable answer (timeout, 5xx, a temporary provider
// error) nothing is announced and the key is released, so the client's retry with the same key
// asks the PG again; if nobody retries, order-service's PENDING sweeper fails the order.
package payment

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/outbox"
	"github.com/come2us/opsctl/pkg/pg"
	"github.com/come2us/opsctl/pkg/store"
)

// Payment row states.
const (
	StatusInProgress = "IN_PROGRESS"
	StatusDone       = "DONE"
	StatusFailed     = "FAILED"
)

// ConfirmRequest is the body of POST /payments/confirm.
type ConfirmRequest struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    int64  `json:"orderId"`
	Amount     int64  `json:"amount"`
}

// ConfirmResponse is the answer to an approved payment.
type ConfirmResponse struct {
	OrderID    int64  `json:"orderId"`
	PaymentKey string `json:"paymentKey"`
	Status     string `json:"status"`
	Amount     int64  `json:"amount"`
	ApprovedAt string `json:"approvedAt,omitempty"`
	// AlreadyProcessed is set when the PG said the payment had been confirmed before.
	AlreadyProcessed bool `json:"alreadyProcessed,omitempty"`
}

// Record is a stored confirm request.
type Record struct {
	IdempotencyKey string `json:"idempotencyKey"`
	PaymentKey     string `json:"paymentKey"`
	OrderID        int64  `json:"orderId"`
	Amount         int64  `json:"amount"`
	Status         string `json:"status"`
	PGCode         string `json:"pgCode,omitempty"`
}

// Answer is an HTTP answer stored for an idempotency key.
type Answer struct {
	Status int
	Body   []byte
}

// Errors of the idempotency bookkeeping.
var (
	ErrKeyReused  = errors.New("this Idempotency-Key was used before for a different payment")
	ErrInProgress = errors.New("a request with this Idempotency-Key is still being processed")
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is payment-service's data access.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore migrates db (payments and the outbox) and returns the store.
func NewStore(ctx context.Context, db *store.DB, now func() time.Time) (*Store, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "payment", sub); err != nil {
		return nil, err
	}
	if err := outbox.Migrate(ctx, db); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}, nil
}

// Begin claims key for req. It returns (nil, nil) when this request owns the key and must call
// the PG; the stored answer when the key was answered before; ErrKeyReused when the key belongs
// to another payment; ErrInProgress when another request holds it. A request that has held the
// key longer than staleAfter (it crashed) is taken over.
func (s *Store) Begin(ctx context.Context, key string, req ConfirmRequest, staleAfter time.Duration) (*Answer, error) {
	now := s.now()
	var answer *Answer
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		answer = nil
		res, err := tx.ExecContext(ctx, `INSERT INTO payments (idempotency_key, payment_key, order_id, amount, status, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (idempotency_key) DO NOTHING`,
			key, req.PaymentKey, req.OrderID, req.Amount, StatusInProgress, store.Micros(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var r Record
		var updated int64
		var respStatus sql.NullInt64
		var respBody sql.NullString
		if err := tx.QueryRowContext(ctx, `SELECT payment_key, order_id, amount, status, response_status, response_body, updated_at
			FROM payments WHERE idempotency_key = $1`, key).Scan(&r.PaymentKey, &r.OrderID, &r.Amount, &r.Status, &respStatus, &respBody, &updated); err != nil {
			return err
		}
		if r.PaymentKey != req.PaymentKey || r.OrderID != req.OrderID || r.Amount != req.Amount {
			return ErrKeyReused
		}
		if r.Status != StatusInProgress {
			answer = &Answer{Status: int(respStatus.Int64), Body: []byte(respBody.String)}
			return nil
		}
		res, err = tx.ExecContext(ctx, `UPDATE payments SET updated_at = $1 WHERE idempotency_key = $2 AND status = $3 AND updated_at = $4 AND updated_at < $5`,
			store.Micros(now), key, StatusInProgress, updated, store.Micros(now.Add(-staleAfter)))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil // the previous holder is gone; this request takes over
		}
		return ErrInProgress
	})
	return answer, err
}

// Release forgets an in-progress key whose PG call gave no usable answer, so a retry with the same
// key calls the PG again.
func (s *Store) Release(ctx context.Context, key string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM payments WHERE idempotency_key = $1 AND status = $2`, key, StatusInProgress)
		return err
	})
}

// Finish stores the final answer for key and, in the same transaction, the event announcing it.
func (s *Store) Finish(ctx context.Context, key, status, pgCode string, answer Answer, ev outbox.Message) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE payments SET status = $1, pg_code = $2, response_status = $3, response_body = $4, updated_at = $5
			WHERE idempotency_key = $6`, status, nullIfEmpty(pgCode), answer.Status, string(answer.Body), store.Micros(now), key); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, now, ev)
	})
}

// Payments lists the stored confirm requests of an order, oldest first.
func (s *Store) Payments(ctx context.Context, orderID int64) ([]Record, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT idempotency_key, payment_key, order_id, amount, status, COALESCE(pg_code, '')
		FROM payments WHERE order_id = $1 ORDER BY created_at, idempotency_key`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read payments of order %d: %w", orderID, err)
	}
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var r Record
		if err := rows.Scan(&r.IdempotencyKey, &r.PaymentKey, &r.OrderID, &r.Amount, &r.Status, &r.PGCode); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// paidEvent and failedEvent build the outbox messages, keyed by the order.
func paidEvent(now time.Time, req ConfirmRequest) outbox.Message {
	ev := event.PaymentPaid{Envelope: event.NewEnvelope(event.TypePaymentPaid, now), OrderID: req.OrderID, PaymentKey: req.PaymentKey, Amount: req.Amount}
	b, _ := json.Marshal(ev)
	return outbox.Message{Topic: event.TopicPaymentsPaid, Key: event.Key(req.OrderID), Value: b}
}

func failedEvent(now time.Time, req ConfirmRequest, pe *pg.Error) outbox.Message {
	ev := event.PaymentFailed{Envelope: event.NewEnvelope(event.TypePaymentFailed, now), OrderID: req.OrderID, PaymentKey: req.PaymentKey,
		Amount: req.Amount, ReasonCode: pe.Code, Reason: pe.Message}
	b, _ := json.Marshal(ev)
	return outbox.Message{Topic: event.TopicPaymentsFailed, Key: event.Key(req.OrderID), Value: b}
}

// declineStatus is the HTTP status of a declined payment's answer.
const declineStatus = http.StatusPaymentRequired
