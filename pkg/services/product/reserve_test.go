package product_test

import (
	"context"
	"errors"
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
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&waiting); err != nil {
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

// TestConcurrentReservations: 40 orders race for two options with stock for 20, each wanting one
// of both, their lines in either order, while 10 already-reserved orders are compensated.
// Exactly 20 + 10 are reserved in the end, all or nothing each — the rest are refused as short
// with nothing taken — and stock is conserved: initial = on hand + reserved.
func TestConcurrentReservations(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		url := newURL()
		s := openStore(t, url)
		db, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		p, err := s.CreateProduct(ctx, "T-shirt", []product.NewOption{{Name: "S", Price: 1000, Stock: 30}, {Name: "M", Price: 1500, Stock: 30}})
		if err != nil {
			t.Fatal(err)
		}
		a, b := p.Options[0].ID, p.Options[1].ID
		pair := func(order int64) []product.Line {
			ls := []product.Line{{OrderDetailID: 2 * order, OptionValueID: a, Quantity: 1}, {OrderDetailID: 2*order + 1, OptionValueID: b, Quantity: 1}}
			if order%2 == 1 {
				ls[0], ls[1] = ls[1], ls[0]
			}
			return ls
		}
		for o := int64(1); o <= 10; o++ { // to be compensated during the race
			if _, err := s.Reserve(ctx, o, pair(o)); err != nil {
				t.Fatal(err)
			}
		}
		start := make(chan struct{})
		errs := make(chan error, 60)
		for o := int64(100); o < 140; o++ {
			go func() {
				<-start
				_, err := s.Reserve(ctx, o, pair(o))
				errs <- err
			}()
		}
		for o := int64(1); o <= 10; o++ {
			go func() {
				<-start
				for _, l := range pair(o) {
					if _, err := s.Restore(ctx, orderFailed(o, l.OrderDetailID, l.OptionValueID, 1)); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		close(start)
		var failed int
		for range 50 {
			err := <-errs
			var oe *product.OptionError
			switch {
			case err == nil:
			case errors.As(err, &oe) && errors.Is(err, product.ErrStockShort):
				failed++
			default:
				t.Fatalf("a reservation or restore failed with %v, want success or stock short", err)
			}
		}
		var reservedA, reservedB, orders int64
		if err := db.SQL.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN option_value_id = $1 THEN quantity END), 0),
			COALESCE(SUM(CASE WHEN option_value_id = $2 THEN quantity END), 0),
			COUNT(DISTINCT order_id) FROM reservations WHERE state = 'RESERVED'`, a, b).Scan(&reservedA, &reservedB, &orders); err != nil {
			t.Fatal(err)
		}
		if got := stockOf(t, s, a) + reservedA; got != 30 {
			t.Fatalf("option S: on hand %d + reserved %d != 30", stockOf(t, s, a), reservedA)
		}
		if got := stockOf(t, s, b) + reservedB; got != 30 {
			t.Fatalf("option M: on hand %d + reserved %d != 30", stockOf(t, s, b), reservedB)
		}
		if reservedA != reservedB || reservedA != orders {
			t.Fatalf("%d of S and %d of M reserved for %d orders: some order was reserved in part", reservedA, reservedB, orders)
		}
		if orders+int64(failed) != 40 || orders < 20 {
			t.Fatalf("%d orders reserved and %d refused of 40 racing, with stock for at least 20", orders, failed)
		}
	})
}
