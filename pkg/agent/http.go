package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the agent's endpoints:
//
//	/healthz  liveness: 200 while the process serves requests. A frozen broker or a dead
//	          Kubernetes API does not fail it: restarting the agent would not help, it retries.
//	/readyz   readiness: 200 while every running component is healthy, 503 listing the
//	          failures otherwise (a standby agent's idle loops do not count).
//	/status   the Status as JSON.
//	/metrics  the agent's Prometheus series (when it has metrics).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := a.Status()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st.Healthy {
			fmt.Fprintf(w, "ok: %s %s\n", st.Role, st.Identity)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %s %s\n", st.Role, st.Identity)
		for _, c := range st.Components {
			if !c.Healthy && !c.Idle {
				fmt.Fprintf(w, "  %s since %s: %s\n", c.Name, c.Since.UTC().Format(time.RFC3339), c.Error)
			}
		}
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Status()) // a write error means the client went away
	})
	if m := a.cfg.Metrics; m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Timeout: 10 * time.Second}))
	}
	return mux
}

// Serve serves Handler on ln until ctx ends, then shuts the server down (waiting up to 5s for
// requests in flight).
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("agent HTTP server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("agent HTTP server shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("agent HTTP server: %w", err)
	}
	return nil
}
