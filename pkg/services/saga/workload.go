package saga

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/come2us/opsctl/pkg/services/order"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/product"
	"github.com/come2us/opsctl/pkg/services/service"
)

// SeedCatalog creates products, each with optionsEach options of the given price and stock, and
// returns all options.
func (s *System) SeedCatalog(ctx context.Context, products, optionsEach int, price, stock int64) ([]product.Option, error) {
	var out []product.Option
	for p := range products {
		opts := make([]product.NewOption, optionsEach)
		for o := range opts {
			opts[o] = product.NewOption{Name: fmt.Sprintf("option %d", o+1), Price: price, Stock: stock}
		}
		created, err := s.Products.CreateProduct(ctx, fmt.Sprintf("product %d", p+1), opts)
		if err != nil {
			return nil, fmt.Errorf("seed catalog: %w", err)
		}
		out = append(out, created.Options...)
	}
	return out, nil
}

// Checkout is the outcome of one customer journey.
type Checkout struct {
	Order      order.Order
	PaymentKey string
	// Declined is true when the payment was declined (the order will be compensated).
	Declined bool
}

// Checkout does what a storefront does: place the order, then confirm its payment with a fresh
// UUIDv4 Idempotency-Key and a payment key the in-memory PG declines when decline is set. A
// declined payment is a normal outcome, not an error.
func (s *System) Checkout(ctx context.Context, req order.PlaceRequest, decline bool) (Checkout, error) {
	o, err := s.Orders.Place(ctx, req)
	if err != nil {
		return Checkout{}, fmt.Errorf("place order: %w", err)
	}
	c := Checkout{Order: o, PaymentKey: fmt.Sprintf("tpk_%d_%s", o.ID, uuid.NewString()[:8])}
	if decline {
		c.PaymentKey = "fail_" + c.PaymentKey
	}
	_, err = s.Payments.Confirm(ctx, uuid.NewString(), payment.ConfirmRequest{PaymentKey: c.PaymentKey, OrderID: o.ID, Amount: o.Amount})
	if err != nil {
		if decline && isDecline(err) {
			c.Declined = true
			return c, nil
		}
		return c, fmt.Errorf("confirm payment of order %d: %w", o.ID, err)
	}
	return c, nil
}

func isDecline(err error) bool {
	var ae *service.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusPaymentRequired
}
