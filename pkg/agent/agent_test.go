package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/come2us/opsctl/pkg/metrics"
)

// scripted is a loop step the test drives: each call announces itself on calls and returns
// what the test sends on results (a nil error, an error, or a panic value).
type scripted struct {
	calls   chan struct{}
	results chan any
}

func newScripted() *scripted { return &scripted{calls: make(chan struct{}), results: make(chan any)} }

func (s *scripted) step(ctx context.Context) error {
	select {
	case s.calls <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case r := <-s.results:
		switch v := r.(type) {
		case nil:
			return nil
		case error:
			return v
		default:
			panic(v)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// expectCall waits for the step to be called and makes it return r.
func (s *scripted) expectCall(t *testing.T, r any) {
	t.Helper()
	select {
	case <-s.calls:
	case <-time.After(30 * time.Second):
		t.Fatal("the loop did not call its step")
	}
	s.results <- r
}

// waitForTimer waits until the loop has set its timer: it has recorded the step's outcome and
// waits for the clock. The bound is a failure limit, not part of the ordering.
func waitForTimer(t *testing.T, c *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !c.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the loop never waited for its next step")
		}
		time.Sleep(time.Millisecond)
	}
}

func component(st Status, name string) Component {
	for _, c := range st.Components {
		if c.Name == name {
			return c
		}
	}
	return Component{}
}

// TestLoopBacksOffAfterFailuresAndRecovers drives one loop through failures, a panic and a
// recovery on a fake clock: each failure marks it unhealthy and doubles the wait before the
// next step; a panic is a failure, not a crash; a success makes it healthy and waits the
// interval.
func TestLoopBacksOffAfterFailuresAndRecovers(t *testing.T) {
	t.Parallel()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC))
	m := metrics.NewAgent()
	s := newScripted()
	a, err := New(Config{
		Identity: NewIdentity("test-pod"), Metrics: m, Clock: clk, RetryMin: 5 * time.Second, RetryMax: 20 * time.Second,
		Loops: []Loop{{Name: "redrive", Interval: 30 * time.Second, Step: s.step}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	if st := a.Status(); st.Role != RoleSingle || !strings.HasPrefix(st.Identity, "opsctl-agent@test-pod/") {
		t.Fatalf("status %+v", st)
	}
	advance := func(d time.Duration) { clk.Step(d) }
	fail := errors.New("kafka broker 127.0.0.1:9092 did not answer for 30s")
	steps := []struct {
		result  any
		healthy bool
		wait    time.Duration // until the next step
		errText string
	}{
		{fail, false, 5 * time.Second, "did not answer"},
		{fail, false, 10 * time.Second, "did not answer"},
		{"index out of range", false, 20 * time.Second, "panicked: index out of range"},
		{fail, false, 20 * time.Second, "did not answer"}, // RetryMax
		{nil, true, 30 * time.Second, ""},
		{nil, true, 30 * time.Second, ""},
	}
	for i, st := range steps {
		s.expectCall(t, st.result)
		waitForTimer(t, clk)
		status := a.Status()
		c := component(status, "loop/redrive")
		if status.Healthy != st.healthy || c.Healthy != st.healthy || !strings.Contains(c.Error, st.errText) {
			t.Fatalf("after step %d: agent healthy=%v, component %+v; want healthy=%v, error %q", i+1, status.Healthy, c, st.healthy, st.errText)
		}
		if got := testutil.ToFloat64(m.LoopHealthy.WithLabelValues("redrive")); got != b2f(st.healthy) {
			t.Errorf("after step %d: %s = %v", i+1, metrics.AgentLoopHealthy, got)
		}
		// Not a moment before its wait is over...
		advance(st.wait - time.Millisecond)
		select {
		case <-s.calls:
			t.Fatalf("after step %d: the next step came before %s", i+1, st.wait)
		default:
		}
		if !clk.HasWaiters() {
			t.Fatalf("after step %d: the loop stopped waiting before %s", i+1, st.wait)
		}
		// ...and then at once.
		advance(time.Millisecond)
	}
	if got := testutil.ToFloat64(m.LoopErrors.WithLabelValues("redrive")); got != 4 {
		t.Errorf("%s = %v, want 4", metrics.AgentLoopErrors, got)
	}
	if got := testutil.ToFloat64(m.Leader); got != 1 {
		t.Errorf("a single agent reports %s %v", metrics.AgentLeader, got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	m := metrics.NewAgent()
	a, err := New(Config{Identity: NewIdentity("p"), Metrics: m,
		Loops: []Loop{{Name: "survey", Interval: time.Minute, Step: func(context.Context) error { return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || !strings.HasPrefix(body, "ok: single") {
		t.Errorf("/readyz healthy: %d %q", code, body)
	}
	a.Report("policy", errors.New("redrive policy /etc/policy.yaml is not valid; it was not used: line 5: rate 0"))
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "policy since") || !strings.Contains(body, "line 5: rate 0") {
		t.Errorf("/readyz unhealthy: %d %q", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz with a bad policy: %d %q (liveness must not fail: a restart would not help)", code, body)
	}
	code, body := get("/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Healthy || component(st, "policy").Healthy {
		t.Errorf("/status: %d %v %+v", code, err, st)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, metrics.AgentHealthy+" 0") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	a.Report("policy", nil)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after the policy was fixed: %d", code)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	step := func(context.Context) error { return nil }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no identity", Config{}, "Identity is required"},
		{"loop without interval", Config{Identity: NewIdentity("p"), Loops: []Loop{{Name: "x", Step: step}}}, "positive interval"},
		{"same name twice", Config{Identity: NewIdentity("p"), Loops: []Loop{{Name: "x", Step: step, Interval: 1}, {Name: "x", Step: step, Interval: 1}}}, "two loops"},
		{"election without client", Config{Identity: NewIdentity("p"), Election: &Election{Namespace: "n", Name: "l"}}, "needs a Kubernetes client"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if a, b := NewIdentity("pod-1"), NewIdentity("pod-1"); a.Actor != "opsctl-agent@pod-1" || a.ID == b.ID {
		t.Errorf("identities %+v %+v: same actor, distinct ids wanted", a, b)
	}
}
