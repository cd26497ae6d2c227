package order_test

import (
	"context"
	"testing"

	"github.com/come2us/opsctl/pkg/dbtest"
	"github.com/come2us/opsctl/pkg/services/order"
)

// TestCreateKeepsLineOrder: the lines of a new order, two of them alike in every value, come
// back in the order given, each with its own id, as a read of the order shows them.
func TestCreateKeepsLineOrder(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, newURL dbtest.NewURL) {
		ctx := context.Background()
		db := dbtest.Open(t, newURL())
		st, err := order.NewStore(ctx, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		lines := []order.Line{
			{OptionValueID: 7, Quantity: 1, UnitPrice: 500},
			{OptionValueID: 3, Quantity: 2, UnitPrice: 900},
			{OptionValueID: 7, Quantity: 1, UnitPrice: 500},
			{OptionValueID: 7, Quantity: 2, UnitPrice: 500},
		}
		o, err := st.Create(ctx, order.NewOrder{UserID: "u", Lines: lines})
		if err != nil {
			t.Fatal(err)
		}
		if o.TotalAmount != 500+1800+500+1000 {
			t.Fatalf("total %d", o.TotalAmount)
		}
		seen := map[int64]bool{}
		for i, l := range o.Lines {
			want := lines[i]
			if l.OptionValueID != want.OptionValueID || l.Quantity != want.Quantity || l.UnitPrice != want.UnitPrice || l.ID <= 0 || seen[l.ID] {
				t.Fatalf("line %d = %+v, want %+v with an id of its own (lines %+v)", i, l, want, o.Lines)
			}
			seen[l.ID] = true
		}
		if o.Lines[0].ID > o.Lines[2].ID {
			t.Fatalf("alike lines 0 and 2 got ids %d and %d, want them in the order given", o.Lines[0].ID, o.Lines[2].ID)
		}
		got, err := st.Get(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[int64]order.Line{}
		for _, l := range got.Lines {
			byID[l.ID] = l
		}
		for _, l := range o.Lines {
			if byID[l.ID] != l {
				t.Fatalf("stored line %d = %+v, created %+v", l.ID, byID[l.ID], l)
			}
		}
	})
}
