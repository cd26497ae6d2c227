package store_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/pgtest"
	"github.com/come2us/opsctl/pkg/services/store"
)

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
		db := dbtest.Open(t, newURL())
		// Twice: the second run must apply nothing.
		for range 2 {
			if err := db.Migrate(ctx, "widgets", migrations(t)); err != nil {
				t.Fatal(err)
			}
		}
		var applied int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM goose_widgets WHERE version_id > 0 AND is_applied`).Scan(&applied); err != nil {
			t.Fatal(err)
		}
		if applied != 2 {
			t.Fatalf("goose_widgets records %d applied migrations, want 2", applied)
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
		if err == nil || store.IsUniqueViolation(err) || store.IsCheckViolation(err) {
			t.Fatalf("bad column: err=%v", err)
		}
		// Query runs a writing statement that returns rows, alone.
		var names []string
		err = db.Query(ctx, `INSERT INTO widgets (name) VALUES ($1), ($2) RETURNING name`, []any{"q1", "q2"}, func(rows *sql.Rows) error {
			names = names[:0]
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return err
				}
				names = append(names, n)
			}
			return nil
		})
		if slices.Sort(names); err != nil || !slices.Equal(names, []string{"q1", "q2"}) {
			t.Fatalf("Query returned %v, %v; want q1 and q2", names, err)
		}
		// So are CHECK violations.
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE counts (n BIGINT NOT NULL CHECK (n >= 0))`); err != nil {
			t.Fatal(err)
		}
		_, err = db.SQL.ExecContext(ctx, `INSERT INTO counts (n) VALUES (-1)`)
		if !store.IsCheckViolation(err) || store.IsUniqueViolation(err) {
			t.Fatalf("negative count: %v is not recognised as a check violation", err)
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
		db := dbtest.Open(t, newURL())
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

// TestExec: single-statement writes outside Tx, concurrent with each other and with Tx writers,
// on both engines: none is lost and RETURNING comes back.
func TestExec(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		if err := db.Migrate(ctx, "widgets", migrations(t)); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := db.ExecReturning(ctx, `INSERT INTO widgets (name) VALUES ($1) RETURNING id`, []any{"e"}, &id); err != nil || id <= 0 {
			t.Fatalf("ExecReturning: id %d, %v", id, err)
		}
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers*each)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if w%2 == 0 {
						res, err := db.Exec(ctx, `UPDATE widgets SET count = count + 1 WHERE id = $1`, id)
						if err == nil {
							if n, _ := res.RowsAffected(); n != 1 {
								err = errors.New("Exec: the update touched no row")
							}
						}
						errs <- err
						continue
					}
					errs <- db.Tx(ctx, func(tx *sql.Tx) error {
						_, err := tx.ExecContext(ctx, `UPDATE widgets SET count = count + 1 WHERE id = $1`, id)
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
		if err := db.SQL.QueryRowContext(ctx, `SELECT count FROM widgets WHERE id = $1`, id).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != workers*each {
			t.Fatalf("count = %d, want %d", c, workers*each)
		}
		if _, err := db.Exec(ctx, `INSERT INTO widgets (id, name) VALUES ($1, 'dup')`, id); !store.IsUniqueViolation(err) {
			t.Fatalf("Exec of a duplicate: %v, want a unique violation", err)
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

// TestMigrationKeepsASemicolonInAString: the hand-written splitter this replaced cut statements at
// every line ending in ";", even inside a string literal.
func TestMigrationKeepsASemicolonInAString(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		sub, err := fs.Sub(os.DirFS("testdata"), "semicolon")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, "notes", sub); err != nil {
			t.Fatal(err)
		}
		var body string
		if err := db.SQL.QueryRowContext(ctx, `SELECT body FROM notes`).Scan(&body); err != nil {
			t.Fatal(err)
		}
		if want := "first line;\nsecond line; -- not a comment"; body != want {
			t.Fatalf("body = %q, want %q", body, want)
		}
	})
}

// TestMigrateAdoptsSchemaMigrations: a database migrated before goose lists its applied files in
// schema_migrations; they are not run again (0001 would fail: its table exists), later ones are.
func TestMigrateAdoptsSchemaMigrations(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		body, err := fs.ReadFile(migrations(t), "0001_init.sql")
		if err != nil {
			t.Fatal(err)
		}
		legacy := []string{
			`CREATE TABLE schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL, PRIMARY KEY (component, version))`,
			`INSERT INTO schema_migrations VALUES ('widgets', 1, '0001_init.sql', 0)`,
			`INSERT INTO schema_migrations VALUES ('other', 1, '0001_other.sql', 0)`,
		}
		var ddl []string
		for _, line := range strings.Split(db.Render(string(body)), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "--") {
				ddl = append(ddl, line)
			}
		}
		for _, stmt := range strings.Split(strings.Join(ddl, "\n"), ";") {
			if strings.TrimSpace(stmt) != "" {
				legacy = append(legacy, stmt)
			}
		}
		for _, stmt := range legacy {
			if _, err := db.SQL.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := db.Migrate(ctx, "widgets", migrations(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO widgets (name, note) VALUES ('a', 'from 0002')`); err != nil {
			t.Fatalf("0002 was not applied: %v", err)
		}
	})
}

// TestConcurrentMigrations starts several replicas' migrations at once: each file runs once and
// every replica succeeds.
func TestConcurrentMigrations(t *testing.T) {
	url := pgtest.New(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(ctx, url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx, "widgets", migrations(t))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestMemory(t *testing.T) {
	db := dbtest.Open(t, "sqlite::memory:")
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
	db := dbtest.Open(t, url)
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

// TestSerializedTx: transactions of one key run one at a time — eight workers adding to a counter
// with a read and a write each never overlap and lose nothing — and one whose fn fails is rolled
// back, leaving its connection fit for the next user.
func TestSerializedTx(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE counter (n BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO counter VALUES (0)`); err != nil {
			t.Fatal(err)
		}
		var inside, overlapped atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					err := db.SerializedTx(ctx, 42, func(q store.Execer) error {
						if inside.Add(1) > 1 {
							overlapped.Add(1)
						}
						defer inside.Add(-1)
						var n int64
						if err := q.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
							return err
						}
						_, err := q.ExecContext(ctx, `UPDATE counter SET n = $1`, n+1)
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		var n int64
		if err := db.SQL.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil || n != 80 {
			t.Fatalf("counter = %d, %v after 80 serialised increments", n, err)
		}
		if overlapped.Load() != 0 {
			t.Fatalf("%d transactions of one key overlapped", overlapped.Load())
		}
		boom := errors.New("boom")
		err := db.SerializedTx(ctx, 42, func(q store.Execer) error {
			if _, err := q.ExecContext(ctx, `UPDATE counter SET n = 0`); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("SerializedTx = %v, want fn's error", err)
		}
		for range 4 { // every pooled connection is outside a transaction: the next write commits
			if _, err := db.SQL.ExecContext(ctx, `UPDATE counter SET n = n + 1`); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.SQL.QueryRowContext(ctx, `SELECT n FROM counter`).Scan(&n); err != nil || n != 84 {
			t.Fatalf("counter = %d, %v; want the failed transaction undone and the 4 writes after it kept", n, err)
		}
	})
}
