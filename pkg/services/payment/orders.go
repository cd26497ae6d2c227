package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/services/httpapi"
	"github.com/come2us/opsctl/pkg/services/service"
)

// Orders is what payment-service asks order-service before it charges anything: the order's
// payable amount and state. *OrderClient implements it over order-service's HTTP API; tests may
// run the real order-service in-process.
type Orders interface {
	Order(ctx context.Context, id int64) (OrderInfo, error)
}

// OrderInfo is the part of order-service's order that a payment is checked against.
type OrderInfo struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
	Amount int64  `json:"amount"`
}

// orderPending is order-service's state of an order awaiting its payment result (its API's
// "status" field); only such an order may be charged.
const orderPending = "PENDING"

// ErrOrderNotFound is Orders' answer for an order that does not exist.
var ErrOrderNotFound = errors.New("order not found")

// OrderClient reads orders from order-service's internal API (GET /internal/orders/{id}: the id,
// state and payable amount, one indexed read).
type OrderClient struct {
	base string
	http *http.Client
}

// NewOrderClient returns a client for order-service at baseURL; httpClient may be nil for one with
// a 5-second timeout (the check holds up a customer's payment).
func NewOrderClient(baseURL string, httpClient *http.Client) *OrderClient {
	if httpClient == nil {
		httpClient = httpapi.NewHTTPClient(5 * time.Second)
	}
	return &OrderClient{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// Order reads order id, or ErrOrderNotFound.
func (c *OrderClient) Order(ctx context.Context, id int64) (OrderInfo, error) {
	var o OrderInfo
	err := httpapi.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/internal/orders/%d", c.base, id), nil, &o)
	var ae *service.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == service.CodeNotFound {
		return o, fmt.Errorf("order %d: %w", id, ErrOrderNotFound)
	}
	if err != nil {
		return o, fmt.Errorf("read order %d: %w", id, err)
	}
	return o, nil
}
