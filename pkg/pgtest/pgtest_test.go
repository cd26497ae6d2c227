package pgtest

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestNewIsolated(t *testing.T) {
	a, b := New(t), New(t)
	if a == b {
		t.Fatal("two tests got the same database")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, Plain(a))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Fatal(err)
	}
}

// TestNoFreeSlotIsNotUnreachable: a server out of connection slots answers with SQLSTATE 53300.
// That must come back as the server's own message, and never be taken for "not reachable" (which
// would skip the test). A role limited to one connection gives the same error on demand.
func TestNoFreeSlotIsNotUnreachable(t *testing.T) {
	ctx := context.Background()
	admin := Connect(t, ctx, ServerURL())
	defer admin.Close(ctx)
	role := "opsctl_test_slots"
	_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
	u, err := url.Parse(New(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	roleURL := Plain(u.String())
	held, err := pgx.Connect(ctx, roleURL)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(ctx)

	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = connect(cctx, roleURL)
	if err == nil || unreachable(err) || !tooManyClients(err) || !strings.Contains(err.Error(), "too many connections") {
		t.Fatalf("a server without a free slot: err = %v (unreachable=%v), want the server's 53300 message", err, err != nil && unreachable(err))
	}

	// Once the slot is free, the next attempt gets it.
	held.Close(ctx)
	conn, err := connect(ctx, roleURL)
	if err != nil {
		t.Fatalf("after the slot was freed: %v", err)
	}
	conn.Close(ctx)
}

// TestNothingListeningIsUnreachable: only an error from before any answer makes a test skip.
func TestNothingListeningIsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = connect(context.Background(), "postgres://postgres@"+addr+"/postgres?sslmode=disable&connect_timeout=2")
	if err == nil || !unreachable(err) {
		t.Fatalf("nothing listening: err = %v, want unreachable", err)
	}
}

func TestPoolParameter(t *testing.T) {
	u := WithPool("postgres://u@h:5432/db?sslmode=disable", 3)
	if !strings.Contains(u, "pool_max_conns=3") || strings.Contains(Plain(u), "pool_max_conns") || !strings.Contains(Plain(u), "sslmode=disable") {
		t.Fatalf("WithPool %q, Plain %q", u, Plain(u))
	}
}
