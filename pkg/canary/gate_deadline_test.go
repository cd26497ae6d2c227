package canary

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/hangtest"
)

// deadlineRecorder passes requests on and records how much time each one's context had left
// when it was sent.
type deadlineRecorder struct {
	mu   sync.Mutex
	left []time.Duration // -1: no deadline
}

func (d *deadlineRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	left := time.Duration(-1)
	if dl, ok := r.Context().Deadline(); ok {
		left = time.Until(dl)
	}
	d.mu.Lock()
	d.left = append(d.left, left)
	d.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// A Prometheus that never answers gives an unknown verdict (no breach, so nothing rolls back
// and nothing advances), and every query runs under the configured bound: the whole
// evaluation's deadline when it is the shorter, the per-query timeout when that is. Before the
// evaluation had a deadline of its own, each of the queries waited its full 15 s in turn.
func TestGateHungPrometheusIsUnknownWithinTheDeadline(t *testing.T) {
	url := "http://" + hangtest.Listen(t)
	for _, tc := range []struct {
		name   string
		opts   []GateOption
		bound  time.Duration
		detail string
	}{
		{"evaluation deadline", []GateOption{GateWithDeadline(400 * time.Millisecond)}, 400 * time.Millisecond,
			"did not answer within the gate's deadline of 400ms"},
		{"query timeout", []GateOption{GateWithTimeout(300 * time.Millisecond), GateWithDeadline(time.Minute)}, 300 * time.Millisecond,
			"did not answer within 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &deadlineRecorder{}
			e, err := NewGateEvaluator(config.Prometheus{URL: url}, append(tc.opts, GateWithRoundTripper(rec))...)
			if err != nil {
				t.Fatal(err)
			}
			criteria := append(GateRollbackCriteria(), GatePhaseCriteria(1)...)
			rep, err := e.Evaluate(context.Background(), gateTestTarget, criteria)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict() != VerdictUnknown || len(rep.Breaches()) != 0 || len(rep.Blocking()) != len(criteria) {
				t.Fatalf("verdict %s, breaches %v, blocking %d of %d", rep.Verdict(), rep.Breaches(), len(rep.Blocking()), len(criteria))
			}
			for _, r := range rep.Results {
				if r.Verdict != VerdictUnknown || !strings.Contains(r.Detail, tc.detail) {
					t.Errorf("%s: %s %q, want detail %q", r.Criterion.ID, r.Verdict, r.Detail, tc.detail)
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.left) == 0 {
				t.Fatal("no query was sent")
			}
			for i, left := range rec.left {
				if left <= 0 || left > tc.bound {
					t.Errorf("query %d was sent with %v left, want a deadline within %v", i, left, tc.bound)
				}
			}
		})
	}
}
