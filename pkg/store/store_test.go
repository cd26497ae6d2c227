package store_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/pgtest"
	"github.com/come2us/opsctl/pkg/store"
)

func open(t *testing.T, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func migrations(t *testing.T) fs.FS {
	t.Helper()
	sub, err := fs.Sub(os.DirFS("testdata"), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func TestMigrateAndQueries(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := open(t, newURL())
		// Twice: the second run must apply nothing.
		for range 2 {
			if err := db.Migrate(ctx, "widgets", migrations(t)); err != nil {
				t.Fatal(err)
			}
		}
		var applied int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE component = $1`, "widgets").Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if applied != 2 {
			t.Fatalf("schema_migrations has %d rows for widgets, want 2", applied)
		}

		var id int64
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, `INSERT INTO widgets (name, payload, note) VALUES ($1, $2, $3) RETURNING id`,
				"a", []byte{0, 1, 2, 255}, "n").Scan(&id)
		})
		if err != nil {
			t.Fatal(err)
		}
		var payload []byte
		if err := db.SQL.QueryRowContext(ctx, `SELECT payload FROM widgets WHERE id = $1`, id).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if string(payload) != "\x00\x01\x02\xff" {
			t.Fatalf("payload round trip = %x", payload)
		}

		// A failing fn rolls back.
		boom := errors.New("boom")
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO widgets (name) VALUES ($1)`, "b"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx error = %v, want boom", err)
		}
		var n int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM widgets WHERE name = 'b'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rolled-back row visible: n=%d err=%v", n, err)
		}

		// Unique violations are recognised on both engines; other errors are not.
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO widgets (name) VALUES ($1)`, "a")
			return err
		})
		if !store.IsUniqueViolation(err) {
			t.Fatalf("duplicate insert: %v is not recognised as a unique violation", err)
		}
		if store.Code(err) != store.CodeError {
			t.Fatalf("Code(unique violation) = %q", store.Code(err))
		}
		_, err = db.SQL.ExecContext(ctx, `SELECT nope FROM widgets`)
		if err == nil || store.IsUniqueViolation(err) {
			t.Fatalf("bad column: err=%v", err)
		}

		// ON CONFLICT DO NOTHING reports zero rows on both engines.
		res, err := db.SQL.ExecContext(ctx, `INSERT INTO widgets (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, "a")
		if err != nil {
			t.Fatal(err)
		}
		if rows, _ := res.RowsAffected(); rows != 0 {
			t.Fatalf("conflicting insert affected %d rows", rows)
		}

		wantSkip := ""
		if db.Dialect() == store.Postgres {
			wantSkip = " FOR UPDATE SKIP LOCKED"
		}
		if got := db.SkipLocked(); got != wantSkip {
			t.Fatalf("SkipLocked() = %q, want %q", got, wantSkip)
		}
	})
}

// TestConcurrentWriters increments one counter from many goroutines: no lost update and no
// "database is locked" on SQLite, no deadlock failure on PostgreSQL.
func TestConcurrentWriters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := open(t, newURL())
		if err := db.Migrate(ctx, "widgets", migrations(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO widgets (name) VALUES ('c')`); err != nil {
			t.Fatal(err)
		}
		lock := ""
		if db.Dialect() == store.Postgres {
			lock = " FOR UPDATE"
		}
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					errs <- db.Tx(ctx, func(tx *sql.Tx) error {
						var c int64
						if err := tx.QueryRowContext(ctx, `SELECT count FROM widgets WHERE name = 'c'`+lock).Scan(&c); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, `UPDATE widgets SET count = $1 WHERE name = 'c'`, c+1)
						return err
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var c int64
		if err := db.SQL.QueryRowContext(ctx, `SELECT count FROM widgets WHERE name = 'c'`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != workers*each {
			t.Fatalf("count = %d, want %d", c, workers*each)
		}
	})
}

func TestOpenRejects(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"mysql://x", "unsupported URL"},
		{"sqlite:", "no path"},
		{"postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1", "open database"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			_, err := store.Open(context.Background(), tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) error = %v, want it to mention %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	got := store.Statements("-- c\nCREATE TABLE a (x INT);\n\nCREATE INDEX i ON a (x)\n  WHERE x > 0;\nSELECT 1")
	want := []string{"CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)\n  WHERE x > 0", "SELECT 1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Statements = %q, want %q", got, want)
	}
}

func TestMemory(t *testing.T) {
	db := open(t, "sqlite::memory:")
	if err := db.Migrate(context.Background(), "widgets", migrations(t)); err != nil {
		t.Fatal(err)
	}
	if db.Dialect() != store.SQLite {
		t.Fatalf("dialect %s", db.Dialect())
	}
}

func TestIn(t *testing.T) {
	if got := store.In(3, 3); got != "$3,$4,$5" {
		t.Fatalf("In(3, 3) = %q", got)
	}
}

// TestPoolMaxConns: pool_max_conns (pgxpool's parameter) sizes the pool and never reaches the
// server, which would reject it; a bad value is refused before anything connects.
func TestPoolMaxConns(t *testing.T) {
	url := pgtest.WithPool(pgtest.New(t), 2)
	db := open(t, url)
	if n := db.SQL.Stats().MaxOpenConnections; n != 2 {
		t.Fatalf("MaxOpenConnections = %d, want 2", n)
	}
	for _, bad := range []string{"0", "-1", "many"} {
		_, err := store.Open(context.Background(), strings.Replace(url, "pool_max_conns=2", "pool_max_conns="+bad, 1))
		if err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
			t.Fatalf("pool_max_conns=%s: err = %v", bad, err)
		}
	}
}
