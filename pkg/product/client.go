package product

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/service"
)

// Client calls product-service's HTTP API. Error answers come back as *service.APIError.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the service at baseURL; httpClient may be nil for one with a
// 5-second timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 5 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// CreateProduct creates a product with options.
func (c *Client) CreateProduct(ctx context.Context, name string, opts []NewOption) (Product, error) {
	var p Product
	err := service.Call(ctx, c.http, http.MethodPost, c.base+"/products", createProductRequest{Name: name, Options: opts}, &p)
	return p, err
}

// Product reads a product with its options.
func (c *Client) Product(ctx context.Context, id int64) (Product, error) {
	var p Product
	err := service.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/products/%d", c.base, id), nil, &p)
	return p, err
}

// Options reads the options with the given ids; unknown ids are left out of the answer.
func (c *Client) Options(ctx context.Context, ids []int64) ([]Option, error) {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	var out OptionsResponse
	err := service.Call(ctx, c.http, http.MethodGet, c.base+"/options?ids="+strings.Join(parts, ","), nil, &out)
	return out.Options, err
}

// Reserve reserves stock for an order's lines, all or nothing; repeating it is safe.
func (c *Client) Reserve(ctx context.Context, req ReserveRequest) (ReserveResponse, error) {
	var out ReserveResponse
	err := service.Call(ctx, c.http, http.MethodPost, c.base+"/reservations", req, &out)
	return out, err
}

// Reservations lists the reservation rows of an order.
func (c *Client) Reservations(ctx context.Context, orderID int64) ([]Reservation, error) {
	var out ReservationsResponse
	err := service.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/reservations?orderId=%d", c.base, orderID), nil, &out)
	return out.Reservations, err
}
