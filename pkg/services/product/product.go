// Package product is product-service: products, their options with price and stock, the
// reservation API order-service calls when an order is placed, and the orders-failed consumer
// that gives the stock back when an order is compensated (section 6.2).
//
// Every stock movement is keyed by the order line (orderDetailId) in the reservations table, in
// the same transaction as the stock change: a line is reserved at most once however often
// order-service retries, and restored at most once however often orders-failed is delivered or
// replayed from its DLT. A compensation that arrives before (or instead of) the reservation voids
// the line, so a late reservation cannot take stock that nobody will give back.
package product

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Reservation states.
const (
	StateReserved = "RESERVED"
	StateReleased = "RELEASED"
	StateVoid     = "VOID"
)

// The API's types live in productapi, which clients use without linking the service.
type (
	// Product is a product with its options (productapi.Product).
	Product = productapi.Product
	// Option is a sellable option of a product (productapi.Option).
	Option = productapi.Option
	// NewOption describes an option to create (productapi.NewOption).
	NewOption = productapi.NewOption
	// Line is one order line to reserve (productapi.Line).
	Line = productapi.Line
	// ReservedLine is a reserved line with the option's unit price (productapi.ReservedLine).
	ReservedLine = productapi.ReservedLine
	// Reservation is one line's row in the reservations table (productapi.Reservation).
	Reservation = productapi.Reservation
)

// Request limits of the reservation API (productapi).
const (
	MaxLines    = productapi.MaxLines
	MaxQuantity = productapi.MaxQuantity
)

// Errors the reservation API answers with; the HTTP layer maps them to status codes.
var (
	ErrNotFound          = errors.New("not found")
	ErrStockShort        = errors.New("not enough stock")
	ErrLineCompensated   = errors.New("order line was already compensated")
	ErrReservationClash  = errors.New("order line is already reserved with different values")
	ErrRestoreMismatch   = errors.New("orders-failed event does not match the reservation")
	errReservationRacing = errors.New("a reservation for the line appeared while voiding it")
)

// OptionError names the option an error is about.
type OptionError struct {
	OptionValueID int64
	Available     int64 // for ErrStockShort
	Requested     int64
	Err           error
}

// Error names the option and the problem.
func (e *OptionError) Error() string {
	if errors.Is(e.Err, ErrStockShort) {
		return fmt.Sprintf("option %d: %v: %d available, %d requested", e.OptionValueID, e.Err, e.Available, e.Requested)
	}
	return fmt.Sprintf("option %d: %v", e.OptionValueID, e.Err)
}

// Unwrap returns the sentinel.
func (e *OptionError) Unwrap() error { return e.Err }

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store is product-service's data access.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore migrates db and returns the store. now is the clock (time.Now when nil).
func NewStore(ctx context.Context, db *store.DB, now func() time.Time) (*Store, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "product", sub); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}, nil
}

// CreateProduct stores a product and its options.
func (s *Store) CreateProduct(ctx context.Context, name string, opts []NewOption) (Product, error) {
	now := s.now()
	p := Product{Name: name, CreatedAt: now.UTC().Truncate(time.Microsecond)}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		p.Options = p.Options[:0]
		if err := tx.QueryRowContext(ctx, `INSERT INTO products (name, created_at) VALUES ($1, $2) RETURNING id`,
			name, store.Micros(now)).Scan(&p.ID); err != nil {
			return err
		}
		for _, o := range opts {
			op := Option{ProductID: p.ID, Name: o.Name, Price: o.Price, Stock: o.Stock}
			if err := tx.QueryRowContext(ctx, `INSERT INTO option_values (product_id, name, price, stock, updated_at)
				VALUES ($1, $2, $3, $4, $5) RETURNING id`, p.ID, o.Name, o.Price, o.Stock, store.Micros(now)).Scan(&op.ID); err != nil {
				return err
			}
			p.Options = append(p.Options, op)
		}
		return nil
	})
	if err != nil {
		return Product{}, fmt.Errorf("create product: %w", err)
	}
	return p, nil
}

// Product returns a product with its options, or ErrNotFound.
func (s *Store) Product(ctx context.Context, id int64) (Product, error) {
	var p Product
	var created int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT id, name, created_at FROM products WHERE id = $1`, id).Scan(&p.ID, &p.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("product %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("read product %d: %w", id, err)
	}
	p.CreatedAt = store.Time(created)
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT id, product_id, name, price, stock FROM option_values WHERE product_id = $1 ORDER BY id`, id)
	if err != nil {
		return p, fmt.Errorf("read options of product %d: %w", id, err)
	}
	p.Options, err = scanOptions(rows)
	return p, err
}

// Options returns the options with the given ids that exist, ordered by id.
func (s *Store) Options(ctx context.Context, ids []int64) ([]Option, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT id, product_id, name, price, stock FROM option_values WHERE id IN (`+
		store.In(1, len(ids))+`) ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read options: %w", err)
	}
	return scanOptions(rows)
}

func scanOptions(rows *sql.Rows) ([]Option, error) {
	defer rows.Close()
	out := []Option{}
	for rows.Next() {
		var o Option
		if err := rows.Scan(&o.ID, &o.ProductID, &o.Name, &o.Price, &o.Stock); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Reserve takes stock for every line of an order, all or nothing. Lines reserved before with the
// same values are not taken twice, so order-service may repeat the call. Errors: *OptionError
// wrapping ErrNotFound or ErrStockShort, ErrLineCompensated, ErrReservationClash.
func (s *Store) Reserve(ctx context.Context, orderID int64, lines []Line) ([]ReservedLine, error) {
	now := store.Micros(s.now())
	if err := validateLines(orderID, lines); err != nil {
		return nil, fmt.Errorf("reserve stock for order %d: %w", orderID, err)
	}
	if s.db.Dialect() == store.Postgres {
		out, err := s.reserveOne(ctx, orderID, lines, now)
		switch {
		case err == nil:
			return out, nil
		case !errors.Is(err, errReserveAgain):
			return nil, fmt.Errorf("reserve stock for order %d: %w", orderID, err)
		}
		// A line is reserved already: the transaction below checks it against the request.
	}
	var out []ReservedLine
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		// The reservation rows go in first, in one statement, and the stock is taken last: an
		// option's row stays locked from its UPDATE to the commit, and every order of that option
		// waits for it meanwhile, so nothing else happens in between. Lines reserved before (a
		// repeated call, or a concurrent one that committed first) are not inserted again; they
		// are checked against the request instead.
		var values strings.Builder
		args := make([]any, 0, 3+3*len(lines))
		args = append(args, orderID, StateReserved, now)
		for i, l := range lines {
			if i > 0 {
				values.WriteString(", ")
			}
			n := 3 + 3*i
			fmt.Fprintf(&values, "($%d, $1, $%d, $%d, $2, $3)", n+1, n+2, n+3)
			args = append(args, l.OrderDetailID, l.OptionValueID, l.Quantity)
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO reservations (order_detail_id, order_id, option_value_id, quantity, state, created_at)
			VALUES `+values.String()+` ON CONFLICT (order_detail_id) DO NOTHING RETURNING order_detail_id`, args...)
		if err != nil {
			return err
		}
		inserted := map[int64]bool{}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close() //nolint:sqlclosecheck // closed on each path, before the next statement on this connection
				return err
			}
			inserted[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var fresh []Line
		var before []any
		for _, l := range lines {
			if inserted[l.OrderDetailID] {
				fresh = append(fresh, l)
			} else {
				before = append(before, l.OrderDetailID)
			}
		}
		if len(before) > 0 {
			existing := map[int64]Reservation{}
			rows, err := tx.QueryContext(ctx, `SELECT order_detail_id, order_id, option_value_id, quantity, state FROM reservations
				WHERE order_detail_id IN (`+store.In(1, len(before))+`)`, before...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var r Reservation
				if err := rows.Scan(&r.OrderDetailID, &r.OrderID, &r.OptionValueID, &r.Quantity, &r.State); err != nil {
					rows.Close() //nolint:sqlclosecheck // closed on each path, before the next statement on this connection
					return err
				}
				existing[r.OrderDetailID] = r
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, l := range lines {
				if inserted[l.OrderDetailID] {
					continue
				}
				r, ok := existing[l.OrderDetailID]
				switch {
				case !ok:
					return fmt.Errorf("order line %d is being reserved by a concurrent request; retry", l.OrderDetailID)
				case r.State != StateReserved:
					return fmt.Errorf("order line %d (%s): %w", l.OrderDetailID, r.State, ErrLineCompensated)
				case r.OrderID != orderID || r.OptionValueID != l.OptionValueID || r.Quantity != l.Quantity:
					return fmt.Errorf("order line %d: %w", l.OrderDetailID, ErrReservationClash)
				}
			}
		}
		// Lock option rows in id order so concurrent reservations cannot deadlock.
		sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].OptionValueID < fresh[j].OptionValueID })
		prices := map[int64]int64{}
		for _, l := range fresh {
			var price int64
			err := tx.QueryRowContext(ctx, `UPDATE option_values SET stock = stock - $1, updated_at = $2 WHERE id = $3 AND stock >= $1 RETURNING price`,
				l.Quantity, now, l.OptionValueID).Scan(&price)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if err == nil {
				prices[l.OptionValueID] = price
				continue
			}
			var stock int64
			err = tx.QueryRowContext(ctx, `SELECT stock FROM option_values WHERE id = $1`, l.OptionValueID).Scan(&stock)
			if errors.Is(err, sql.ErrNoRows) {
				return &OptionError{OptionValueID: l.OptionValueID, Err: ErrNotFound}
			}
			if err != nil {
				return err
			}
			return &OptionError{OptionValueID: l.OptionValueID, Available: stock, Requested: l.Quantity, Err: ErrStockShort}
		}
		// The prices of freshly reserved lines came back with their stock; lines reserved
		// before (a repeated call) are priced now.
		var optIDs []any
		for _, l := range lines {
			if _, ok := prices[l.OptionValueID]; !ok {
				optIDs = append(optIDs, l.OptionValueID)
			}
		}
		if len(optIDs) > 0 {
			prows, err := tx.QueryContext(ctx, `SELECT id, price FROM option_values WHERE id IN (`+store.In(1, len(optIDs))+`)`, optIDs...)
			if err != nil {
				return err
			}
			for prows.Next() {
				var id, price int64
				if err := prows.Scan(&id, &price); err != nil {
					prows.Close() //nolint:sqlclosecheck // closed on each path, before the next statement on this connection
					return err
				}
				prices[id] = price
			}
			prows.Close()
			if err := prows.Err(); err != nil {
				return err
			}
		}
		for _, l := range lines {
			out = append(out, ReservedLine{Line: l, UnitPrice: prices[l.OptionValueID]})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reserve stock for order %d: %w", orderID, err)
	}
	return out, nil
}

// errReserveAgain: a line of the order is reserved already (a repeated call), which
// reserveOne leaves to Reserve's transaction.
var errReserveAgain = errors.New("a line is reserved already")

// reserveOne is Reserve on PostgreSQL for an order none of whose lines is reserved yet — every
// first call: one statement, atomic without BEGIN and COMMIT, that inserts the reservations and
// takes the stock of every option. It locks the options in id order first, so concurrent
// reservations cannot deadlock; a row lock is held from then to the statement's commit and no
// longer — no round trip to the client happens in between. An option short of stock makes its
// row break the stock >= 0 constraint, so the statement fails with nothing changed; an option
// that does not exist stops the insert, so nothing is reserved or taken. Either is then read to
// say which option it was. A line reserved before makes the insert fail with nothing changed,
// and errReserveAgain sends the call to Reserve's transaction, which checks such lines against
// the request.
func (s *Store) reserveOne(ctx context.Context, orderID int64, lines []Line, now int64) ([]ReservedLine, error) {
	var q strings.Builder
	args := make([]any, 0, 3+3*len(lines))
	args = append(args, orderID, StateReserved, now)
	q.WriteString(`WITH want (order_detail_id, option_value_id, quantity) AS (VALUES `)
	for i, l := range lines {
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d::bigint, $%d::bigint, $%d::bigint)", n+1, n+2, n+3)
		args = append(args, l.OrderDetailID, l.OptionValueID, l.Quantity)
	}
	q.WriteString(`),
	need AS (SELECT option_value_id, SUM(quantity) AS quantity FROM want GROUP BY option_value_id),
	locked AS (SELECT id FROM option_values WHERE id IN (SELECT option_value_id FROM need) ORDER BY id FOR UPDATE),
	known AS (SELECT COUNT(*) = (SELECT COUNT(*) FROM need) AS ok FROM locked),
	reserved AS (INSERT INTO reservations (order_detail_id, order_id, option_value_id, quantity, state, created_at)
		SELECT want.order_detail_id, $1::bigint, want.option_value_id, want.quantity, $2::text, $3::bigint FROM want, known WHERE known.ok
		RETURNING order_detail_id)
	UPDATE option_values SET stock = option_values.stock - need.quantity, updated_at = $3::bigint
	FROM need WHERE option_values.id = need.option_value_id AND EXISTS (SELECT 1 FROM reserved)
	RETURNING option_values.id, option_values.price`)
	need := map[int64]int64{}
	for _, l := range lines {
		need[l.OptionValueID] += l.Quantity
	}
	prices := map[int64]int64{}
	err := s.db.Query(ctx, q.String(), args, func(rows *sql.Rows) error {
		clear(prices)
		for rows.Next() {
			var id, price int64
			if err := rows.Scan(&id, &price); err != nil {
				return err
			}
			prices[id] = price
		}
		return nil
	})
	switch {
	case store.IsUniqueViolation(err):
		return nil, errReserveAgain
	case store.IsCheckViolation(err) || err == nil && len(prices) == 0:
		return nil, s.unfit(ctx, need)
	case err != nil:
		return nil, err
	case len(prices) != len(need):
		return nil, fmt.Errorf("reserved the order's lines but took the stock of %d of its %d options", len(prices), len(need))
	}
	out := make([]ReservedLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, ReservedLine{Line: l, UnitPrice: prices[l.OptionValueID]})
	}
	return out, nil
}

// unfit says which option of a reservation that changed nothing does not exist or is short of
// the quantity asked for, the lowest id first (the option shortest of stock when, read again,
// every one has enough: another order gave some back meanwhile).
func (s *Store) unfit(ctx context.Context, need map[int64]int64) error {
	ids := slices.Sorted(maps.Keys(need))
	stock := map[int64]int64{}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT id, stock FROM option_values WHERE id IN (`+store.In(1, len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("some option is short of stock or does not exist; reading which failed: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		stock[id] = n
	}
	if err := rows.Err(); err != nil {
		return err
	}
	shortest := ids[0]
	for _, id := range ids {
		n, exists := stock[id]
		switch {
		case !exists:
			return &OptionError{OptionValueID: id, Err: ErrNotFound}
		case n < need[id]:
			return &OptionError{OptionValueID: id, Available: n, Requested: need[id], Err: ErrStockShort}
		}
		if n-need[id] < stock[shortest]-need[shortest] {
			shortest = id
		}
	}
	return &OptionError{OptionValueID: shortest, Available: stock[shortest], Requested: need[shortest], Err: ErrStockShort}
}

// Reservations lists an order's reservation rows.
func (s *Store) Reservations(ctx context.Context, orderID int64) ([]Reservation, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT order_detail_id, order_id, option_value_id, quantity, state FROM reservations
		WHERE order_id = $1 ORDER BY order_detail_id`, orderID)
	if err != nil {
		return nil, fmt.Errorf("read reservations of order %d: %w", orderID, err)
	}
	defer rows.Close()
	out := []Reservation{}
	for rows.Next() {
		var r Reservation
		if err := rows.Scan(&r.OrderDetailID, &r.OrderID, &r.OptionValueID, &r.Quantity, &r.State); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Outcome says what a restore did.
type Outcome string

// Restore outcomes.
const (
	Restored      Outcome = "restored"       // the stock was given back now
	Duplicate     Outcome = "duplicate"      // the line was restored (or voided) before: nothing to do
	NoReservation Outcome = "no_reservation" // the line never reserved stock; it is now void
)

// Restore gives back the stock of one failed order line, at most once per line. The event must
// match the line's reservation (option and quantity); if it does not, ErrRestoreMismatch is
// returned and nothing changes — an operator must look.
func (s *Store) Restore(ctx context.Context, ev event.OrderFailed) (Outcome, error) {
	now := store.Micros(s.now())
	if s.db.Dialect() == store.Postgres {
		// The common case — the line is reserved as the event says — is one statement, atomic
		// without BEGIN and COMMIT, holding the option's row lock only to its commit. Anything
		// else (a duplicate, a mismatch, no reservation) is for the transaction below.
		var restored int
		err := s.db.Query(ctx, `WITH released AS (UPDATE reservations SET state = $1, released_at = $2, release_event_id = $3
				WHERE order_detail_id = $4 AND state = $5 AND order_id = $6 AND option_value_id = $7 AND quantity = $8
				RETURNING option_value_id, quantity),
			given AS (UPDATE option_values SET stock = option_values.stock + released.quantity, updated_at = $2
				FROM released WHERE option_values.id = released.option_value_id RETURNING 1)
			SELECT COUNT(*) FROM given`,
			[]any{StateReleased, now, ev.EventID, ev.OrderDetailID, StateReserved, ev.OrderID, ev.OptionValueID, ev.Quantity},
			func(rows *sql.Rows) error {
				restored = 0
				for rows.Next() {
					if err := rows.Scan(&restored); err != nil {
						return err
					}
				}
				return nil
			})
		if err != nil {
			return "", fmt.Errorf("restore stock of order line %d: %w", ev.OrderDetailID, err)
		}
		if restored == 1 {
			return Restored, nil
		}
	}
	var out Outcome
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var order, opt, qty int64
		err := tx.QueryRowContext(ctx, `UPDATE reservations SET state = $1, released_at = $2, release_event_id = $3
			WHERE order_detail_id = $4 AND state = $5 RETURNING order_id, option_value_id, quantity`,
			StateReleased, now, ev.EventID, ev.OrderDetailID, StateReserved).Scan(&order, &opt, &qty)
		switch {
		case err == nil:
			if order != ev.OrderID || opt != ev.OptionValueID || qty != int64(ev.Quantity) {
				return fmt.Errorf("%w: order %d line %d reserved %d of option %d, event says order %d, %d of option %d",
					ErrRestoreMismatch, order, ev.OrderDetailID, qty, opt, ev.OrderID, ev.Quantity, ev.OptionValueID)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE option_values SET stock = stock + $1, updated_at = $2 WHERE id = $3`, qty, now, opt); err != nil {
				return err
			}
			out = Restored
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM reservations WHERE order_detail_id = $1`, ev.OrderDetailID).Scan(&state)
		if err == nil {
			out = Duplicate
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO reservations (order_detail_id, order_id, option_value_id, quantity, state, created_at, released_at, release_event_id)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (order_detail_id) DO NOTHING`,
			ev.OrderDetailID, ev.OrderID, ev.OptionValueID, ev.Quantity, StateVoid, now, ev.EventID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errReservationRacing
		}
		out = NoReservation
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("restore stock of order line %d: %w", ev.OrderDetailID, err)
	}
	return out, nil
}

// Stock returns the stock of every option, by id — for reconciliation and tests.
func (s *Store) Stock(ctx context.Context) (map[int64]int64, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT id, stock FROM option_values`)
	if err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, stock int64
		if err := rows.Scan(&id, &stock); err != nil {
			return nil, err
		}
		out[id] = stock
	}
	return out, rows.Err()
}

// validateLines checks a reservation request before it touches the database.
func validateLines(orderID int64, lines []Line) error {
	if orderID <= 0 {
		return fmt.Errorf("orderId must be a positive number, got %d", orderID)
	}
	if len(lines) == 0 || len(lines) > MaxLines {
		return fmt.Errorf("lines must hold 1 to %d order lines, got %d", MaxLines, len(lines))
	}
	seen := make([]int64, 0, len(lines))
	for i, l := range lines {
		switch {
		case l.OrderDetailID <= 0:
			return fmt.Errorf("lines[%d].orderDetailId must be a positive number, got %d", i, l.OrderDetailID)
		case l.OptionValueID <= 0:
			return fmt.Errorf("lines[%d].optionValueId must be a positive number, got %d", i, l.OptionValueID)
		case l.Quantity <= 0 || l.Quantity > MaxQuantity:
			return fmt.Errorf("lines[%d].quantity must be between 1 and %d, got %d", i, MaxQuantity, l.Quantity)
		case slices.Contains(seen, l.OrderDetailID):
			return fmt.Errorf("lines[%d].orderDetailId %d appears twice", i, l.OrderDetailID)
		}
		seen = append(seen, l.OrderDetailID)
	}
	return nil
}
