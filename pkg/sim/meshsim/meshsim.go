// Package meshsim is the sandbox's simulated Istio data plane: an HTTP router standing where
// the ingress gateway and the services' Envoy sidecars would stand. For every request it reads
// the service's LIVE VirtualService weights (through pkg/mesh, i.e. Istio's client-go against
// the simulated cluster), picks the v1 or v2 subset as Envoy's weighted cluster would, forwards
// the request, and records Istio's standard metrics as the destination sidecar reports them:
// istio_requests_total and istio_request_duration_milliseconds with reporter="destination",
// destination_workload, destination_version, response_code and the rest of Istio's labels.
//
// The sandbox runs each service once, in-process: v1 and v2 are the same code behind the
// router, and only the metrics (and the injected faults) tell the tracks apart. Faults are
// Istio's fault injection — a fixed delay and an abort ratio with a status code — set per
// environment, service and subset, so a canary can be made to breach its gates on purpose.
package meshsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/come2us/opsctl/pkg/mesh"
)

// Metric names, as Istio's standard metrics name them.
const (
	MetricRequests = "istio_requests_total"
	MetricDuration = "istio_request_duration_milliseconds"
)

// DefaultRefresh is how long a VirtualService read is reused.
const DefaultRefresh = 500 * time.Millisecond

// durationBuckets are Istio's default buckets for istio_request_duration_milliseconds.
var durationBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// labelNames are the labels of both metrics, a subset of Istio's standard labels.
var labelNames = []string{
	"reporter", "source_workload", "source_workload_namespace", "source_app",
	"destination_workload", "destination_workload_namespace", "destination_app", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace",
	"destination_canonical_service", "destination_canonical_revision", "destination_cluster",
	"request_protocol", "response_code", "response_flags", "connection_security_policy",
}

// RouteReader reads the live route of a service in one namespace; *mesh.Reader is one.
type RouteReader interface {
	Route(ctx context.Context, service string) (mesh.Route, error)
}

// Config configures a Mesh.
type Config struct {
	// Upstreams maps a Kubernetes app name (order-service) to the base URL of the in-process
	// service that serves both of its subsets.
	Upstreams map[string]string
	// Routes maps an environment (dev, prod) to the reader of its namespace's VirtualServices.
	Routes map[string]RouteReader
	// Namespace maps an environment to its namespace (default come2us-<env>).
	Namespace func(env string) string
	// Refresh is how long a route read is reused (default DefaultRefresh).
	Refresh time.Duration
	// Logger receives route read failures (default: discarded).
	Logger *slog.Logger
}

// Fault is Istio fault injection on one subset: Delay before every request, then an abort
// answering Status (default 503) for ErrorRatio of the requests (0 to 1). Aborts are spread
// evenly, not randomly, so a ratio shows exactly in the metrics.
type Fault struct {
	Delay      time.Duration `json:"delay"`
	ErrorRatio float64       `json:"errorRatio"`
	Status     int           `json:"status,omitempty"`
}

func (f Fault) validate() error {
	switch {
	case f.Delay < 0 || f.Delay > time.Minute:
		return fmt.Errorf("delay %s must be between 0 and 1m", f.Delay)
	case f.ErrorRatio < 0 || f.ErrorRatio > 1:
		return fmt.Errorf("errorRatio %v must be between 0 and 1", f.ErrorRatio)
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("status %d must be a 4xx or 5xx code", f.Status)
	}
	return nil
}

// IsZero reports whether the fault does nothing.
func (f Fault) IsZero() bool { return f.Delay == 0 && f.ErrorRatio == 0 }

// FaultKey names where a fault applies.
type FaultKey struct {
	Env     string `json:"env"`
	App     string `json:"app"`
	Version string `json:"version"`
}

// Mesh is the router and its metrics.
type Mesh struct {
	cfg       Config
	log       *slog.Logger
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	proxies   map[string]*httputil.ReverseProxy
	transport *http.Transport

	mu     sync.Mutex
	routes map[routeKey]*cachedRoute
	faults map[FaultKey]*faultState

	srv    *http.Server
	base   string
	wg     sync.WaitGroup
	connMu sync.Mutex
	active map[net.Conn]bool // connections with a request in flight
}

type routeKey struct{ env, app string }

type cachedRoute struct {
	at      time.Time
	weights map[string]int32 // v1, v2
	current map[string]int64 // smooth weighted round robin state
}

type faultState struct {
	Fault
	seen, aborted int64
}

// New checks cfg and returns a Mesh; serve it with Start or Handler.
func New(cfg Config) (*Mesh, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("meshsim: no upstream services")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Namespace == nil {
		cfg.Namespace = func(env string) string { return "come2us-" + env }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mesh{
		cfg: cfg, log: log, registry: prometheus.NewRegistry(),
		proxies:   map[string]*httputil.ReverseProxy{},
		transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second},
		routes:    map[routeKey]*cachedRoute{},
		faults:    map[FaultKey]*faultState{},
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
		Help: "Requests handled by the (simulated) Envoy sidecars."}, labelNames)
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricDuration,
		Help: "Request duration at the (simulated) Envoy sidecars, in milliseconds.", Buckets: durationBuckets}, labelNames)
	m.registry.MustRegister(m.requests, m.duration)
	for app, raw := range cfg.Upstreams {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("meshsim: upstream %s: %q is not an absolute URL", app, raw)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = m.transport
		p.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
			m.log.Warn("upstream unreachable", "app", app, "err", err)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("upstream connect error or disconnect/reset before headers"))
		}
		m.proxies[app] = p
	}
	return m, nil
}

// Registry holds the Envoy metrics, for the simulated Prometheus to scrape.
func (m *Mesh) Registry() *prometheus.Registry { return m.registry }

// Start serves the router on addr and returns its base URL.
func (m *Mesh) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("meshsim: listen %s: %w", addr, err)
	}
	m.base = "http://" + ln.Addr().String()
	m.active = map[net.Conn]bool{}
	m.srv = &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second, ConnState: m.trackConn}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("mesh router stopped", "err", err)
		}
	}()
	return m.base, nil
}

// URL is the base URL of app in env through the router (after Start), e.g.
// http://127.0.0.1:4000/prod/order-service.
func (m *Mesh) URL(env, app string) string { return m.base + "/" + env + "/" + app }

// Close stops serving and waits for requests in flight (at most 5 s), then closes every
// connection. A connection that is open but has not sent a request is not waited for: the
// HTTP server's own Shutdown would wait 5 s for such a connection to send its first request.
func (m *Mesh) Close() error {
	var err error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- m.srv.Shutdown(ctx) }()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-tick.C:
				if m.inFlight() == 0 {
					_ = m.srv.Close() // only idle or never-used connections are left
					err = <-done
					break wait
				}
			}
		}
		if err != nil {
			err = errors.Join(fmt.Errorf("meshsim: %d requests still in flight: %w", m.inFlight(), err), m.srv.Close())
		}
		m.wg.Wait()
	}
	m.transport.CloseIdleConnections()
	return err
}

func (m *Mesh) trackConn(c net.Conn, st http.ConnState) {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if st == http.StateActive {
		m.active[c] = true
	} else {
		delete(m.active, c)
	}
}

func (m *Mesh) inFlight() int {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	return len(m.active)
}

// SetFault sets (or, with a zero Fault, clears) the fault of one subset.
func (m *Mesh) SetFault(k FaultKey, f Fault) error {
	if _, ok := m.cfg.Routes[k.Env]; !ok {
		return fmt.Errorf("meshsim: unknown environment %q", k.Env)
	}
	if _, ok := m.proxies[k.App]; !ok {
		return fmt.Errorf("meshsim: unknown service %q", k.App)
	}
	if k.Version != mesh.StableSubset && k.Version != mesh.CanarySubset {
		return fmt.Errorf("meshsim: unknown subset %q (want v1 or v2)", k.Version)
	}
	if err := f.validate(); err != nil {
		return fmt.Errorf("meshsim: fault on %s/%s/%s: %w; nothing changed", k.Env, k.App, k.Version, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if f.IsZero() {
		delete(m.faults, k)
		return nil
	}
	m.faults[k] = &faultState{Fault: f}
	return nil
}

// Faults returns the faults set now.
func (m *Mesh) Faults() map[FaultKey]Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[FaultKey]Fault, len(m.faults))
	for k, f := range m.faults {
		out[k] = f.Fault
	}
	return out
}

// Handler routes /<env>/<app>/<path> to the app, and serves the fault admin API under /-/faults.
func (m *Mesh) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/faults", m.listFaults)
	mux.HandleFunc("PUT /-/faults/{env}/{app}/{version}", m.putFault)
	mux.HandleFunc("DELETE /-/faults/{env}/{app}/{version}", m.deleteFault)
	mux.HandleFunc("/", m.route)
	return mux
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (m *Mesh) route(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 2 {
		http.Error(w, "meshsim: want /<env>/<app>/<path>", http.StatusNotFound)
		return
	}
	env, app := parts[0], parts[1]
	proxy, ok := m.proxies[app]
	if _, envOK := m.cfg.Routes[env]; !ok || !envOK {
		// Envoy answers an unknown host with 404 and no upstream.
		http.Error(w, fmt.Sprintf("meshsim: no route for %s in %s", app, env), http.StatusNotFound)
		return
	}
	version := m.pick(r.Context(), env, app)
	start := time.Now() // route selection is in memory in Envoy: not part of the request's time
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set("x-mesh-subset", version)
	flags := "-"
	delay, abort, status := m.fault(FaultKey{Env: env, App: app, Version: version})
	if delay > 0 {
		flags = "DI"
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
		}
	}
	if abort {
		if flags == "DI" {
			flags = "DI,FI"
		} else {
			flags = "FI"
		}
		sw.Header().Set("Content-Type", "text/plain")
		sw.WriteHeader(status)
		_, _ = sw.Write([]byte("fault filter abort"))
	} else {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/"
		if len(parts) == 3 {
			r2.URL.Path += parts[2]
		}
		r2.URL.RawPath = ""
		proxy.ServeHTTP(sw, r2)
	}
	code := sw.status
	if code == 0 {
		code = http.StatusOK
	}
	if code == http.StatusServiceUnavailable && flags == "-" {
		flags = "UF" // upstream connection failure
	}
	ns := m.cfg.Namespace(env)
	lv := prometheus.Labels{
		"reporter": "destination", "source_workload": "istio-ingressgateway", "source_workload_namespace": "istio-system",
		"source_app":           "istio-ingressgateway",
		"destination_workload": app + "-" + version, "destination_workload_namespace": ns, "destination_app": app,
		"destination_version": version, "destination_service": app + "." + ns + ".svc.cluster.local",
		"destination_service_name": app, "destination_service_namespace": ns, "destination_canonical_service": app,
		"destination_canonical_revision": version, "destination_cluster": "Kubernetes", "request_protocol": "http",
		"response_code": strconv.Itoa(code), "response_flags": flags, "connection_security_policy": "mutual_tls",
	}
	m.requests.With(lv).Inc()
	m.duration.With(lv).Observe(float64(time.Since(start)) / float64(time.Millisecond))
}

// pick chooses the subset for one request: smooth weighted round robin over the live weights
// (so 30% is exactly 3 in 10), v1 when the service has no VirtualService yet.
func (m *Mesh) pick(ctx context.Context, env, app string) string {
	k := routeKey{env, app}
	m.mu.Lock()
	cr := m.routes[k]
	stale := cr == nil || time.Since(cr.at) >= m.cfg.Refresh
	m.mu.Unlock()
	if stale {
		weights := map[string]int32{mesh.StableSubset: 100}
		rt, err := m.cfg.Routes[env].Route(ctx, app)
		switch {
		case errors.Is(err, mesh.ErrNotFound):
			// Not synced yet: the Kubernetes Service balances over the stable pods.
		case err != nil:
			m.log.Warn("reading the live route failed; keeping the last one", "env", env, "app", app, "err", err)
			if cr != nil {
				weights = cr.weights
			}
		default:
			weights = map[string]int32{}
			for subset, w := range rt.Weights {
				if subset != mesh.CanarySubset {
					subset = mesh.StableSubset
				}
				weights[subset] += w
			}
		}
		m.mu.Lock()
		if old := m.routes[k]; old != nil && sameWeights(old.weights, weights) {
			old.at = time.Now()
			cr = old
		} else {
			cr = &cachedRoute{at: time.Now(), weights: weights, current: map[string]int64{}}
			m.routes[k] = cr
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var total int64
	best := ""
	for _, subset := range []string{mesh.StableSubset, mesh.CanarySubset} {
		w := int64(cr.weights[subset])
		if w <= 0 {
			continue
		}
		total += w
		cr.current[subset] += w
		if best == "" || cr.current[subset] > cr.current[best] {
			best = subset
		}
	}
	if best == "" {
		return mesh.StableSubset // every weight 0: Envoy would 503; the sandbox keeps serving v1
	}
	cr.current[best] -= total
	return best
}

func sameWeights(a, b map[string]int32) bool {
	return a[mesh.StableSubset] == b[mesh.StableSubset] && a[mesh.CanarySubset] == b[mesh.CanarySubset]
}

// fault returns what the fault of k does to the next request.
func (m *Mesh) fault(k FaultKey) (delay time.Duration, abort bool, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.faults[k]
	if f == nil {
		return 0, false, 0
	}
	f.seen++
	// Abort when the running count of aborts falls behind the ratio: exact and evenly spread.
	if float64(f.aborted+1) <= f.ErrorRatio*float64(f.seen)+1e-9 {
		f.aborted++
		abort = true
	}
	status = f.Status
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	return f.Delay, abort, status
}
