package agent

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// The election tests run against kubesim, the simulated API server the sandbox uses, with the
// Lease kind: client-go's leader election unchanged, over HTTPS. Each agent reaches it through
// a proxy of its own that can go silent — accept connections and never answer — as a dead
// Kubernetes API (or a partitioned node) does. The e2e tier runs the same against the real
// kube-apiserver with real processes killed (e2e/agent_test.go).

// leaseKind is coordination.k8s.io/v1 Lease for kubesim.
var leaseKind = kubesim.Kind{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Kind: "Lease", Namespaced: true}

// Short lease timings, so a takeover is quick; the bounds below are failure limits.
const (
	testLease = 2 * time.Second
	testRenew = 1500 * time.Millisecond
	testRetry = 250 * time.Millisecond
	// converge bounds how long a test waits for something that should happen within the
	// lease timings; generous for a loaded machine.
	converge = 60 * time.Second
)

// proxy forwards TCP connections to target until silenced; silent, it accepts connections
// and never answers (and drops those it was forwarding).
type proxy struct {
	ln     net.Listener
	target string
	silent atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if p.silent.Load() {
			go func() { _, _ = io.Copy(io.Discard, c) }()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// silence makes the API unreachable through this proxy; speak restores it.
func (p *proxy) silence() { p.silent.Store(true); p.dropAll() }
func (p *proxy) speak()   { p.silent.Store(false) }

// cluster is a kubesim API server serving Leases.
type cluster struct {
	srv *kubesim.Server
	url string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	srv := kubesim.New(append(kubesim.DefaultKinds(), leaseKind)...)
	srv.Token = "test-token"
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &cluster{srv: srv, url: url}
}

// electedAgent is one agent of a test, with its own path to the API server.
type electedAgent struct {
	*Agent
	proxy   *proxy
	steps   atomic.Int64
	idles   atomic.Int64
	cancel  context.CancelFunc
	stopped chan struct{}
}

func startElected(t *testing.T, c *cluster, name string) *electedAgent {
	t.Helper()
	p := newProxy(t, strings.TrimPrefix(c.url, "https://"))
	rc := &rest.Config{Host: "https://" + p.ln.Addr().String(), BearerToken: c.srv.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.srv.CAPEM()}, Timeout: time.Second, QPS: 100, Burst: 100}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ea := &electedAgent{proxy: p, stopped: make(chan struct{})}
	a, err := New(Config{
		Identity: NewIdentity(name),
		Metrics:  metrics.NewAgent(),
		Election: &Election{Client: cs.CoordinationV1(), Namespace: "come2us-prod", Name: "opsctl-agent",
			LeaseDuration: testLease, RenewDeadline: testRenew, RetryPeriod: testRetry},
		RetryMin: 10 * time.Millisecond,
		Loops: []Loop{{Name: "work", Interval: 20 * time.Millisecond, Step: func(ctx context.Context) error {
			ea.steps.Add(1)
			return nil
		}, OnIdle: func() { ea.idles.Add(1) }}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ea.Agent = a
	ctx, cancel := context.WithCancel(context.Background())
	ea.cancel = cancel
	go func() {
		defer close(ea.stopped)
		if err := a.Run(ctx); err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	}()
	t.Cleanup(ea.stop)
	return ea
}

func (ea *electedAgent) stop() {
	ea.cancel()
	<-ea.stopped
}

// eventually polls cond until it holds; the timeout is a failure bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(converge)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, converge)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// working reports whether the agent's loops run: its step count grows.
func (ea *electedAgent) working(t *testing.T) bool {
	t.Helper()
	before := ea.steps.Load()
	deadline := time.Now().Add(converge)
	for time.Now().Before(deadline) {
		if ea.steps.Load() > before+2 {
			return true
		}
		if ea.Status().Role != RoleLeader {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestOneLeadsTheOtherWaitsAndTakesOver starts two agents on one lease: one leads and works,
// the other waits, healthy, naming the leader. A leader that stops releases the lease and the
// other takes over.
func TestOneLeadsTheOtherWaitsAndTakesOver(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := startElected(t, c, "pod-a")
	eventually(t, "pod-a leads", func() bool { return a.Status().Role == RoleLeader })
	b := startElected(t, c, "pod-b")
	eventually(t, "pod-b sees pod-a lead", func() bool { return b.Status().Leader == a.Status().Identity })
	if !a.working(t) {
		t.Fatal("the leader's loops do not run")
	}
	bSteps := b.steps.Load()
	if st := b.Status(); st.Role != RoleStandby || !st.Healthy || b.steps.Load() != 0 {
		t.Fatalf("the standby: %+v, %d steps", st, bSteps)
	}

	stopped := time.Now()
	a.stop()
	eventually(t, "pod-b takes over", func() bool { return b.Status().Role == RoleLeader })
	// pod-a released the lease as it stopped: pod-b did not wait for it to expire.
	if took := time.Since(stopped); took > testLease+converge/2 {
		t.Errorf("takeover after a clean stop took %s", took)
	}
	if !b.working(t) {
		t.Fatal("the new leader's loops do not run")
	}
	if st := a.Status(); st.Role == RoleLeader {
		t.Errorf("the stopped agent still says it leads: %+v", st)
	}
}

// TestDeadKubernetesAPI cuts the leader off from the API server: it reports unhealthy, stops
// its loops once it cannot renew, and the other agent takes over when the lease expires. When
// the API answers again the cut-off agent recovers as a healthy standby; cut off from the
// start, an agent keeps trying and never crashes.
func TestDeadKubernetesAPI(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	a := startElected(t, c, "pod-a")
	eventually(t, "pod-a leads", func() bool { return a.Status().Role == RoleLeader })
	b := startElected(t, c, "pod-b")
	eventually(t, "pod-b stands by", func() bool { return b.Status().Leader == a.Status().Identity })

	a.proxy.silence()
	eventually(t, "pod-a reports the dead API", func() bool {
		st := a.Status()
		return !st.Healthy && strings.Contains(component(st, electionComponent).Error, "Kubernetes API")
	})
	eventually(t, "pod-a stops its loops", func() bool { return a.Status().Role != RoleLeader && a.idles.Load() == 1 })
	stoppedAt := a.steps.Load()
	eventually(t, "pod-b takes over the expired lease", func() bool { return b.Status().Role == RoleLeader })
	if !b.working(t) {
		t.Fatal("the new leader's loops do not run")
	}
	if a.steps.Load() != stoppedAt {
		t.Error("the cut-off agent kept working after it stopped leading")
	}

	a.proxy.speak()
	eventually(t, "pod-a recovers as a healthy standby", func() bool {
		st := a.Status()
		return st.Healthy && st.Role == RoleStandby && st.Leader == b.Status().Identity
	})

	// An agent whose API is dead from its first request waits, unhealthy, and takes the lease
	// once it can (here: after the leader stops).
	late := startElected(t, c, "pod-c")
	late.proxy.silence()
	b.stop()
	a.stop()
	eventually(t, "pod-c reports the dead API", func() bool { return !late.Status().Healthy })
	late.proxy.speak()
	eventually(t, "pod-c leads", func() bool { return late.Status().Role == RoleLeader && late.Status().Healthy })
}
