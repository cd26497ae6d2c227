// Package order is order-service: it takes orders (reserving stock through product-service and
// applying the customer's coupon), follows the payment result from Kafka, and compensates failed
// orders (section 6.2, 6.7, 6.9).
//
//   - POST /orders stores the order PENDING after product-service reserved its stock, idempotently
//     per order line.
//   - payments-paid moves a PENDING order to PREPARING.
//   - payments-failed moves it to FAILED, gives its coupon back and writes one orders-failed event
//     per order line to the outbox, all in one transaction, so product-service restores the stock.
//   - Every consumer checks the order's state first: a redelivered event is a no-op. A
//     payments-paid for an order that is already FAILED is not applied: it goes to the DLT as
//     ORDER_ALREADY_FAILED, because a paid but failed order needs an operator (a refund).
//   - A payments-paid for an order already PREPARING by another payment key is not applied either:
//     it goes to the DLT as ORDER_PAID_TWICE (a second charge to refund).
//   - The PENDING sweeper looks at orders that waited longer than the timeout for a payment
//     result, in chunks, and asks payment-service before it touches one: an approved payment
//     makes the order PREPARING, a declined one or none fails it with compensation, an unknown
//     outcome leaves it PENDING until payment-service knows. A paid order is never cancelled.
package order

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/services/outbox"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Order states.
const (
	StatusPending   = "PENDING"
	StatusPreparing = "PREPARING"
	StatusFailed    = "FAILED"
)

// Coupon states.
const (
	CouponAvailable = "AVAILABLE"
	CouponUsed      = "USED"
)

// Failure codes stored on failed orders.
const (
	FailurePayment      = "PAYMENT_FAILED"
	FailurePendingLimit = "PENDING_TIMEOUT"
	FailureStockShort   = "STOCK_SHORT"
	FailureReservation  = "RESERVATION_FAILED"
)

// The API's types live in orderapi, which clients use without linking the service.
type (
	// Order is an order with its lines (orderapi.Order).
	Order = orderapi.Order
	// Line is one order line (orderapi.Line).
	Line = orderapi.Line
	// Coupon is a discount issued to a user (orderapi.Coupon).
	Coupon = orderapi.Coupon
)

// Errors the store returns for callers to branch on.
var (
	ErrNotFound      = errors.New("not found")
	ErrCouponInvalid = errors.New("coupon cannot be used")
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is order-service's data access.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore migrates db (orders, coupons and the outbox) and returns the store.
func NewStore(ctx context.Context, db *store.DB, now func() time.Time) (*Store, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "order", sub); err != nil {
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

// IssueCoupon creates an AVAILABLE coupon for userID.
func (s *Store) IssueCoupon(ctx context.Context, userID string, discount, minOrder int64) (Coupon, error) {
	c := Coupon{UserID: userID, DiscountAmount: discount, MinOrderAmount: minOrder, Status: CouponAvailable}
	now := store.Micros(s.now())
	err := s.db.ExecReturning(ctx, `INSERT INTO coupons (user_id, discount_amount, min_order_amount, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`, []any{userID, discount, minOrder, CouponAvailable, now}, &c.ID)
	if err != nil {
		return Coupon{}, fmt.Errorf("issue coupon: %w", err)
	}
	return c, nil
}

// Coupon reads a coupon, or ErrNotFound.
func (s *Store) Coupon(ctx context.Context, id int64) (Coupon, error) {
	return readCoupon(ctx, s.db.SQL, id)
}

func readCoupon(ctx context.Context, q store.Execer, id int64) (Coupon, error) {
	var c Coupon
	var orderID sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT id, user_id, discount_amount, min_order_amount, status, order_id, restored_count FROM coupons WHERE id = $1`, id).
		Scan(&c.ID, &c.UserID, &c.DiscountAmount, &c.MinOrderAmount, &c.Status, &orderID, &c.RestoredCount)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("coupon %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("read coupon %d: %w", id, err)
	}
	if orderID.Valid {
		c.OrderID = &orderID.Int64
	}
	return c, nil
}

// NewOrder is an order to store: priced lines and an optional coupon.
type NewOrder struct {
	UserID   string
	Lines    []Line // ID is assigned by Create
	CouponID *int64
}

// CouponError says why a coupon was refused.
type CouponError struct {
	CouponID int64
	Reason   string
}

// Error names the coupon and the reason.
func (e *CouponError) Error() string {
	return fmt.Sprintf("coupon %d cannot be used: %s", e.CouponID, e.Reason)
}

// Unwrap returns ErrCouponInvalid.
func (e *CouponError) Unwrap() error { return ErrCouponInvalid }

// Create stores a PENDING order with its lines and marks its coupon USED, in one transaction. A
// coupon that does not exist, belongs to someone else, is in use, or does not fit the order is a
// *CouponError, and nothing is stored. On PostgreSQL the order, its lines and its coupon are
// written by one statement (see createOne).
func (s *Store) Create(ctx context.Context, no NewOrder) (Order, error) {
	now := s.now()
	o := Order{UserID: no.UserID, Status: StatusPending, CouponID: no.CouponID,
		CreatedAt: store.Time(store.Micros(now)), UpdatedAt: store.Time(store.Micros(now))}
	for _, l := range no.Lines {
		o.TotalAmount += l.UnitPrice * l.Quantity
	}
	var err error
	if s.db.Dialect() == store.Postgres {
		err = s.createOne(ctx, no, &o, store.Micros(now))
	} else {
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			o.Lines = o.Lines[:0]
			o.DiscountAmount = 0
			if no.CouponID != nil {
				c, err := readCoupon(ctx, tx, *no.CouponID)
				if err != nil {
					return couponErr(*no.CouponID, err)
				}
				if err := fits(c, no.UserID, o.TotalAmount); err != nil {
					return err
				}
				o.DiscountAmount = c.DiscountAmount
			}
			o.Amount = o.TotalAmount - o.DiscountAmount
			at := store.Micros(now)
			if err := tx.QueryRowContext(ctx, `INSERT INTO orders (user_id, status, total_amount, discount_amount, amount, coupon_id, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
				no.UserID, StatusPending, o.TotalAmount, o.DiscountAmount, o.Amount, no.CouponID, at).Scan(&o.ID); err != nil {
				return err
			}
			if no.CouponID != nil {
				res, err := tx.ExecContext(ctx, `UPDATE coupons SET status = $1, order_id = $2, updated_at = $3 WHERE id = $4 AND status = $5`,
					CouponUsed, o.ID, at, *no.CouponID, CouponAvailable)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					return &CouponError{CouponID: *no.CouponID, Reason: "it was just used by another order"}
				}
			}
			var err error
			o.Lines, err = insertLines(ctx, tx, o.ID, no.Lines)
			return err
		})
	}
	if err != nil {
		return Order{}, fmt.Errorf("create order: %w", err)
	}
	return o, nil
}

// couponErr turns a failed read of a coupon into the error Create returns.
func couponErr(id int64, err error) error {
	if errors.Is(err, ErrNotFound) {
		return &CouponError{CouponID: id, Reason: "it does not exist"}
	}
	return err
}

// fits says why coupon c cannot pay part of userID's order of total, or nil when it can.
func fits(c Coupon, userID string, total int64) error {
	switch {
	case c.UserID != userID:
		return &CouponError{CouponID: c.ID, Reason: "it belongs to another user"}
	case c.Status != CouponAvailable:
		return &CouponError{CouponID: c.ID, Reason: "it is already used by another order"}
	case total < c.MinOrderAmount:
		return &CouponError{CouponID: c.ID, Reason: fmt.Sprintf("the order total %d is below its minimum of %d", total, c.MinOrderAmount)}
	case c.DiscountAmount >= total:
		return &CouponError{CouponID: c.ID, Reason: fmt.Sprintf("its discount %d is not below the order total %d", c.DiscountAmount, total)}
	}
	return nil
}

// createOne is Create on PostgreSQL: the order, its lines and its coupon's USED mark are written
// by one statement, atomic without BEGIN and COMMIT — one round trip instead of four (six with a
// coupon). The statement takes the coupon only if it is AVAILABLE, the user's, and fits the
// order, and stores nothing otherwise; the coupon is then read to say why. The order's id comes
// from its sequence first, as the coupon records it.
func (s *Store) createOne(ctx context.Context, no NewOrder, o *Order, at int64) error {
	args := []any{no.UserID, StatusPending, o.TotalAmount, no.CouponID, at}
	var q strings.Builder
	q.WriteString(`WITH n AS (SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS id)`)
	from, discount := "n", "0::bigint"
	if no.CouponID != nil {
		args = append(args, CouponUsed, CouponAvailable)
		q.WriteString(`, c AS (UPDATE coupons SET status = $6, order_id = (SELECT id FROM n), updated_at = $5
			WHERE id = $4 AND status = $7 AND user_id = $1 AND min_order_amount <= $3 AND discount_amount < $3
			RETURNING discount_amount)`)
		from, discount = "n, c", "c.discount_amount"
	}
	q.WriteString(`, o AS (INSERT INTO orders (id, user_id, status, total_amount, discount_amount, amount, coupon_id, created_at, updated_at)
		SELECT n.id, $1::text, $2::text, $3::bigint, ` + discount + `, $3::bigint - ` + discount + `, $4::bigint, $5::bigint, $5::bigint
		FROM ` + from + ` RETURNING id, discount_amount, amount)
		, d AS (INSERT INTO order_details (order_id, option_value_id, quantity, unit_price)
		SELECT o.id, v.option_value_id, v.quantity, v.unit_price FROM o, (VALUES `)
	for i, l := range no.Lines {
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d::bigint, $%d::bigint, $%d::bigint, %d)", n+1, n+2, n+3, i)
		args = append(args, l.OptionValueID, l.Quantity, l.UnitPrice)
	}
	q.WriteString(`) AS v (option_value_id, quantity, unit_price, position) ORDER BY v.position
		RETURNING id, option_value_id, quantity, unit_price)
		SELECT o.id, o.discount_amount, o.amount, d.id, d.option_value_id, d.quantity, d.unit_price FROM o, d`)
	var stored []Line
	err := s.db.Query(ctx, q.String(), args, func(rows *sql.Rows) error {
		o.ID, stored = 0, make([]Line, 0, len(no.Lines))
		for rows.Next() {
			var l Line
			if err := rows.Scan(&o.ID, &o.DiscountAmount, &o.Amount, &l.ID, &l.OptionValueID, &l.Quantity, &l.UnitPrice); err != nil {
				return err
			}
			stored = append(stored, l)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(stored) == 0 && no.CouponID != nil {
		// The coupon was not taken, so nothing was stored: say why.
		c, err := readCoupon(ctx, s.db.SQL, *no.CouponID)
		if err != nil {
			return couponErr(*no.CouponID, err)
		}
		if err := fits(c, no.UserID, o.TotalAmount); err != nil {
			return err
		}
		return &CouponError{CouponID: *no.CouponID, Reason: "it was just used by another order"}
	}
	o.Lines, err = matchLines(o.ID, no.Lines, stored)
	return err
}

// insertLines stores an order's lines in one statement and returns them with their ids, in the
// order given (see matchLines).
func insertLines(ctx context.Context, tx *sql.Tx, orderID int64, lines []Line) ([]Line, error) {
	if len(lines) == 0 {
		return nil, nil
	}
	var values strings.Builder
	args := make([]any, 0, 1+3*len(lines))
	args = append(args, orderID)
	for i, l := range lines {
		if i > 0 {
			values.WriteString(", ")
		}
		n := 1 + 3*i
		fmt.Fprintf(&values, "($1, $%d, $%d, $%d)", n+1, n+2, n+3)
		args = append(args, l.OptionValueID, l.Quantity, l.UnitPrice)
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO order_details (order_id, option_value_id, quantity, unit_price) VALUES `+values.String()+`
		RETURNING id, option_value_id, quantity, unit_price`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var stored []Line
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.ID, &l.OptionValueID, &l.Quantity, &l.UnitPrice); err != nil {
			return nil, err
		}
		stored = append(stored, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return matchLines(orderID, lines, stored)
}

// matchLines gives each of the lines asked for the id of its stored row. RETURNING does not
// promise the order of VALUES, so the ids are matched back by the lines' contents; lines alike
// in every value are interchangeable and get their ids in the order given.
func matchLines(orderID int64, lines, stored []Line) ([]Line, error) {
	type content struct{ option, quantity, price int64 }
	ids := map[content][]int64{}
	for _, l := range stored {
		c := content{l.OptionValueID, l.Quantity, l.UnitPrice}
		ids[c] = append(ids[c], l.ID)
	}
	for _, same := range ids {
		slices.Sort(same)
	}
	out := make([]Line, len(lines))
	for i, l := range lines {
		c := content{l.OptionValueID, l.Quantity, l.UnitPrice}
		if len(ids[c]) == 0 {
			return nil, fmt.Errorf("order %d: line %d (option %d) was not stored", orderID, i, l.OptionValueID)
		}
		l.ID, ids[c] = ids[c][0], ids[c][1:]
		out[i] = l
	}
	return out, nil
}

// Get reads an order with its lines, or ErrNotFound. The payment key is masked.
func (s *Store) Get(ctx context.Context, id int64) (Order, error) {
	var o Order
	var coupon sql.NullInt64
	var pk, fc, fr sql.NullString
	var created, updated int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT id, user_id, status, total_amount, discount_amount, amount, coupon_id, payment_key,
		failure_code, failure_reason, created_at, updated_at FROM orders WHERE id = $1`, id).
		Scan(&o.ID, &o.UserID, &o.Status, &o.TotalAmount, &o.DiscountAmount, &o.Amount, &coupon, &pk, &fc, &fr, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("order %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("read order %d: %w", id, err)
	}
	if coupon.Valid {
		o.CouponID = &coupon.Int64
	}
	o.PaymentKey, o.FailureCode, o.FailureReason = secret.Mask(pk.String), fc.String, fr.String
	o.CreatedAt, o.UpdatedAt = store.Time(created), store.Time(updated)
	o.Lines, err = lines(ctx, s.db.SQL, id)
	return o, err
}

func lines(ctx context.Context, q store.Execer, orderID int64) ([]Line, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, option_value_id, quantity, unit_price FROM order_details WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read lines of order %d: %w", orderID, err)
	}
	defer rows.Close()
	out := []Line{}
	for rows.Next() {
		var l Line
		if err := rows.Scan(&l.ID, &l.OptionValueID, &l.Quantity, &l.UnitPrice); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// Failure says why an order is being failed.
type Failure struct {
	Code       string
	Reason     string
	PaymentKey string // the PG payment key, when a payment was involved
}

// Compensation reports what failing an order did.
type Compensation struct {
	// Failed is false when the order was not PENDING (nothing was done).
	Failed bool
	// CouponRestored is true when the order's coupon was given back.
	CouponRestored bool
	// Lines is how many orders-failed events were written.
	Lines int
}

// fail moves a PENDING order to FAILED inside tx: its coupon is given back and one orders-failed
// event per line goes to the outbox. An order in any other state is left alone.
func (s *Store) fail(ctx context.Context, tx *sql.Tx, orderID int64, f Failure, now time.Time) (Compensation, error) {
	at := store.Micros(now)
	var pk any
	if f.PaymentKey != "" {
		pk = f.PaymentKey
	}
	var coupon sql.NullInt64
	err := tx.QueryRowContext(ctx, `UPDATE orders SET status = $1, failure_code = $2, failure_reason = $3,
		payment_key = COALESCE($4, payment_key), updated_at = $5 WHERE id = $6 AND status = $7 RETURNING coupon_id`,
		StatusFailed, f.Code, truncate(f.Reason, 500), pk, at, orderID, StatusPending).Scan(&coupon)
	if errors.Is(err, sql.ErrNoRows) {
		return Compensation{}, nil
	}
	if err != nil {
		return Compensation{}, err
	}
	c := Compensation{Failed: true}
	if coupon.Valid { // an order without a coupon has none to give back
		res, err := tx.ExecContext(ctx, `UPDATE coupons SET status = $1, order_id = NULL, restored_count = restored_count + 1, updated_at = $2
			WHERE order_id = $3 AND status = $4`, CouponAvailable, at, orderID, CouponUsed)
		if err != nil {
			return c, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			c.CouponRestored = true
		}
	}
	ls, err := lines(ctx, tx, orderID)
	if err != nil {
		return c, err
	}
	msgs, err := failedEvents(orderID, ls, f, now)
	if err != nil {
		return c, err
	}
	if err := outbox.Add(ctx, tx, now, msgs...); err != nil {
		return c, err
	}
	c.Lines = len(msgs)
	return c, nil
}

// failedEvents are the orders-failed events of a failed order, one per line.
func failedEvents(orderID int64, ls []Line, f Failure, now time.Time) ([]outbox.Message, error) {
	msgs := make([]outbox.Message, 0, len(ls))
	for _, l := range ls {
		ev := event.OrderFailed{Envelope: event.NewEnvelope(event.TypeOrderFailed, now), OrderID: orderID,
			OrderDetailID: l.ID, OptionValueID: l.OptionValueID, Quantity: int(l.Quantity), PaymentKey: f.PaymentKey}
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, outbox.Message{Topic: event.TopicOrdersFailed, Key: event.Key(orderID), Value: b})
	}
	return msgs, nil
}

// failOne is fail on PostgreSQL as a statement of its own: the order's FAILED state, its
// coupon given back and its orders-failed events are written by one statement, atomic without
// BEGIN and COMMIT — two round trips (the lines, which never change, are read first) instead of
// six. failed is false when the order was not PENDING, and then nothing changed.
func (s *Store) failOne(ctx context.Context, orderID int64, f Failure, now time.Time) (Compensation, error) {
	ls, err := lines(ctx, s.db.SQL, orderID)
	if err != nil {
		return Compensation{}, err
	}
	if len(ls) == 0 {
		// No lines: an order that does not exist, or one whose lines no statement can carry.
		return s.failTx(ctx, orderID, f, now)
	}
	msgs, err := failedEvents(orderID, ls, f, now)
	if err != nil {
		return Compensation{}, err
	}
	at := store.Micros(now)
	var pk any
	if f.PaymentKey != "" {
		pk = f.PaymentKey
	}
	args := []any{StatusFailed, f.Code, truncate(f.Reason, 500), pk, at, orderID, StatusPending, CouponAvailable, CouponUsed}
	ins, insArgs, err := outbox.Insert(ctx, now, len(args)+1, msgs...)
	if err != nil {
		return Compensation{}, err
	}
	var failed, restored, written int
	err = s.db.Query(ctx, `WITH failed AS (UPDATE orders SET status = $1, failure_code = $2, failure_reason = $3,
			payment_key = COALESCE($4, payment_key), updated_at = $5 WHERE id = $6 AND status = $7 RETURNING coupon_id),
		restored AS (UPDATE coupons SET status = $8, order_id = NULL, restored_count = restored_count + 1, updated_at = $5
			WHERE order_id = $6 AND status = $9 AND EXISTS (SELECT 1 FROM failed WHERE coupon_id IS NOT NULL) RETURNING 1),
		written AS (`+ins+` WHERE EXISTS (SELECT 1 FROM failed) RETURNING 1)
		SELECT (SELECT COUNT(*) FROM failed), (SELECT COUNT(*) FROM restored), (SELECT COUNT(*) FROM written)`,
		append(args, insArgs...), func(rows *sql.Rows) error {
			for rows.Next() {
				if err := rows.Scan(&failed, &restored, &written); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil || failed == 0 {
		return Compensation{}, err
	}
	return Compensation{Failed: true, CouponRestored: restored > 0, Lines: written}, nil
}

// failTx is fail in a transaction of its own.
func (s *Store) failTx(ctx context.Context, orderID int64, f Failure, now time.Time) (Compensation, error) {
	var c Compensation
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = s.fail(ctx, tx, orderID, f, now)
		return err
	})
	return c, err
}

// Fail fails a PENDING order with compensation (see fail) in its own transaction.
func (s *Store) Fail(ctx context.Context, orderID int64, f Failure) (Compensation, error) {
	var c Compensation
	var err error
	if s.db.Dialect() == store.Postgres {
		c, err = s.failOne(ctx, orderID, f, s.now())
	} else {
		c, err = s.failTx(ctx, orderID, f, s.now())
	}
	if err != nil {
		return Compensation{}, fmt.Errorf("fail order %d: %w", orderID, err)
	}
	return c, nil
}

// status reads an order's state and payable amount.
func status(ctx context.Context, q store.Execer, id int64) (string, int64, error) {
	var st string
	var amount int64
	err := q.QueryRowContext(ctx, `SELECT status, amount FROM orders WHERE id = $1`, id).Scan(&st, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, fmt.Errorf("order %d: %w", id, ErrNotFound)
	}
	return st, amount, err
}

// Counts returns how many orders are in each state.
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT status, COUNT(*) FROM orders GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count orders: %w", err)
	}
	defer rows.Close()
	out := map[string]int{StatusPending: 0, StatusPreparing: 0, StatusFailed: 0}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
