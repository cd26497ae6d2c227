// Package orderapi is order-service's HTTP API as its clients see it: the order, coupon and
// request types and a Client. opsctl's order trace, the storefront and the tests use it without
// linking the service.
package orderapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/services/httpapi"
)

// Client calls order-service's HTTP API. Error answers come back as *httpapi.APIError.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the service at baseURL; httpClient may be nil for one with a
// 30-second timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = httpapi.NewHTTPClient(30 * time.Second)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// Place places an order.
func (c *Client) Place(ctx context.Context, req PlaceRequest) (Order, error) {
	var o Order
	err := httpapi.Call(ctx, c.http, http.MethodPost, c.base+"/orders", req, &o)
	return o, err
}

// Order reads an order.
func (c *Client) Order(ctx context.Context, id int64) (Order, error) {
	var o Order
	err := httpapi.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/orders/%d", c.base, id), nil, &o)
	return o, err
}

// IssueCoupon issues a coupon to a user.
func (c *Client) IssueCoupon(ctx context.Context, req IssueCouponRequest) (Coupon, error) {
	var cp Coupon
	err := httpapi.Call(ctx, c.http, http.MethodPost, c.base+"/coupons", req, &cp)
	return cp, err
}

// Coupon reads a coupon.
func (c *Client) Coupon(ctx context.Context, id int64) (Coupon, error) {
	var cp Coupon
	err := httpapi.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/coupons/%d", c.base, id), nil, &cp)
	return cp, err
}

// Order is an order with its lines.
type Order struct {
	ID             int64     `json:"id"`
	UserID         string    `json:"userId"`
	Status         string    `json:"status"`
	TotalAmount    int64     `json:"totalAmount"`
	DiscountAmount int64     `json:"discountAmount"`
	Amount         int64     `json:"amount"`
	CouponID       *int64    `json:"couponId,omitempty"`
	PaymentKey     string    `json:"paymentKey,omitempty"`
	FailureCode    string    `json:"failureCode,omitempty"`
	FailureReason  string    `json:"failureReason,omitempty"`
	Lines          []Line    `json:"lines"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// Line is one order line (its ID is the orderDetailId).
type Line struct {
	ID            int64 `json:"id"`
	OptionValueID int64 `json:"optionValueId"`
	Quantity      int64 `json:"quantity"`
	UnitPrice     int64 `json:"unitPrice"`
}

// Coupon is a discount issued to a user.
type Coupon struct {
	ID             int64  `json:"id"`
	UserID         string `json:"userId"`
	DiscountAmount int64  `json:"discountAmount"`
	MinOrderAmount int64  `json:"minOrderAmount"`
	Status         string `json:"status"`
	OrderID        *int64 `json:"orderId,omitempty"`
	RestoredCount  int    `json:"restoredCount"`
}

// PlaceRequest is the body of POST /orders.
type PlaceRequest struct {
	UserID   string      `json:"userId"`
	Lines    []PlaceLine `json:"lines"`
	CouponID *int64      `json:"couponId,omitempty"`
}

// PlaceLine is one requested line.
type PlaceLine struct {
	OptionValueID int64 `json:"optionValueId"`
	Quantity      int64 `json:"quantity"`
}

// IssueCouponRequest is the body of POST /coupons.
type IssueCouponRequest struct {
	UserID         string `json:"userId"`
	DiscountAmount int64  `json:"discountAmount"`
	MinOrderAmount int64  `json:"minOrderAmount"`
}
