package order

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/service"
)

// Client calls order-service's HTTP API. Error answers come back as *service.APIError.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the service at baseURL; httpClient may be nil for one with a
// 30-second timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: httpClient}
}

// Place places an order.
func (c *Client) Place(ctx context.Context, req PlaceRequest) (Order, error) {
	var o Order
	err := service.Call(ctx, c.http, http.MethodPost, c.base+"/orders", req, &o)
	return o, err
}

// Order reads an order.
func (c *Client) Order(ctx context.Context, id int64) (Order, error) {
	var o Order
	err := service.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/orders/%d", c.base, id), nil, &o)
	return o, err
}

// IssueCoupon issues a coupon to a user.
func (c *Client) IssueCoupon(ctx context.Context, req IssueCouponRequest) (Coupon, error) {
	var cp Coupon
	err := service.Call(ctx, c.http, http.MethodPost, c.base+"/coupons", req, &cp)
	return cp, err
}

// Coupon reads a coupon.
func (c *Client) Coupon(ctx context.Context, id int64) (Coupon, error) {
	var cp Coupon
	err := service.Call(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/coupons/%d", c.base, id), nil, &cp)
	return cp, err
}
