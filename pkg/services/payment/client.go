package payment

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/services/httpapi"
)

// Client calls payment-service's HTTP API. A declined payment comes back as *httpapi.APIError
// with status 402 and the PG's code.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the service at baseURL; httpClient may be nil for one with a
// 30-second timeout (a confirm waits for the PG).
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = httpapi.NewHTTPClient(30 * time.Second)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// Confirm confirms a payment under the client-generated idempotencyKey (a UUIDv4).
func (c *Client) Confirm(ctx context.Context, idempotencyKey string, req ConfirmRequest) (ConfirmResponse, error) {
	var out ConfirmResponse
	err := httpapi.Call(ctx, c.http, http.MethodPost, c.base+"/payments/confirm", req, &out, "Idempotency-Key", idempotencyKey)
	return out, err
}

// Payments lists the confirm requests of an order (payment keys masked).
func (c *Client) Payments(ctx context.Context, orderID int64) ([]Record, error) {
	var out PaymentsResponse
	err := httpapi.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/payments?orderId=%d", c.base, orderID), nil, &out)
	return out.Payments, err
}

// Resolve asks where the payments of orderIDs stand (at most MaxResolve), after payment-service
// reconciled those whose outcome was unknown; with void, orders without a payment are closed to
// payments. It is order-service's internal call before it cancels orders nobody paid.
func (c *Client) Resolve(ctx context.Context, orderIDs []int64, void bool) ([]OrderPayment, error) {
	var out ResolveResponse
	err := httpapi.Call(ctx, c.http, http.MethodPost, c.base+"/internal/payments/resolve", ResolveRequest{OrderIDs: orderIDs, Void: void}, &out)
	if err != nil {
		return nil, err
	}
	if len(out.Orders) != len(orderIDs) {
		return nil, fmt.Errorf("payment-service answered for %d of %d orders", len(out.Orders), len(orderIDs))
	}
	return out.Orders, nil
}
