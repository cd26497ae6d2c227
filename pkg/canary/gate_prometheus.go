package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/come2us/opsctl/pkg/config"
)

// GateDefaultQueries are the PromQL templates behind each gate query name. They read Istio's
// standard metrics as reported by the destination sidecar (so the figures are the canary
// workload's own), the services' saga_* counters (labelled service and version through the
// ServiceMonitor), cAdvisor usage and kube-state-metrics limits and replica counts.
//
// A template sees GateTarget's fields: .Service (order), .App (order-service), .Env,
// .Namespace, .Canary (order-service-v2), .Stable (order-service-v1). Every name can be
// overridden by the context's prometheus.queries map.
//
// Every traffic criterion reads the same 1-minute window (design section 8): the 5xx rate, the
// canary's mean latency against stable's, the business error rate and the dead letters. A
// 5-minute mean dilutes a +300 ms fault, or a burst of errors, for minutes.
//
// Error ratios add "or vector(0)" to the numerator so that zero errors read as 0, while no
// traffic at all (an empty denominator) still reads as no data.
var GateDefaultQueries = map[string]string{
	GateQueryCanary5xx: `(sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Canary}}",response_code=~"5.."}[1m])) or vector(0))` +
		` / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Canary}}"}[1m]))`,
	GateQueryCanaryLatency: `sum(rate(istio_request_duration_milliseconds_sum{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Canary}}"}[1m]))` +
		` / sum(rate(istio_request_duration_milliseconds_count{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Canary}}"}[1m]))`,
	GateQueryStableLatency: `sum(rate(istio_request_duration_milliseconds_sum{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Stable}}"}[1m]))` +
		` / sum(rate(istio_request_duration_milliseconds_count{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Stable}}"}[1m]))`,
	GateQueryBusinessErrors: `(sum(rate(saga_business_errors_total{namespace="{{.Namespace}}",service="{{.App}}",version="v2"}[1m])) or vector(0))` +
		` / sum(rate(saga_http_requests_total{namespace="{{.Namespace}}",service="{{.App}}",version="v2"}[1m]))`,
	// The counter exists only once a record was dead-lettered: no series means none.
	GateQueryDeadLetters:    `sum(increase(saga_kafka_records_dead_lettered_total{namespace="{{.Namespace}}",service="{{.App}}",version="v2"}[1m])) or vector(0)`,
	GateQueryCanaryRequests: `sum(increase(istio_requests_total{reporter="destination",destination_workload_namespace="{{.Namespace}}",destination_workload="{{.Canary}}"}[1m]))`,
	GateQueryPodsReady: `sum(kube_deployment_status_replicas_ready{namespace="{{.Namespace}}",deployment="{{.Canary}}"})` +
		` / sum(kube_deployment_spec_replicas{namespace="{{.Namespace}}",deployment="{{.Canary}}"})`,
	GateQueryCPU: `max(sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="{{.Namespace}}",pod=~"{{.Canary}}-.*",container!="",container!="POD"}[5m]))` +
		` / sum by (pod) (kube_pod_container_resource_limits{namespace="{{.Namespace}}",pod=~"{{.Canary}}-.*",resource="cpu",unit="core"}))`,
	GateQueryMemory: `max(sum by (pod) (container_memory_working_set_bytes{namespace="{{.Namespace}}",pod=~"{{.Canary}}-.*",container!="",container!="POD"})` +
		` / sum by (pod) (kube_pod_container_resource_limits{namespace="{{.Namespace}}",pod=~"{{.Canary}}-.*",resource="memory",unit="byte"}))`,
}

// GateTarget names the canary being judged.
type GateTarget struct {
	// Service is the CLI key (order, payment, product).
	Service string `json:"service"`
	Env     string `json:"env"`
	// Namespace defaults to come2us-<env>.
	Namespace string `json:"namespace"`
	// App, Canary and Stable default to <svc>-service, <svc>-service-v2 and -v1.
	App    string `json:"app"`
	Canary string `json:"canary"`
	Stable string `json:"stable"`
}

func (t GateTarget) withDefaults() GateTarget {
	svc := strings.TrimSuffix(t.Service, "-service")
	if t.App == "" {
		t.App = svc + "-service"
	}
	if t.Canary == "" {
		t.Canary = t.App + "-v2"
	}
	if t.Stable == "" {
		t.Stable = t.App + "-v1"
	}
	if t.Namespace == "" && t.Env != "" {
		t.Namespace = "come2us-" + t.Env
	}
	return t
}

// GateReadiness reports how many canary pods are ready out of how many are needed, straight
// from Kubernetes (pkg/mesh's Reader implements it). When the evaluator has one, the pods-ready
// criteria use it instead of kube-state-metrics.
type GateReadiness interface {
	CanaryReady(ctx context.Context, service string) (ready, desired int, err error)
}

// GateResult is one criterion judged.
type GateResult struct {
	Criterion Criterion `json:"criterion"`
	// Value is the figure, nil when unknown.
	Value *float64 `json:"value"`
	// Display is the figure as shown ("3.10%", "+215 ms (v2 420 ms, v1 205 ms)", "2/3 ready").
	Display string  `json:"display"`
	Verdict Verdict `json:"verdict"`
	// Detail says why the verdict is unknown, or carries Prometheus warnings.
	Detail string `json:"detail,omitempty"`
}

// GateReport is a set of criteria judged at one moment.
type GateReport struct {
	Target  GateTarget   `json:"target"`
	At      time.Time    `json:"at"`
	Results []GateResult `json:"results"`
}

// Verdict is fail when any criterion fails, else unknown when any is unknown, else pass.
func (r GateReport) Verdict() Verdict {
	v := VerdictPass
	for _, res := range r.Results {
		switch res.Verdict {
		case VerdictFail:
			return VerdictFail
		case VerdictUnknown:
			v = VerdictUnknown
		}
	}
	return v
}

// Breaches are the failing rollback criteria: the reasons to roll back now.
func (r GateReport) Breaches() []GateResult {
	var out []GateResult
	for _, res := range r.Results {
		if res.Criterion.Kind == CriterionRollback && res.Verdict == VerdictFail {
			out = append(out, res)
		}
	}
	return out
}

// Blocking are the results that keep a canary from advancing: every criterion that does not
// pass, failing or unknown.
func (r GateReport) Blocking() []GateResult {
	var out []GateResult
	for _, res := range r.Results {
		if res.Verdict != VerdictPass {
			out = append(out, res)
		}
	}
	return out
}

// GateBreachReason renders breaches as one line for a commit message: "canary 5xx rate (1m
// average) 4.20% (rollback if ≥ 3%); canary CPU of limit 91.00% (rollback if > 80%)".
func GateBreachReason(breaches []GateResult) string {
	parts := make([]string, 0, len(breaches))
	for _, b := range breaches {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", b.Criterion.Name, b.Display, b.Criterion.ThresholdText()))
	}
	return strings.Join(parts, "; ")
}

// Default bounds of one evaluation against a Prometheus (or a kube-apiserver) that does not
// answer: the whole evaluation ends by DefaultGateDeadline with the criteria it could not read
// unknown, which refuses to move traffic as a failure does.
const (
	// DefaultGateDeadline bounds one Evaluate, every query and the readiness read included.
	DefaultGateDeadline = 15 * time.Second
	// DefaultGateQueryTimeout bounds one query; Prometheus is also asked to stop by then.
	DefaultGateQueryTimeout = 10 * time.Second
)

// GateEvaluator judges criteria against one Prometheus.
type GateEvaluator struct {
	api       promv1.API
	queries   map[string]*template.Template
	readiness GateReadiness
	timeout   time.Duration
	deadline  time.Duration
	now       func() time.Time
	// minRequests is the minimum sample of the traffic criteria.
	minRequests int
}

// GateOption configures a GateEvaluator.
type GateOption func(*gateSettings)

type gateSettings struct {
	readiness GateReadiness
	rt        http.RoundTripper
	timeout   time.Duration
	deadline  time.Duration
	now       func() time.Time
	minReq    int
}

// GateWithReadiness makes the pods-ready criteria read Kubernetes through r.
func GateWithReadiness(r GateReadiness) GateOption {
	return func(s *gateSettings) { s.readiness = r }
}

// GateWithRoundTripper sends Prometheus requests through rt (proxies, custom TLS).
func GateWithRoundTripper(rt http.RoundTripper) GateOption {
	return func(s *gateSettings) { s.rt = rt }
}

// GateWithTimeout bounds each Prometheus query (default DefaultGateQueryTimeout, 10s; never
// more than the evaluation's deadline).
func GateWithTimeout(d time.Duration) GateOption {
	return func(s *gateSettings) { s.timeout = d }
}

// GateWithDeadline bounds a whole evaluation, every query and the readiness read included
// (default DefaultGateDeadline, 15s). What is not read by then is unknown.
func GateWithDeadline(d time.Duration) GateOption {
	return func(s *gateSettings) { s.deadline = d }
}

// GateWithClock sets the evaluation time source (default time.Now); queries are instant
// queries at that time.
func GateWithClock(now func() time.Time) GateOption {
	return func(s *gateSettings) { s.now = now }
}

// GateWithMinRequests sets the minimum number of canary requests in the window below which
// the traffic criteria are unknown (default: the context's prometheus.minRequests, else
// DefaultGateMinRequests). 0 or less keeps the default.
func GateWithMinRequests(n int) GateOption {
	return func(s *gateSettings) { s.minReq = n }
}

// ErrGateConfig means the prometheus section of the context cannot be used; nothing was
// queried.
var ErrGateConfig = errors.New("invalid prometheus configuration")

// NewGateEvaluator checks the context's prometheus section (URL, token variable, query
// overrides) and returns an evaluator. An unknown key in queries is refused, so a typo cannot
// silently leave a default in place.
func NewGateEvaluator(p config.Prometheus, opts ...GateOption) (*GateEvaluator, error) {
	s := gateSettings{timeout: DefaultGateQueryTimeout, deadline: DefaultGateDeadline, now: time.Now}
	for _, o := range opts {
		o(&s)
	}
	if s.deadline <= 0 {
		s.deadline = DefaultGateDeadline
	}
	if s.timeout <= 0 || s.timeout > s.deadline {
		s.timeout = min(DefaultGateQueryTimeout, s.deadline)
	}
	if s.minReq <= 0 {
		s.minReq = p.MinRequests
	}
	if s.minReq <= 0 {
		s.minReq = DefaultGateMinRequests
	}
	if p.URL == "" {
		return nil, fmt.Errorf("%w: prometheus.url is not set in the opsctl context", ErrGateConfig)
	}
	rt := s.rt
	if rt == nil {
		rt = promapi.DefaultRoundTripper
	}
	if p.TokenEnv != "" {
		tok := os.Getenv(p.TokenEnv)
		if tok == "" {
			return nil, fmt.Errorf("%w: prometheus.tokenEnv names %s, which is empty", ErrGateConfig, p.TokenEnv)
		}
		rt = gateBearer{token: tok, next: rt}
	}
	client, err := promapi.NewClient(promapi.Config{Address: p.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("%w: prometheus.url %q: %v", ErrGateConfig, p.URL, err)
	}
	e := &GateEvaluator{api: promv1.NewAPI(client), queries: map[string]*template.Template{},
		readiness: s.readiness, timeout: s.timeout, deadline: s.deadline, now: s.now, minRequests: s.minReq}
	for name, q := range GateDefaultQueries {
		if e.queries[name], err = template.New(name).Option("missingkey=error").Parse(q); err != nil {
			return nil, fmt.Errorf("default query %s: %w", name, err) // a bug, caught by tests
		}
	}
	for name, q := range p.Queries {
		if _, ok := GateDefaultQueries[name]; !ok {
			return nil, fmt.Errorf("%w: prometheus.queries has unknown key %q (known: %s)", ErrGateConfig, name, strings.Join(gateQueryNames(), ", "))
		}
		t, err := template.New(name).Option("missingkey=error").Parse(q)
		if err != nil {
			return nil, fmt.Errorf("%w: prometheus.queries.%s: %v", ErrGateConfig, name, err)
		}
		e.queries[name] = t
	}
	return e, nil
}

func gateQueryNames() []string {
	names := make([]string, 0, len(GateDefaultQueries))
	for n := range GateDefaultQueries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type gateBearer struct {
	token string
	next  http.RoundTripper
}

func (b gateBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Query renders the PromQL of query name for target.
func (e *GateEvaluator) Query(name string, target GateTarget) (string, error) {
	t, ok := e.queries[name]
	if !ok {
		return "", fmt.Errorf("no gate query named %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, target.withDefaults()); err != nil {
		return "", fmt.Errorf("render gate query %s: %w", name, err)
	}
	return b.String(), nil
}

// gateSample is one query's outcome.
type gateSample struct {
	value  float64
	ok     bool
	detail string
}

// Evaluate judges criteria for target. Each query runs once however many criteria use it, and
// all of them run at once, so a Prometheus that does not answer costs one deadline, not one per
// query. Prometheus failures do not fail the evaluation: the criteria they feed are unknown,
// with the reason in Detail. Only the caller's ctx ending is an error.
func (e *GateEvaluator) Evaluate(ctx context.Context, target GateTarget, criteria []Criterion) (GateReport, error) {
	target = target.withDefaults()
	at := e.now()
	report := GateReport{Target: target, At: at}
	ectx, cancel := context.WithTimeout(ctx, e.deadline)
	defer cancel()

	var names []string
	needReady := false
	for _, c := range criteria {
		if c.Sampled() {
			names = append(names, GateQueryCanaryRequests)
		}
		switch {
		case c.Unit == CriterionReady && e.readiness != nil:
			needReady = true
		case c.Baseline != "":
			names = append(names, c.Query, c.Baseline)
		default:
			names = append(names, c.Query)
		}
	}
	samples, ready := e.read(ectx, target, at, names, needReady)
	if ctx.Err() != nil {
		return report, ctx.Err()
	}
	for _, c := range criteria {
		var res GateResult
		switch {
		case c.Sampled() && !e.enough(samples[GateQueryCanaryRequests]):
			res = e.tooFew(c, samples[GateQueryCanaryRequests])
		case c.Unit == CriterionReady && e.readiness != nil:
			res = ready.result(c)
		case c.Baseline != "":
			res = gateDelta(c, samples[c.Query], samples[c.Baseline])
		default:
			res = gateSingle(c, samples[c.Query])
		}
		report.Results = append(report.Results, res)
	}
	return report, nil
}

// enough reports whether the canary served at least the minimum sample in the window.
func (e *GateEvaluator) enough(requests gateSample) bool {
	return requests.ok && requests.value >= float64(e.minRequests)
}

// tooFew is the unknown result of a traffic criterion judged on too small a sample.
func (e *GateEvaluator) tooFew(c Criterion, requests gateSample) GateResult {
	if !requests.ok {
		return GateResult{Criterion: c, Display: "no data", Verdict: VerdictUnknown,
			Detail: fmt.Sprintf("cannot count the canary's requests (%s); a verdict needs %d in the window", requests.detail, e.minRequests)}
	}
	n := int(math.Round(requests.value))
	return GateResult{Criterion: c, Display: fmt.Sprintf("%d requests", n), Verdict: VerdictUnknown,
		Detail: fmt.Sprintf("only %d requests in the window (need %d)", n, e.minRequests)}
}

// read runs every distinct query in names, and the readiness read when asked, concurrently
// under ctx (the evaluation's deadline).
func (e *GateEvaluator) read(ctx context.Context, target GateTarget, at time.Time, names []string, needReady bool) (map[string]gateSample, *gateReadySample) {
	var distinct []string
	for _, name := range names {
		if !slices.Contains(distinct, name) {
			distinct = append(distinct, name)
		}
	}
	// Each goroutine writes only its own element; the map is built once they are done.
	got := make([]gateSample, len(distinct))
	var wg sync.WaitGroup
	for i, name := range distinct {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = e.sample(ctx, name, target, at)
		}()
	}
	var ready *gateReadySample
	if needReady {
		ready = e.readySample(ctx, target)
	}
	wg.Wait()
	samples := make(map[string]gateSample, len(distinct))
	for i, name := range distinct {
		samples[name] = got[i]
	}
	return samples, ready
}

func (e *GateEvaluator) sample(ctx context.Context, name string, target GateTarget, at time.Time) gateSample {
	q, err := e.Query(name, target)
	if err != nil {
		return gateSample{detail: err.Error()}
	}
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	v, warnings, _, err := e.api.Query(qctx, q, at, promv1.WithTimeout(e.timeout))
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			return gateSample{detail: fmt.Sprintf("query %s: Prometheus did not answer within %s", name, e.timeout)}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return gateSample{detail: fmt.Sprintf("query %s: Prometheus did not answer within the gate's deadline of %s", name, e.deadline)}
		}
		return gateSample{detail: "query " + name + " failed: " + gateOneLine(err)}
	}
	s := gateValue(v)
	if len(warnings) > 0 && s.detail == "" {
		s.detail = "Prometheus warns: " + strings.Join(warnings, "; ")
	}
	if s.detail != "" && !s.ok {
		s.detail = "query " + name + ": " + s.detail
	}
	return s
}

// gateValue reads one number out of a query result: a scalar, or a vector of exactly one
// sample. Anything else is no data.
func gateValue(v model.Value) gateSample {
	switch r := v.(type) {
	case *model.Scalar:
		return gateNumber(float64(r.Value))
	case model.Vector:
		switch len(r) {
		case 0:
			return gateSample{detail: "no data (the query returned no series)"}
		case 1:
			return gateNumber(float64(r[0].Value))
		}
		return gateSample{detail: fmt.Sprintf("the query returned %d series; a gate needs exactly one", len(r))}
	case nil:
		return gateSample{detail: "no data"}
	}
	return gateSample{detail: fmt.Sprintf("the query returned a %s; a gate needs a scalar or one-sample vector", v.Type())}
}

func gateNumber(f float64) gateSample {
	switch {
	case math.IsNaN(f):
		return gateSample{detail: "no data (NaN: nothing to divide, e.g. no traffic)"}
	case math.IsInf(f, 0):
		return gateSample{detail: "no data (infinite: division by zero, e.g. no limit set)"}
	}
	return gateSample{value: f, ok: true}
}

func gateSingle(c Criterion, s gateSample) GateResult {
	if !s.ok {
		return GateResult{Criterion: c, Display: "no data", Verdict: VerdictUnknown, Detail: s.detail}
	}
	v := s.value
	return GateResult{Criterion: c, Value: &v, Display: c.FormatValue(v), Verdict: c.Judge(v), Detail: s.detail}
}

func gateDelta(c Criterion, cur, base gateSample) GateResult {
	if !cur.ok || !base.ok {
		d := cur.detail
		if !base.ok {
			d = base.detail
		}
		return GateResult{Criterion: c, Display: "no data", Verdict: VerdictUnknown, Detail: d}
	}
	// Rounded to a microsecond so 400.0 − 200.0 is exactly the 200 ms threshold.
	v := math.Round((cur.value-base.value)*1e6) / 1e6
	return GateResult{Criterion: c, Value: &v, Verdict: c.Judge(v),
		Display: fmt.Sprintf("%s (v2 %.0f ms, v1 %.0f ms)", c.FormatValue(v), cur.value, base.value)}
}

// gateReadySample is the canary's readiness read once from Kubernetes.
type gateReadySample struct {
	ready, desired int
	err            error
}

func (e *GateEvaluator) readySample(ctx context.Context, target GateTarget) *gateReadySample {
	r, d, err := e.readiness.CanaryReady(ctx, target.Service)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("Kubernetes did not answer within the gate's deadline of %s", e.deadline)
	}
	return &gateReadySample{ready: r, desired: d, err: err}
}

func (s *gateReadySample) result(c Criterion) GateResult {
	switch {
	case s.err != nil:
		return GateResult{Criterion: c, Display: "no data", Verdict: VerdictUnknown, Detail: "canary readiness: " + gateOneLine(s.err)}
	case s.desired == 0:
		return GateResult{Criterion: c, Display: "no canary pods", Verdict: VerdictUnknown, Detail: "no canary pods exist or are wanted"}
	}
	v := float64(s.ready) / float64(s.desired)
	return GateResult{Criterion: c, Value: &v, Display: fmt.Sprintf("%d/%d ready", s.ready, s.desired), Verdict: c.Judge(v)}
}

func gateOneLine(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
