package httpapi_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/come2us/opsctl/pkg/services/order/orderapi"
	"github.com/come2us/opsctl/pkg/services/payment"
	"github.com/come2us/opsctl/pkg/services/product/productapi"
)

// TestClientsKeepTheirConnections drives each service API client, made without an http.Client of
// its own, with 16 calls in flight at once, twice: the second round must reuse the connections of
// the first instead of dialling new ones.
func TestClientsKeepTheirConnections(t *testing.T) {
	const inFlight = 16
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, url string) func() error
	}{
		{"orderapi", func(ctx context.Context, url string) func() error {
			c := orderapi.NewClient(url, nil)
			return func() error { _, err := c.Order(ctx, 1); return err }
		}},
		{"productapi", func(ctx context.Context, url string) func() error {
			c := productapi.NewClient(url, nil)
			return func() error { _, err := c.Options(ctx, []int64{1}); return err }
		}},
		{"payment order check", func(ctx context.Context, url string) func() error {
			c := payment.NewOrderClient(url, nil)
			return func() error { _, err := c.Order(ctx, 1); return err }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int64
			var arrived sync.WaitGroup
			var release atomic.Pointer[chan struct{}]
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// The first round's calls all wait for one another, so they are in flight at once.
				gate := *release.Load()
				arrived.Done()
				<-gate
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"id":1,"status":"PENDING","amount":1,"options":[]}`))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					dials.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			call := tc.call(context.Background(), srv.URL)

			for round := 1; round <= 2; round++ {
				arrived.Add(inFlight)
				gate := make(chan struct{})
				release.Store(&gate)
				var done sync.WaitGroup
				errs := make(chan error, inFlight)
				for range inFlight {
					done.Add(1)
					go func() {
						defer done.Done()
						errs <- call()
					}()
				}
				arrived.Wait()
				close(gate)
				done.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
			if n := dials.Load(); n > inFlight {
				t.Errorf("%d connections for two rounds of %d calls in flight; the second round should reuse the first's %d", n, inFlight, inFlight)
			}
		})
	}
}
