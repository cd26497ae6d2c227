// Package payment is payment-service: POST /payments/confirm confirms a payment with the PG and
// announces the result — payments-paid on approval, payments-failed on a decline — through the
// transactional outbox (section 6.2, 6.7, 6.8).
//
// Money rules, each enforced before the gateway is asked to charge anything:
//
//   - One payment per order. The database holds at most one payment of an order that was (or may
//     have been) sent to the gateway — a unique index, so two confirms of one order with different
//     Idempotency-Keys and payment keys cannot both charge, however they race. A second confirm of
//     a paid order gets 409 naming the existing payment.
//   - The amount is the order's. The order's payable amount and state are read from order-service,
//     and a confirm for another amount, or for an order no longer PENDING, is refused; nothing is
//     sent to the gateway.
//   - Every gateway outcome is known. The gateway call runs detached from the client's request
//     with its own timeout, so a client that hangs up does not abort a charge half way, and the
//     result is written with a context of its own. When the gateway gives no usable answer the
//     payment is kept as UNKNOWN — never forgotten — and reconciled: on the next confirm with the
//     same key, by the periodic reconciler, and when order-service's sweeper asks about the order
//     (Resolve). Reconciling looks the order's payment up at the gateway (Toss' lookup by
//     orderId) and otherwise repeats the confirm under the same Idempotency-Key, which the gateway
//     deduplicates. A payment left IN_PROGRESS by a crash is picked up the same way once it is
//     older than StaleAfter — by then no call of its request can still be under way — with the
//     order checked again before anything is sent, as the crash may have come before the check.
//
// Idempotency works at two levels. The client sends a UUIDv4 Idempotency-Key; the service stores
// the final answer under it and repeats that answer for every later request with the key, and
// passes the same key to the PG, which deduplicates too. ALREADY_PROCESSED_PAYMENT from the PG
// means the payment went through earlier: it is answered and announced as a success and never
// starts compensation.
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
	"slices"
	"strconv"
	"time"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/paymentgateway"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Payment row states.
const (
	// StatusInProgress: a request or the reconciler is working on the payment now.
	StatusInProgress = "IN_PROGRESS"
	// StatusUnknown: the confirm was sent and no usable answer came back; the reconciler finds out.
	StatusUnknown = "UNKNOWN"
	// StatusDone: approved — the customer was charged.
	StatusDone = "DONE"
	// StatusFailed: declined by the gateway.
	StatusFailed = "FAILED"
	// StatusRejected: refused before the gateway was called (wrong amount, order not payable);
	// nothing was charged and the order may be paid by another request.
	StatusRejected = "REJECTED"
	// StatusVoid: the order was cancelled without a payment (order-service's sweeper asked);
	// no payment may be taken for it any more.
	StatusVoid = "VOID"
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

// Record is a stored payment.
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
	// errLost: a claimed payment was taken over by another worker (this one was too slow); the
	// other worker's record stands.
	errLost = errors.New("the payment was taken over by another worker")
)

// OrderPaidError says the order already has a payment, so a new one must not start.
type OrderPaidError struct {
	// Existing is the order's payment.
	Existing Record
	// Unresolved is set when that payment's outcome is not known (UNKNOWN, or IN_PROGRESS left by
	// a request that stopped).
	Unresolved bool
}

// Error names the order and the state of its payment.
func (e *OrderPaidError) Error() string {
	return fmt.Sprintf("order %d already has payment %s (%s)", e.Existing.OrderID, e.Existing.IdempotencyKey, e.Existing.Status)
}

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

// Claim is a payment a worker (a request or the reconciler) holds and must carry to an end.
type Claim struct {
	Key string
	Req ConfirmRequest
	// Resumed is the state the payment was taken over from: "" for a new payment, StatusUnknown
	// when the gateway was asked and did not answer usably, StatusInProgress when a worker
	// stopped at an unknown point — before the order check, or during the gateway call.
	Resumed string
	// at is the claim's updated_at: every later write checks it, so a worker that was taken over
	// writes nothing.
	at int64
}

// payment is a row as the store reads it.
type payment struct {
	Record
	respStatus sql.NullInt64
	respBody   sql.NullString
	updatedAt  int64
}

const paymentColumns = `idempotency_key, payment_key, order_id, amount, status, COALESCE(pg_code, ''), response_status, response_body, updated_at`

func scanPayment(sc interface{ Scan(...any) error }) (payment, error) {
	var p payment
	err := sc.Scan(&p.IdempotencyKey, &p.PaymentKey, &p.OrderID, &p.Amount, &p.Status, &p.PGCode, &p.respStatus, &p.respBody, &p.updatedAt)
	return p, err
}

// slotStates are the states in which a payment holds its order (the unique index's predicate).
const slotStates = `('IN_PROGRESS', 'UNKNOWN', 'DONE', 'FAILED', 'VOID')`

// stale reports whether p is being worked on by nobody: UNKNOWN, or IN_PROGRESS for longer than
// staleAfter (its worker stopped).
func (p payment) stale(now time.Time, staleAfter time.Duration) bool {
	return p.Status == StatusUnknown || (p.Status == StatusInProgress && p.updatedAt < store.Micros(now.Add(-staleAfter)))
}

// Begin claims the payment of req under key. It returns the stored answer when the key was
// answered before; a Claim when this request must carry the payment on (a new one, or one a
// stopped request or an unknown outcome left behind); ErrKeyReused when the key belongs to another
// payment; ErrInProgress when another request holds it; *OrderPaidError when the order already has
// another payment. A new payment costs one statement: the unique index on the order is the check.
func (s *Store) Begin(ctx context.Context, key string, req ConfirmRequest, staleAfter time.Duration) (*Answer, *Claim, error) {
	now := s.now()
	var answer *Answer
	var claim *Claim
	// A new payment is one statement, sent without a transaction around it.
	res, err := s.db.Exec(ctx, `INSERT INTO payments (idempotency_key, payment_key, order_id, amount, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (idempotency_key) DO NOTHING`,
		key, req.PaymentKey, req.OrderID, req.Amount, StatusInProgress, store.Micros(now))
	if err == nil {
		if n, _ := res.RowsAffected(); n == 1 {
			return nil, &Claim{Key: key, Req: req, at: store.Micros(now)}, nil
		}
		// The key is stored already.
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			answer, claim, err = s.existing(ctx, tx, key, req, now, staleAfter)
			return err
		})
		return answer, claim, err
	}
	if !store.IsUniqueViolation(err) {
		return nil, nil, err
	}
	// The order is held by a payment (on PostgreSQL the violation ended the transaction, so it
	// is read afresh). When that payment is this key's, the request is a repeat.
	other, rerr := s.slot(ctx, req.OrderID)
	switch {
	case rerr != nil:
		return nil, nil, rerr
	case other == nil:
		return nil, nil, ErrInProgress // it went away a moment ago; the client retries
	case other.IdempotencyKey == key:
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			answer, claim, err = s.existing(ctx, tx, key, req, now, staleAfter)
			return err
		})
		return answer, claim, err
	}
	return nil, nil, &OrderPaidError{Existing: other.Record, Unresolved: other.stale(now, staleAfter)}
}

// existing handles a request whose key is stored already: the stored answer of a finished
// payment, a claim on one nobody works on, or ErrInProgress / ErrKeyReused.
func (s *Store) existing(ctx context.Context, tx *sql.Tx, key string, req ConfirmRequest, now time.Time, staleAfter time.Duration) (*Answer, *Claim, error) {
	p, err := scanPayment(tx.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE idempotency_key = $1`, key))
	if err != nil {
		return nil, nil, err
	}
	if p.PaymentKey != req.PaymentKey || p.OrderID != req.OrderID || p.Amount != req.Amount {
		return nil, nil, ErrKeyReused
	}
	switch {
	case p.Status == StatusDone || p.Status == StatusFailed || p.Status == StatusRejected:
		return &Answer{Status: int(p.respStatus.Int64), Body: []byte(p.respBody.String)}, nil, nil
	case !p.stale(now, staleAfter):
		return nil, nil, ErrInProgress
	}
	c, err := s.take(ctx, tx, p, now)
	return nil, c, err
}

// take claims p for the caller: IN_PROGRESS with a fresh updated_at, provided nobody changed it
// since it was read.
func (s *Store) take(ctx context.Context, tx *sql.Tx, p payment, now time.Time) (*Claim, error) {
	at := store.Micros(now)
	if at <= p.updatedAt {
		at = p.updatedAt + 1 // the claim must differ from what it replaces
	}
	res, err := tx.ExecContext(ctx, `UPDATE payments SET status = $1, updated_at = $2
		WHERE idempotency_key = $3 AND status = $4 AND updated_at = $5`, StatusInProgress, at, p.IdempotencyKey, p.Status, p.updatedAt)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrInProgress
	}
	return &Claim{Key: p.IdempotencyKey, Req: ConfirmRequest{PaymentKey: p.PaymentKey, OrderID: p.OrderID, Amount: p.Amount},
		Resumed: p.Status, at: at}, nil
}

// slot reads the payment holding orderID, or nil.
func (s *Store) slot(ctx context.Context, orderID int64) (*payment, error) {
	p, err := scanPayment(s.db.SQL.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments
		WHERE order_id = $1 AND status IN `+slotStates, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the payment of order %d: %w", orderID, err)
	}
	return &p, nil
}

// Retake claims a payment nobody works on (UNKNOWN, or IN_PROGRESS older than staleAfter) for the
// reconciler. It returns nil when the payment is not such a payment any more.
func (s *Store) retake(ctx context.Context, key string, staleAfter time.Duration) (*Claim, error) {
	now := s.now()
	var claim *Claim
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		claim = nil
		p, err := scanPayment(tx.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE idempotency_key = $1`, key))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !p.stale(now, staleAfter) {
			return nil
		}
		claim, err = s.take(ctx, tx, p, now)
		if errors.Is(err, ErrInProgress) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim payment %s: %w", key, err)
	}
	return claim, nil
}

// settle runs, in one transaction, the update of c's payment — query, whose WHERE ends with the
// claim check "idempotency_key = $key AND status = 'IN_PROGRESS' AND updated_at = $at" taking
// the last three arguments — and then more (may be nil). A worker that lost its claim changes
// nothing and gets errLost. Without more the update is one statement, sent without a
// transaction around it.
func (s *Store) settle(ctx context.Context, c *Claim, query string, args []any, more func(tx *sql.Tx) error) error {
	q, args := claimed(c, query, args)
	lost := func(res sql.Result) error {
		if k, _ := res.RowsAffected(); k == 0 {
			return errLost
		}
		return nil
	}
	if more == nil {
		res, err := s.db.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		return lost(res)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if err := lost(res); err != nil {
			return err
		}
		return more(tx)
	})
}

// claimed appends the claim check of c to query's WHERE, and its values to args.
func claimed(c *Claim, query string, args []any) (string, []any) {
	n := len(args)
	return fmt.Sprintf("%s WHERE idempotency_key = $%d AND status = $%d AND updated_at = $%d", query, n+1, n+2, n+3),
		append(slices.Clip(args), c.Key, StatusInProgress, c.at)
}

// Release forgets a claimed payment that never reached the gateway (its order could not be
// checked), so the same key may start again and the order may be paid.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	err := s.settle(ctx, c, `DELETE FROM payments`, nil, nil)
	if err != nil && !errors.Is(err, errLost) {
		return fmt.Errorf("release payment %s: %w", c.Key, err)
	}
	return nil
}

// Unknown records that the gateway gave no usable answer: the payment stays, as UNKNOWN, for the
// reconciler.
func (s *Store) Unknown(ctx context.Context, c *Claim) error {
	err := s.settle(ctx, c, `UPDATE payments SET status = $1, updated_at = $2`, []any{StatusUnknown, store.Micros(s.now())}, nil)
	if err != nil {
		return fmt.Errorf("record the unknown outcome of payment %s: %w", c.Key, err)
	}
	return nil
}

// Finish stores the final state and answer of c and, in the same transaction, the event announcing
// it (none for a payment REJECTED before the gateway). On PostgreSQL the two are one statement.
func (s *Store) Finish(ctx context.Context, c *Claim, status, pgCode string, answer Answer, ev *outbox.Message) error {
	now := s.now()
	const update = `UPDATE payments SET status = $1, pg_code = $2, response_status = $3, response_body = $4, updated_at = $5`
	args := []any{status, nullIfEmpty(pgCode), answer.Status, string(answer.Body), store.Micros(now)}
	var err error
	switch {
	case ev != nil && s.db.Dialect() == store.Postgres:
		q, qargs := claimed(c, update, args)
		var stored bool
		stored, err = outbox.AddAfter(ctx, s.db, now, q+` RETURNING 1`, qargs, *ev)
		if err == nil && !stored {
			err = errLost
		}
	case ev != nil:
		err = s.settle(ctx, c, update, args, func(tx *sql.Tx) error { return outbox.Add(ctx, tx, now, *ev) })
	default:
		err = s.settle(ctx, c, update, args, nil)
	}
	if err != nil {
		return fmt.Errorf("record payment %s of order %d as %s: %w", c.Key, c.Req.OrderID, status, err)
	}
	return nil
}

// void records that orderID was cancelled without a payment, so none can start any more. When a
// payment holds the order it does nothing and returns that payment; else it returns the VOID
// record.
func (s *Store) void(ctx context.Context, orderID int64) (*payment, error) {
	now := store.Micros(s.now())
	var holder *payment
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		holder = nil
		p, err := scanPayment(tx.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments
			WHERE order_id = $1 AND status IN `+slotStates, orderID))
		switch {
		case err == nil:
			holder = &p
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments (idempotency_key, payment_key, order_id, amount, status, created_at, updated_at)
			VALUES ($1, '', $2, 0, $3, $4, $4)`, voidKey(orderID), orderID, StatusVoid, now); err != nil {
			return err
		}
		holder = &payment{Record: Record{IdempotencyKey: voidKey(orderID), OrderID: orderID, Status: StatusVoid}, updatedAt: now}
		return nil
	})
	if err != nil && store.IsUniqueViolation(err) {
		// A confirm claimed the order a moment ago: that payment holds it.
		return s.slot(ctx, orderID)
	}
	if err != nil {
		return nil, fmt.Errorf("void order %d: %w", orderID, err)
	}
	return holder, nil
}

// record reads the payment stored under key, or nil.
func (s *Store) record(ctx context.Context, key string) (*Record, error) {
	p, err := scanPayment(s.db.SQL.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM payments WHERE idempotency_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read payment %s: %w", key, err)
	}
	return &p.Record, nil
}

// voidKey is the idempotency key of an order's VOID record; it can never be a client's UUIDv4.
func voidKey(orderID int64) string { return "void-" + strconv.FormatInt(orderID, 10) }

// unresolved lists payments nobody works on whose outcome is not known: UNKNOWN, and IN_PROGRESS
// older than staleAfter. It returns at most limit keys, oldest first, and how many there are.
func (s *Store) unresolved(ctx context.Context, staleAfter time.Duration, limit int) ([]string, int, error) {
	cutoff := store.Micros(s.now().Add(-staleAfter))
	cond := `WHERE status = 'UNKNOWN' OR (status = 'IN_PROGRESS' AND updated_at < $1)`
	var total int
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM payments `+cond, cutoff).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count unresolved payments: %w", err)
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT idempotency_key FROM payments `+cond+` ORDER BY updated_at LIMIT $2`, cutoff, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("list unresolved payments: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, 0, err
		}
		keys = append(keys, k)
	}
	return keys, total, rows.Err()
}

// Payments lists the stored payments of an order, oldest first.
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
func paidEvent(now time.Time, req ConfirmRequest) (*outbox.Message, error) {
	ev := event.PaymentPaid{Envelope: event.NewEnvelope(event.TypePaymentPaid, now), OrderID: req.OrderID, PaymentKey: req.PaymentKey, Amount: req.Amount}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode payments-paid of order %d: %w", req.OrderID, err)
	}
	return &outbox.Message{Topic: event.TopicPaymentsPaid, Key: event.Key(req.OrderID), Value: b}, nil
}

func failedEvent(now time.Time, req ConfirmRequest, pe *paymentgateway.Error) (*outbox.Message, error) {
	ev := event.PaymentFailed{Envelope: event.NewEnvelope(event.TypePaymentFailed, now), OrderID: req.OrderID, PaymentKey: req.PaymentKey,
		Amount: req.Amount, ReasonCode: pe.Code, Reason: pe.Message}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode payments-failed of order %d: %w", req.OrderID, err)
	}
	return &outbox.Message{Topic: event.TopicPaymentsFailed, Key: event.Key(req.OrderID), Value: b}, nil
}

// declineStatus is the HTTP status of a declined payment's answer.
const declineStatus = http.StatusPaymentRequired
