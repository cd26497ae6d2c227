// Package paymentgateway talks to the payment gateway (PG) with the shape of Toss Payments' API: confirm is
// POST {base}/v1/payments/confirm with Basic authentication (the secret key as user name, empty
// password), an Idempotency-Key header and {paymentKey, orderId, amount}; the lookup of an
// order's payment is GET {base}/v1/payments/orders/{orderId}. The PG deduplicates confirms on the
// key, so a confirm can be retried safely with the same key (section 6.7), and the lookup tells
// what became of a confirm whose answer was lost.
//
// Server is a PG for tests and the sandbox that behaves the same way: idempotent per key,
// ALREADY_PROCESSED_PAYMENT for a payment key confirmed before, declines chosen by a policy, the
// lookup by order id, and faults a real gateway has — answers that fail, and answers that come
// late after the charge was made.
package paymentgateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/services/httpapi"
)

// Error codes of the Toss Payments API the services act on.
const (
	// CodeAlreadyProcessed says the payment was confirmed before: not a failure, and it must never
	// trigger compensation.
	CodeAlreadyProcessed = "ALREADY_PROCESSED_PAYMENT"
	// CodeRejectCard is a card company's decline.
	CodeRejectCard = "REJECT_CARD_PAYMENT"
	// CodeProviderError is a temporary error at the card company or bank.
	CodeProviderError = "PROVIDER_ERROR"
	// CodeUnauthorizedKey means the secret key is wrong.
	CodeUnauthorizedKey = "UNAUTHORIZED_KEY"
	// CodeInternal is the PG's own temporary failure.
	CodeInternal = "FAILED_INTERNAL_SYSTEM_PROCESSING"
	// CodeInvalidRequest is a malformed request.
	CodeInvalidRequest = "INVALID_REQUEST"
	// CodeIdempotentProcessing answers a repeat of a key whose first request is still running.
	CodeIdempotentProcessing = "IDEMPOTENT_REQUEST_PROCESSING"
	// CodeIdempotentMismatch answers a key reused for a different request.
	CodeIdempotentMismatch = "IDEMPOTENT_REQUEST_MISMATCH"
	// CodeNotFoundPayment answers a lookup of an order with no payment.
	CodeNotFoundPayment = "NOT_FOUND_PAYMENT"
)

// Payment states of Toss' Payment object that the services act on.
const (
	// StatusDone: the payment is approved (charged).
	StatusDone = "DONE"
	// StatusPartialCanceled: approved, then partly refunded — still charged.
	StatusPartialCanceled = "PARTIAL_CANCELED"
	// StatusCanceled: approved, then refunded in full.
	StatusCanceled = "CANCELED"
	// StatusAborted: the confirm failed (a decline); nothing was charged.
	StatusAborted = "ABORTED"
	// StatusExpired: never confirmed in time; nothing was charged.
	StatusExpired = "EXPIRED"
)

// ErrNoPayment is Lookup's answer for an order the PG holds no payment of.
var ErrNoPayment = errors.New("the payment gateway has no payment for this order")

// ConfirmRequest is the body of a confirm call. OrderID is a string in Toss' API.
type ConfirmRequest struct {
	PaymentKey string `json:"paymentKey"`
	OrderID    string `json:"orderId"`
	Amount     int64  `json:"amount"`
}

// Payment is the part of Toss' Payment object the services use.
type Payment struct {
	PaymentKey  string `json:"paymentKey"`
	OrderID     string `json:"orderId"`
	Status      string `json:"status"` // DONE once confirmed, ABORTED after a decline
	TotalAmount int64  `json:"totalAmount"`
	Method      string `json:"method,omitempty"`
	ApprovedAt  string `json:"approvedAt,omitempty"`
}

// Error is an error answer of the PG ({"code", "message"} with a 4xx or 5xx status).
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error renders the status, code and message.
func (e *Error) Error() string {
	return fmt.Sprintf("payment gateway answered %d %s: %s", e.Status, e.Code, e.Message)
}

// AlreadyProcessed reports whether the payment had been confirmed before.
func (e *Error) AlreadyProcessed() bool { return e.Code == CodeAlreadyProcessed }

// Declined reports whether the PG refused the payment for good — the customer's card, limit or
// account — as opposed to a temporary or configuration problem on either side. Only a decline
// starts compensation.
func (e *Error) Declined() bool {
	if e.Status < 400 || e.Status >= 500 {
		return false
	}
	switch e.Code {
	case CodeAlreadyProcessed, CodeProviderError, CodeUnauthorizedKey, "INVALID_API_KEY",
		"INCORRECT_BASIC_AUTH_FORMAT", CodeIdempotentProcessing, CodeIdempotentMismatch, CodeInvalidRequest:
		return false
	}
	return e.Status != http.StatusTooManyRequests && e.Status != http.StatusConflict &&
		e.Status != http.StatusUnauthorized
}

// Client calls the PG.
type Client struct {
	baseURL   string
	secretKey string
	http      *http.Client
}

// NewClient returns a client for the PG at baseURL (e.g. https://api.tosspayments.com).
// httpClient may be nil for one with a 10-second timeout.
func NewClient(baseURL, secretKey string, httpClient *http.Client) (*Client, error) {
	if baseURL == "" || secretKey == "" {
		return nil, errors.New("payment gateway: base URL and secret key are required")
	}
	if httpClient == nil {
		httpClient = httpapi.NewHTTPClient(10 * time.Second)
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), secretKey: secretKey, http: httpClient}, nil
}

// BasicAuth returns the Authorization header value for secretKey.
func BasicAuth(secretKey string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(secretKey+":"))
}

// Confirm approves a payment. A PG error answer is returned as *Error; anything else (no answer,
// an unreadable one) as a wrapped transport error, after which the outcome is unknown and the
// confirm should be repeated with the same idempotency key.
func (c *Client) Confirm(ctx context.Context, idempotencyKey string, req ConfirmRequest) (*Payment, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("confirm payment: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/v1/payments/confirm", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("confirm payment: %w", err)
	}
	hreq.Header.Set("Authorization", BasicAuth(c.secretKey))
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Idempotency-Key", idempotencyKey)
	p, err := c.do(hreq)
	var pe *Error
	if err != nil && !errors.As(err, &pe) {
		return nil, fmt.Errorf("confirm payment: %w", err)
	}
	return p, err
}

// Charged reports whether the payment took the customer's money and kept it (DONE or partly
// refunded).
func (p *Payment) Charged() bool { return p.Status == StatusDone || p.Status == StatusPartialCanceled }

// Failed reports whether the payment ended without taking money (ABORTED, EXPIRED) or gave all of
// it back (CANCELED).
func (p *Payment) Failed() bool {
	return p.Status == StatusAborted || p.Status == StatusExpired || p.Status == StatusCanceled
}

// Lookup reads the payment of orderID (Toss: GET /v1/payments/orders/{orderId}). An order the PG
// has no payment of yields ErrNoPayment; another PG error answer an *Error; no answer a wrapped
// transport error.
func (c *Client) Lookup(ctx context.Context, orderID string) (*Payment, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/v1/payments/orders/"+url.PathEscape(orderID), nil)
	if err != nil {
		return nil, fmt.Errorf("look up payment of order %s: %w", orderID, err)
	}
	hreq.Header.Set("Authorization", BasicAuth(c.secretKey))
	p, err := c.do(hreq)
	var pe *Error
	if errors.As(err, &pe) && pe.Code == CodeNotFoundPayment {
		return nil, fmt.Errorf("order %s: %w", orderID, ErrNoPayment)
	}
	if err != nil {
		return nil, fmt.Errorf("look up payment of order %s: %w", orderID, err)
	}
	return p, nil
}

// do sends hreq and reads a Payment or an *Error from the answer.
func (c *Client) do(hreq *http.Request) (*Payment, error) {
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		pe := &Error{Status: resp.StatusCode}
		if json.Unmarshal(raw, pe) != nil || pe.Code == "" {
			pe.Code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
			pe.Message = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		return nil, pe
	}
	var p Payment
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("answer %d is not a payment: %w", resp.StatusCode, err)
	}
	return &p, nil
}
