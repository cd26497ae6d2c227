// Package store is the database handle the SAGA services share: PostgreSQL (pgx) in production
// and SQLite (modernc, pure Go) as the embedded default, behind one *sql.DB, one schema and one
// set of queries.
//
// Queries are written once, in the dialect both engines accept: $1-style placeholders (pgx and
// modernc's SQLite both bind them), INSERT … RETURNING, ON CONFLICT … DO NOTHING, partial indexes,
// integers for times (Unix microseconds, UTC) and text for states. The few differences live in
// this package: DDL type names are templated ({{ID}}, {{BLOB}}, see Migrate), and row claiming uses
// FOR UPDATE SKIP LOCKED on PostgreSQL only (SkipLocked).
//
// One exception is made for speed, on the paths every order takes: on PostgreSQL a write that
// would be a transaction of several statements is sent as one statement (a data-modifying WITH,
// which SQLite lacks), atomic without BEGIN and COMMIT, with Exec or Query — one round trip
// instead of four to six, and row locks held only to its commit. Each such path keeps its
// transaction for SQLite beside it, and both are tested on both engines.
//
// Concurrency differs by engine and is handled here, not by callers. On PostgreSQL transactions
// run concurrently at READ COMMITTED and are retried when the server aborts one for a deadlock or
// serialization failure. SQLite has a single writer per database file, so Tx serialises write
// transactions inside the process (and BEGIN IMMEDIATE plus a busy timeout covers other
// processes) — SKIP LOCKED is not needed there because no two writers ever overlap. SQLite is meant
// for one replica: several replicas sharing a file would be correct but slow.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names the database engine behind a DB.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open database: the *sql.DB plus what differs between the engines.
type DB struct {
	// SQL is the underlying pool. Use it for reads; write through Tx so SQLite writers are
	// serialised and PostgreSQL deadlocks are retried.
	SQL *sql.DB

	dialect Dialect
	// writer is a one-slot semaphore serialising SQLite write transactions; nil on PostgreSQL.
	writer chan struct{}
	// retries is how often Tx re-runs a transaction PostgreSQL aborted as a deadlock victim.
	retries int
}

// Open connects to the database named by rawURL and checks it answers:
//
//	postgres://user@host:5432/db?sslmode=disable   (also postgresql://; pool_max_conns=N sizes
//	                                                the pool, DefaultMaxConns without it)
//	sqlite:/var/lib/order/order.db                  (also sqlite:relative.db, file:path.db)
//	sqlite::memory:                                 (one private in-memory database)
func Open(ctx context.Context, rawURL string) (*DB, error) {
	var db *DB
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		pgURL, maxConns, err := PoolSize(rawURL)
		if err != nil {
			return nil, err
		}
		cfg, err := pgx.ParseConfig(pgURL)
		if err != nil {
			return nil, fmt.Errorf("open database: parse PostgreSQL URL: %w", err)
		}
		sqldb := stdlib.OpenDB(*cfg)
		sqldb.SetMaxOpenConns(maxConns)
		sqldb.SetMaxIdleConns(maxConns)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{SQL: sqldb, dialect: Postgres, retries: 3}
	case strings.HasPrefix(rawURL, "sqlite:"), strings.HasPrefix(rawURL, "file:"):
		dsn, memory, err := sqliteDSN(rawURL)
		if err != nil {
			return nil, err
		}
		sqldb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		if memory {
			// Every connection to :memory: is its own database; keep exactly one.
			sqldb.SetMaxOpenConns(1)
		} else {
			sqldb.SetMaxOpenConns(8)
		}
		sqldb.SetMaxIdleConns(8)
		db = &DB{SQL: sqldb, dialect: SQLite, writer: make(chan struct{}, 1)}
	default:
		return nil, fmt.Errorf("open database: unsupported URL %q: want postgres://… or sqlite:<path>", redact(rawURL))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.SQL.PingContext(pctx); err != nil {
		_ = db.SQL.Close()
		return nil, fmt.Errorf("open database %s: %w", redact(rawURL), err)
	}
	return db, nil
}

// DefaultMaxConns is how many connections a PostgreSQL pool opens at most unless the URL's
// pool_max_conns says otherwise.
const DefaultMaxConns = 20

// PoolSize takes the pool_max_conns parameter (pgxpool's name for it) out of a PostgreSQL URL,
// since the server would reject it as an unknown run-time parameter, and returns the URL without
// it, for pgx, and the pool size (DefaultMaxConns when the URL does not say).
func PoolSize(rawURL string) (string, int, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", 0, fmt.Errorf("open database: parse PostgreSQL URL %s: %w", redact(rawURL), err)
	}
	q := u.Query()
	v := q.Get("pool_max_conns")
	if v == "" {
		return rawURL, DefaultMaxConns, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("open database: pool_max_conns=%q in %s: want a whole number of at least 1", v, redact(rawURL))
	}
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String(), n, nil
}

// sqliteDSN turns sqlite:path into modernc's file: DSN with the pragmas the services rely on:
// WAL (readers never block the writer), a busy timeout, BEGIN IMMEDIATE (a write transaction
// takes the lock up front instead of failing on upgrade) and foreign keys.
func sqliteDSN(raw string) (dsn string, memory bool, err error) {
	path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "file:")
	path = strings.TrimPrefix(path, "//")
	var query string
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		return "", false, errors.New("open database: sqlite URL has no path: want sqlite:<file> or sqlite::memory:")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", false, fmt.Errorf("open database: sqlite URL query: %w", err)
	}
	memory = path == ":memory:"
	pragmas := []string{"busy_timeout(10000)", "foreign_keys(ON)"}
	if !memory {
		pragmas = append(pragmas, "journal_mode(WAL)", "synchronous(NORMAL)")
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode(), memory, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// Dialect reports the engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// SkipLocked returns the row-locking clause for claiming work rows: " FOR UPDATE SKIP LOCKED" on
// PostgreSQL, so concurrent replicas claim disjoint rows, and "" on SQLite, whose writers are
// serialised anyway.
func (db *DB) SkipLocked() string {
	if db.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ForUpdate returns the clause that locks the rows a SELECT reads until the transaction ends:
// " FOR UPDATE" on PostgreSQL, "" on SQLite, whose writers are serialised anyway.
func (db *DB) ForUpdate() string {
	if db.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// SerializedTx runs fn in a write transaction, as Tx, that runs one after another with every
// other SerializedTx of the same key across all replicas: on PostgreSQL it holds a
// transaction-level advisory lock on key from its start, released at commit or rollback, and
// BEGIN and the lock cost one round trip to the server together; on SQLite, whose write
// transactions are serialised already, it is Tx. fn may run more than once, as in Tx.
func (db *DB) SerializedTx(ctx context.Context, key int64, fn func(Execer) error) error {
	if db.dialect != Postgres {
		return db.Tx(ctx, func(tx *sql.Tx) error { return fn(tx) })
	}
	return db.retry(ctx, func() error { return db.serializedTx(ctx, key, fn) })
}

func (db *DB) serializedTx(ctx context.Context, key int64, fn func(Execer) error) error {
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// A connection given back inside a transaction (a ROLLBACK that failed) is discarded by the
	// driver, never reused.
	defer conn.Close()
	// Without arguments the two statements go as one simple query: one round trip.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("BEGIN; SELECT pg_advisory_xact_lock(%d)", key)); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("begin transaction holding advisory lock %d: %w", key, err)
	}
	if err := fn(conn); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.SQL.Close() }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.SQL.PingContext(ctx) }

// Tx runs fn in a write transaction and commits it when fn returns nil. fn may run more than once
// on PostgreSQL (after a deadlock or serialization failure), so it must not have effects outside
// the transaction. fn must not call Tx itself: on SQLite that would wait on itself.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if db.writer != nil {
		select {
		case db.writer <- struct{}{}:
			defer func() { <-db.writer }()
		case <-ctx.Done():
			return fmt.Errorf("wait for the database writer: %w", ctx.Err())
		}
	}
	return db.retry(ctx, func() error { return db.tx(ctx, fn) })
}

func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Exec runs one write statement as a transaction of its own and returns its result. On
// PostgreSQL the statement is sent alone: a single statement is atomic without BEGIN and COMMIT,
// so it costs one round trip to the server instead of three, and it is retried like Tx after a
// deadlock or serialization failure. On SQLite it goes through the writer, as Tx does.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if db.writer != nil {
		var res sql.Result
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			res, err = tx.ExecContext(ctx, query, args...)
			return err
		})
		return res, err
	}
	var res sql.Result
	err := db.retry(ctx, func() error {
		var err error
		res, err = db.SQL.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// ExecReturning is Exec for a statement that returns one row (INSERT … RETURNING), scanned into
// dest.
func (db *DB) ExecReturning(ctx context.Context, query string, args []any, dest ...any) error {
	if db.writer != nil {
		return db.Tx(ctx, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, query, args...).Scan(dest...)
		})
	}
	return db.retry(ctx, func() error { return db.SQL.QueryRowContext(ctx, query, args...).Scan(dest...) })
}

// Query is Exec for a statement that returns rows (an INSERT … RETURNING of several rows, a
// data-modifying WITH): read is given them and must read them all (it runs again, from the
// start, when the statement is retried, so it resets what it collects). The statement has
// committed once Query returns nil; an error from read does not undo it on PostgreSQL.
func (db *DB) Query(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	run := func(q Execer) error {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := read(rows); err != nil {
			return err
		}
		if err := rows.Close(); err != nil {
			return err
		}
		return rows.Err()
	}
	if db.writer != nil {
		return db.Tx(ctx, func(tx *sql.Tx) error { return run(tx) })
	}
	return db.retry(ctx, func() error { return run(db.SQL) })
}

// retry runs fn, and again while PostgreSQL aborts it for a deadlock or serialization failure,
// up to db.retries more times and while ctx lasts.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt >= db.retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

// retryable reports whether PostgreSQL aborted a transaction that would succeed if run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// Execer is what both *sql.DB and *sql.Tx offer; helpers that may run inside or outside a
// transaction take one.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// In returns n placeholders numbered from first, comma-separated ("$3,$4,$5"), for an IN list.
func In(first, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "$%d", first+i)
	}
	return b.String()
}

// Micros converts t to the stored form of a time: Unix microseconds.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// Time converts a stored Unix-microsecond value back to a UTC time.
func Time(us int64) time.Time { return time.UnixMicro(us).UTC() }
