// Package dbtest runs a test against both database engines the services support: SQLite (always
// available) and PostgreSQL (through pgtest, so it skips visibly without a server and fails when
// CI requires one).
package dbtest

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/pgtest"
	"github.com/come2us/opsctl/pkg/services/store"
)

// Engine names a subtest's database engine.
type Engine string

// The engines ForEach runs.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// NewURL returns the URL of a fresh, empty database on the subtest's engine; call it once per
// database the test needs.
type NewURL func() string

// ForEach runs fn as one subtest per engine.
func ForEach(t *testing.T, fn func(t *testing.T, newURL NewURL)) {
	t.Helper()
	for _, e := range []Engine{SQLite, Postgres} {
		t.Run(string(e), func(t *testing.T) {
			fn(t, URLs(t, e))
		})
	}
}

// URLs returns a NewURL for engine e whose databases are removed when t ends.
//
// On PostgreSQL every URL asks for a pool of pgtest.MaxConns connections, and every "database" after the first call is a fresh schema of one test database,
// selected with the search_path connection parameter: creating and dropping a PostgreSQL database
// takes about a second, a schema milliseconds. The services never qualify table names, so a
// schema isolates them as well as a database would.
func URLs(t testing.TB, e Engine) NewURL {
	n := 0
	var base string
	return func() string {
		t.Helper()
		n++
		if e == SQLite {
			return "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("db%d.db", n))
		}
		if base == "" {
			base = pgtest.New(t)
		}
		schema := fmt.Sprintf("svc%d", n)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		conn := pgtest.Connect(t, ctx, pgtest.Plain(base))
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema %s: %v", schema, err)
		}
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parse test database URL: %v", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
}

// Open opens the database at url (see store.Open) and closes it when the test ends.
func Open(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
