// Package pgtest gives a test its own, empty PostgreSQL database on the server named by
// OPSCTL_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres), and drops it when
// the test ends.
//
// When the server cannot be reached the test is skipped with a message saying so — unless
// OPSCTL_REQUIRE_POSTGRES=1, as CI sets it, in which case the test fails: a CI run must never
// pass by skipping the database tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server tried when OPSCTL_TEST_POSTGRES is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the admin URL of the test server.
func ServerURL() string {
	if u := os.Getenv("OPSCTL_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Required reports whether PostgreSQL tests must run (CI).
func Required() bool { return os.Getenv("OPSCTL_REQUIRE_POSTGRES") == "1" }

// New creates a fresh database and returns its URL. The database is dropped at cleanup.
func New(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := ServerURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if Required() {
			tb.Fatalf("PostgreSQL is required (OPSCTL_REQUIRE_POSTGRES=1) but %s is not reachable: %v", redact(admin), err)
		}
		tb.Skipf("SKIP: PostgreSQL not reachable at %s (%v); set OPSCTL_TEST_POSTGRES to run this test", redact(admin), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "opsctl_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
