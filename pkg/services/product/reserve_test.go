package product_test

import (
	"context"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/store"
)

// TestRepeatedReservationInFlight: order-service repeats a reservation whose first call is still
// committing (its answer was lost). The repeat waits for the first, then answers like any repeat —
// the lines are reserved — and takes no stock a second time.
func TestRepeatedReservationInFlight(t *testing.T) {
	ctx := context.Background()
	url := dbtest.URLs(t, dbtest.Postgres)()
	s := openStore(t, url)
	p, err := s.CreateProduct(ctx, "T-shirt", []product.NewOption{{Name: "S", Price: 1000, Stock: 10}})
	if err != nil {
		t.Fatal(err)
	}
	opt := p.Options[0].ID
	line := []product.Line{{OrderDetailID: 501, OptionValueID: opt, Quantity: 3}}

	// The first call, held open before its commit: its reservation row and its stock taken.
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Rollback() }()
	if _, err := first.ExecContext(ctx, `INSERT INTO reservations (order_detail_id, order_id, option_value_id, quantity, state, created_at)
		VALUES (501, 5, $1, 3, 'RESERVED', 1)`, opt); err != nil {
		t.Fatal(err)
	}
	if _, err := first.ExecContext(ctx, `UPDATE option_values SET stock = stock - 3 WHERE id = $1`, opt); err != nil {
		t.Fatal(err)
	}

	repeat := make(chan error, 1)
	go func() {
		_, err := s.Reserve(ctx, 5, line)
		repeat <- err
	}()
	// The repeat is waiting on the first call's row.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO reservations%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-repeat:
			t.Fatalf("the repeat finished before the first call committed: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the repeat never waited for the first call")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-repeat; err != nil {
		t.Fatalf("repeated reservation: %v", err)
	}
	if got := stockOf(t, s, opt); got != 7 {
		t.Fatalf("stock %d after one reservation of 3 of 10, repeated", got)
	}
}
