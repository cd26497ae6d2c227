// Package pgtest gives a test its own, empty PostgreSQL database on the server named by
// OPSCTL_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432/postgres), and drops it when
// the test ends.
//
// When no server listens there the test is skipped with the connection error — unless
// OPSCTL_REQUIRE_POSTGRES=1, as CI sets it, in which case the test fails: a CI run must never
// pass by skipping the database tests. A server that answers but refuses the connection (it has
// no free connection slot, say) is not "unreachable": the test waits a while for a slot and then
// fails with the server's own message, whatever OPSCTL_REQUIRE_POSTGRES says.
//
// The suite shares one server with everything else on the machine, so it keeps its connection
// use small: URLs from New carry pool_max_conns=MaxConns, which store.Open honours.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultURL is the server tried when OPSCTL_TEST_POSTGRES is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// MaxConns is the pool size the URLs New returns ask for (pool_max_conns). A SAGA test runs
// three services and the suite runs two packages at once, so the whole of `go test ./...` stays
// well under half of a default server's 100 connections.
const MaxConns = 3

// slotWait is how long Connect waits for a server with no free connection slot.
const slotWait = 60 * time.Second

// ServerURL returns the admin URL of the test server.
func ServerURL() string {
	if u := os.Getenv("OPSCTL_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Required reports whether PostgreSQL tests must run (CI).
func Required() bool { return os.Getenv("OPSCTL_REQUIRE_POSTGRES") == "1" }

// Connect opens one connection to url for a test. It skips the test when nothing answers there
// (unless Required), waits up to a minute while the server reports it has no free connection
// slot, and otherwise fails the test with the server's own message.
func Connect(tb testing.TB, ctx context.Context, url string) *pgx.Conn {
	tb.Helper()
	conn, err := connect(ctx, url)
	if err == nil {
		return conn
	}
	if unreachable(err) && !Required() {
		tb.Skipf("SKIP: PostgreSQL not reachable at %s: %v; set OPSCTL_TEST_POSTGRES to run this test", redact(url), err)
	}
	if unreachable(err) {
		tb.Fatalf("PostgreSQL is required (OPSCTL_REQUIRE_POSTGRES=1) but %s is not reachable: %v", redact(url), err)
	}
	tb.Fatalf("PostgreSQL at %s refused a connection: %v", redact(url), err)
	return nil
}

// connect dials url, retrying for slotWait while the server answers "too many clients".
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	deadline := time.Now().Add(slotWait)
	wait := 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgx.Connect(cctx, url)
		cancel()
		if err == nil || !tooManyClients(err) || time.Now().After(deadline) {
			if err != nil && tooManyClients(err) {
				err = fmt.Errorf("still no free connection slot after %s: %w", slotWait, err)
			}
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waiting for a free connection slot: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// tooManyClients reports the server's "sorry, too many clients already" (SQLSTATE 53300) and
// "remaining connection slots are reserved" (53300 too).
func tooManyClients(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300"
}

// unreachable reports an error that came before any answer of the server: nothing listens, or
// the address does not resolve. An error the server sent (a PgError) is never one.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	return !errors.As(err, &pgErr)
}

// New creates a fresh database and returns its URL, which asks store.Open for a pool of
// MaxConns. The database is dropped at cleanup.
func New(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slotWait+10*time.Second)
	defer cancel()
	admin := ServerURL()
	conn := Connect(tb, ctx, admin)
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "opsctl_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), slotWait+10*time.Second)
		defer cancel()
		c, err := connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse %s: %v", redact(admin), err)
	}
	u.Path = "/" + name
	return WithPool(u.String(), MaxConns)
}

// WithPool returns url with pool_max_conns=n, the parameter store.Open sizes its pool by. Strip it
// (Plain) before handing the URL to pgx directly: the server rejects it as a run-time parameter.
func WithPool(raw string, n int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("pool_max_conns", fmt.Sprint(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// Plain returns url without pool_max_conns, for pgx.Connect.
func Plain(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
