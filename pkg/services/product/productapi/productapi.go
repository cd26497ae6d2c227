// Package productapi is product-service's HTTP API as its clients see it: products, options,
// the reservation contract order-service relies on (its limits and error codes) and a Client.
// order-service and the storefront use it without linking product-service.
package productapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/services/httpapi"
)

// Client calls product-service's HTTP API. Error answers come back as *httpapi.APIError.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the service at baseURL; httpClient may be nil for one with a
// 5-second timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = httpapi.NewHTTPClient(5 * time.Second)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// CreateProduct creates a product with options.
func (c *Client) CreateProduct(ctx context.Context, name string, opts []NewOption) (Product, error) {
	var p Product
	err := httpapi.Call(ctx, c.http, http.MethodPost, c.base+"/products", CreateProductRequest{Name: name, Options: opts}, &p)
	return p, err
}

// Product reads a product with its options.
func (c *Client) Product(ctx context.Context, id int64) (Product, error) {
	var p Product
	err := httpapi.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/products/%d", c.base, id), nil, &p)
	return p, err
}

// Options reads the options with the given ids; unknown ids are left out of the answer.
func (c *Client) Options(ctx context.Context, ids []int64) ([]Option, error) {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	var out OptionsResponse
	err := httpapi.Call(ctx, c.http, http.MethodGet, c.base+"/options?ids="+strings.Join(parts, ","), nil, &out)
	return out.Options, err
}

// Reserve reserves stock for an order's lines, all or nothing; repeating it is safe.
func (c *Client) Reserve(ctx context.Context, req ReserveRequest) (ReserveResponse, error) {
	var out ReserveResponse
	err := httpapi.Call(ctx, c.http, http.MethodPost, c.base+"/reservations", req, &out)
	return out, err
}

// Reservations lists the reservation rows of an order.
func (c *Client) Reservations(ctx context.Context, orderID int64) ([]Reservation, error) {
	var out ReservationsResponse
	err := httpapi.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/reservations?orderId=%d", c.base, orderID), nil, &out)
	return out.Reservations, err
}

// Product is a product with its options.
type Product struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Options   []Option  `json:"options"`
	CreatedAt time.Time `json:"createdAt"`
}

// Option is a sellable option of a product (its id is the optionValueId of orders).
type Option struct {
	ID        int64  `json:"id"`
	ProductID int64  `json:"productId"`
	Name      string `json:"name"`
	Price     int64  `json:"price"`
	Stock     int64  `json:"stock"`
}

// NewOption describes an option to create.
type NewOption struct {
	Name  string `json:"name"`
	Price int64  `json:"price"`
	Stock int64  `json:"stock"`
}

// Line is one order line to reserve.
type Line struct {
	OrderDetailID int64 `json:"orderDetailId"`
	OptionValueID int64 `json:"optionValueId"`
	Quantity      int64 `json:"quantity"`
}

// ReservedLine is a reserved line with the option's unit price.
type ReservedLine struct {
	Line
	UnitPrice int64 `json:"unitPrice"`
}

// Reservation is one line's row in the reservations table.
type Reservation struct {
	Line
	OrderID int64  `json:"orderId"`
	State   string `json:"state"`
}

// Request limits of the reservation API.
const (
	MaxLines    = 100
	MaxQuantity = 1000
)

// CreateProductRequest is the body of POST /products.
type CreateProductRequest struct {
	Name    string      `json:"name"`
	Options []NewOption `json:"options"`
}

// OptionsResponse is the answer of GET /options.
type OptionsResponse struct {
	Options []Option `json:"options"`
}

// ReserveRequest is the body of POST /reservations.
type ReserveRequest struct {
	OrderID int64  `json:"orderId"`
	Lines   []Line `json:"lines"`
}

// ReserveResponse is the answer of POST /reservations.
type ReserveResponse struct {
	OrderID int64          `json:"orderId"`
	Lines   []ReservedLine `json:"lines"`
}

// ReservationsResponse is the answer of GET /reservations?orderId=N.
type ReservationsResponse struct {
	Reservations []Reservation `json:"reservations"`
}

// Error codes of the reservation API.
const (
	CodeOptionNotFound   = "OPTION_NOT_FOUND"
	CodeStockShort       = "STOCK_SHORT"
	CodeLineCompensated  = "LINE_COMPENSATED"
	CodeReservationClash = "RESERVATION_CONFLICT"
	// CodeRestoreMismatch: an orders-failed event does not match the line's reservation.
	CodeRestoreMismatch = "RESTORE_MISMATCH"
)
