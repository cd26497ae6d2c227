// Package httpapi is the JSON-over-HTTP contract the SAGA services speak: the error answer every
// service returns (APIError) and the call a client makes (Call). It is small on purpose: the
// services' API clients (orderapi, productapi) and opsctl's order trace build on it without
// linking a service.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// APIError is an error answer: an HTTP status and a JSON body {"code", "message"} plus optional
// details. Messages say what was rejected and whether anything changed.
type APIError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Error renders the status, code and message.
func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// With returns e with a detail added.
func (e *APIError) With(key string, v any) *APIError {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = v
	return e
}

// Call sends a JSON request to another service and decodes the JSON answer into out (when not
// nil). An error answer comes back as *APIError with the status and the callee's code and message;
// no answer at all as a wrapped transport error. The trace context of ctx is sent along, so the
// callee's spans join the caller's trace. headers may add request headers (e.g. Idempotency-Key).
func Call(ctx context.Context, hc *http.Client, method, url string, body, out any, headers ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, url, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	if resp.StatusCode >= 400 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(raw, ae) != nil || ae.Code == "" {
			ae.Code = fmt.Sprintf("HTTP_%d", resp.StatusCode)
			ae.Message = strings.TrimSpace(string(raw[:min(len(raw), 300)]))
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer %d is not the expected JSON: %w", method, url, resp.StatusCode, err)
		}
	}
	return nil
}

// MaxIdlePerHost is how many idle connections a client made by NewHTTPClient keeps open to each
// service: as many as the calls a busy caller has in flight at once, so that steady traffic reuses
// its connections.
const MaxIdlePerHost = 64

// NewHTTPClient returns the client a service API client uses when its caller gives none: timeout
// bounds each call, and up to MaxIdlePerHost connections per service stay open between calls.
// net/http's default transport keeps two, so a caller with more calls in flight than that dials a
// new connection for most of them and leaves the old ones in TIME_WAIT — a TCP handshake per call
// and, under load, a pile of sockets.
func NewHTTPClient(timeout time.Duration) *http.Client {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: 90 * time.Second}
	}
	t.MaxIdleConnsPerHost = MaxIdlePerHost
	t.MaxIdleConns = 4 * MaxIdlePerHost
	return &http.Client{Timeout: timeout, Transport: t}
}

// propagator carries the W3C trace context and baggage, as the services' own tracing does.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
