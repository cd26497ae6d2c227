package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/mesh"
)

// gateProm is a Prometheus HTTP API stand-in answering /api/v1/query with the JSON Prometheus
// itself sends. Values are keyed by the exact PromQL; an unknown query gets an empty vector,
// as Prometheus answers for an absent metric.
type gateProm struct {
	mu      sync.Mutex
	values  map[string]string // query → sample value ("NaN", "+Inf" allowed); "!error" → bad_data
	seen    []string
	auth    []string
	srv     *httptest.Server
	at      float64
	scalars bool
}

const gatePromErrorValue = "!error"
const gatePromTwoSeries = "!two-series"

func gateStartProm(t *testing.T) *gateProm {
	t.Helper()
	p := &gateProm{values: map[string]string{}, at: 1795953600}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *gateProm) set(values map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.values = values
	p.seen = nil
}

func (p *gateProm) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	p.mu.Lock()
	p.seen = append(p.seen, q)
	p.auth = append(p.auth, r.Header.Get("Authorization"))
	v, ok := p.values[q]
	scalar := p.scalars
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case v == gatePromErrorValue:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"1:7: parse error: unexpected \"}\" in label matching"}`)
	case v == gatePromTwoSeries:
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[%[1]v,"0.5"]},{"metric":{"pod":"b"},"value":[%[1]v,"0.6"]}]}}`, p.at)
	case !ok:
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	case scalar:
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"scalar","result":[%v,%q]}}`, p.at, v)
	default:
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%v,%q]}]}}`, p.at, v)
	}
}

func (p *gateProm) queries() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

var gateTestTarget = GateTarget{Service: "order", Env: "prod"}

func gateEvaluator(t *testing.T, p *gateProm, prom config.Prometheus, opts ...GateOption) *GateEvaluator {
	t.Helper()
	if prom.URL == "" {
		prom.URL = p.srv.URL
	}
	opts = append([]GateOption{GateWithClock(func() time.Time { return time.Unix(1795953600, 0) })}, opts...)
	e, err := NewGateEvaluator(prom, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func gateCriterion(t *testing.T, id string) Criterion {
	t.Helper()
	for phase := -1; phase <= 3; phase++ {
		for _, c := range GateCriteria(phase) {
			if c.ID == id {
				return c
			}
		}
	}
	t.Fatalf("no criterion %s", id)
	return Criterion{}
}

// TestGateDecisionTable judges every criterion at, just below and just above its threshold,
// and without data, through the default queries and a real HTTP round trip.
func TestGateDecisionTable(t *testing.T) {
	t.Parallel()
	const absent = "<absent>"
	type row struct {
		id       string
		value    string // the figure's query
		baseline string // the baseline query (latency criteria); "" when unused
		want     Verdict
		display  string
	}
	ratio := func(id string, th, below, above string, atWant, belowWant, aboveWant Verdict) []row {
		return []row{
			{id: id, value: th, want: atWant}, {id: id, value: below, want: belowWant}, {id: id, value: above, want: aboveWant},
			{id: id, value: absent, want: VerdictUnknown, display: "no data"}, {id: id, value: "NaN", want: VerdictUnknown, display: "no data"},
		}
	}
	latency := func(id string) []row {
		return []row{
			{id: id, value: "400", baseline: "200", want: VerdictFail, display: "+200 ms (v2 400 ms, v1 200 ms)"},
			{id: id, value: "399.9", baseline: "200", want: VerdictPass},
			{id: id, value: "400.1", baseline: "200", want: VerdictFail},
			{id: id, value: "320.3", baseline: "120.3", want: VerdictFail}, // float noise must not hide the threshold
			{id: id, value: absent, baseline: "200", want: VerdictUnknown, display: "no data"},
			{id: id, value: "400", baseline: absent, want: VerdictUnknown, display: "no data"},
			{id: id, value: "NaN", baseline: "200", want: VerdictUnknown, display: "no data"},
		}
	}
	var rows []row
	rows = append(rows, ratio("rollback.5xx", "0.03", "0.0299", "0.0301", VerdictFail, VerdictPass, VerdictFail)...)
	rows = append(rows, latency("rollback.latency")...)
	rows = append(rows, ratio("rollback.business", "0.01", "0.0099", "0.0101", VerdictFail, VerdictPass, VerdictFail)...)
	rows = append(rows, ratio("rollback.ready", "1", "0.999", "1.001", VerdictPass, VerdictFail, VerdictPass)...)
	rows = append(rows, row{id: "rollback.ready", value: "+Inf", want: VerdictUnknown, display: "no data"})
	rows = append(rows, ratio("rollback.cpu", "0.8", "0.7999", "0.8001", VerdictPass, VerdictPass, VerdictFail)...)
	rows = append(rows, ratio("rollback.memory", "0.85", "0.8499", "0.8501", VerdictPass, VerdictPass, VerdictFail)...)
	// Any dead letter from v2 breaches; increase() extrapolates, so a fraction is one record.
	rows = append(rows, row{id: "rollback.dlt", value: "0", want: VerdictPass, display: "0 records"},
		row{id: "rollback.dlt", value: "0.7", want: VerdictFail, display: "1 record"},
		row{id: "rollback.dlt", value: "3", want: VerdictFail, display: "3 records"},
		row{id: "rollback.dlt", value: absent, want: VerdictUnknown, display: "no data"})
	rows = append(rows, ratio("phase0.ready", "1", "0.999", "1.001", VerdictPass, VerdictFail, VerdictPass)...)
	// "No errors": nothing lies below zero, so at and above only.
	rows = append(rows, row{id: "phase0.errors", value: "0", want: VerdictPass, display: "0.00%"},
		row{id: "phase0.errors", value: "0.0001", want: VerdictFail}, row{id: "phase0.errors", value: absent, want: VerdictUnknown})
	rows = append(rows, latency("phase1.latency")...)
	rows = append(rows, ratio("phase1.errors", "0.01", "0.0099", "0.0101", VerdictFail, VerdictPass, VerdictFail)...)
	rows = append(rows, ratio("phase2.5xx", "0.003", "0.0029", "0.0031", VerdictFail, VerdictPass, VerdictFail)...)
	rows = append(rows, ratio("phase2.business", "0.01", "0.0099", "0.0101", VerdictFail, VerdictPass, VerdictFail)...)
	rows = append(rows, ratio("phase3.ready", "1", "0.999", "1.001", VerdictPass, VerdictFail, VerdictPass)...)

	// Every criterion of the design appears in the table.
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.id] = true
	}
	for phase := -1; phase <= 3; phase++ {
		for _, c := range GateCriteria(phase) {
			if !covered[c.ID] {
				t.Errorf("criterion %s has no decision-table rows", c.ID)
			}
		}
	}

	p := gateStartProm(t)
	e := gateEvaluator(t, p, config.Prometheus{})
	for _, r := range rows {
		name := fmt.Sprintf("%s=%s", r.id, r.value)
		if r.baseline != "" {
			name += "-" + r.baseline
		}
		t.Run(name, func(t *testing.T) {
			c := gateCriterion(t, r.id)
			values := map[string]string{}
			q, err := e.Query(c.Query, gateTestTarget)
			if err != nil {
				t.Fatal(err)
			}
			if r.value != absent {
				values[q] = r.value
			}
			cq, _ := e.Query(GateQueryCanaryRequests, gateTestTarget)
			values[cq] = "1000"
			if c.Baseline != "" {
				bq, err := e.Query(c.Baseline, gateTestTarget)
				if err != nil {
					t.Fatal(err)
				}
				if r.baseline != absent {
					values[bq] = r.baseline
				}
			}
			p.set(values)
			rep, err := e.Evaluate(context.Background(), gateTestTarget, []Criterion{c})
			if err != nil {
				t.Fatal(err)
			}
			res := rep.Results[0]
			if res.Verdict != r.want {
				t.Fatalf("verdict %s, want %s (display %q, detail %q)", res.Verdict, r.want, res.Display, res.Detail)
			}
			if r.display != "" && res.Display != r.display {
				t.Fatalf("display %q, want %q", res.Display, r.display)
			}
			if r.want == VerdictUnknown && (res.Value != nil || !strings.Contains(res.Detail, "no data")) {
				t.Fatalf("unknown result carries value %v, detail %q", res.Value, res.Detail)
			}
			if rep.Verdict() != r.want {
				t.Fatalf("report verdict %s, want %s", rep.Verdict(), r.want)
			}
		})
	}
}

func TestGateDefaultQueriesReachPrometheus(t *testing.T) {
	t.Parallel()
	p := gateStartProm(t)
	e := gateEvaluator(t, p, config.Prometheus{})
	if _, err := e.Evaluate(context.Background(), gateTestTarget, GateCriteria(2)); err != nil {
		t.Fatal(err)
	}
	seen := p.queries()
	sort.Strings(seen)
	var want []string
	for _, name := range gateQueryNames() {
		q, err := e.Query(name, gateTestTarget)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, q)
	}
	sort.Strings(want)
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("queries sent (each once):\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	q, _ := e.Query(GateQueryCanary5xx, gateTestTarget)
	for _, part := range []string{`reporter="destination"`, `destination_workload_namespace="come2us-prod"`, `destination_workload="order-service-v2"`, `response_code=~"5.."`, `[1m]`} {
		if !strings.Contains(q, part) {
			t.Errorf("5xx query lacks %s: %s", part, q)
		}
	}
	q, _ = e.Query(GateQueryStableLatency, gateTestTarget)
	if !strings.Contains(q, `destination_workload="order-service-v1"`) || !strings.Contains(q, "istio_request_duration_milliseconds_sum") {
		t.Errorf("stable latency query: %s", q)
	}
	// Design section 8: the canary's MEAN latency against stable's, both over 1 minute.
	for _, name := range []string{GateQueryCanaryLatency, GateQueryStableLatency} {
		q, _ = e.Query(name, gateTestTarget)
		if strings.Count(q, "[1m]") != 2 || strings.Contains(q, "[5m]") ||
			!strings.Contains(q, "istio_request_duration_milliseconds_sum") || !strings.Contains(q, "istio_request_duration_milliseconds_count") {
			t.Errorf("%s is not a 1-minute mean: %s", name, q)
		}
	}
	q, _ = e.Query(GateQueryBusinessErrors, gateTestTarget)
	if !strings.Contains(q, `saga_business_errors_total{namespace="come2us-prod",service="order-service",version="v2"}`) || !strings.Contains(q, "saga_http_requests_total") {
		t.Errorf("business error query: %s", q)
	}
	// The business error rate reads the same minute as the 5xx rate and the latency.
	if strings.Count(q, "[1m]") != 2 || strings.Contains(q, "[5m]") {
		t.Errorf("business error query is not over 1 minute: %s", q)
	}
	// Dead letters: what v2's consumers sent to a DLT in the last minute, none when the counter
	// does not exist yet.
	q, _ = e.Query(GateQueryDeadLetters, gateTestTarget)
	if !strings.Contains(q, `increase(saga_kafka_records_dead_lettered_total{namespace="come2us-prod",service="order-service",version="v2"}[1m])`) || !strings.HasSuffix(q, "or vector(0)") {
		t.Errorf("dead letter query: %s", q)
	}
}

func TestGateQueryOverrides(t *testing.T) {
	t.Parallel()
	p := gateStartProm(t)
	e := gateEvaluator(t, p, config.Prometheus{Queries: map[string]string{
		GateQueryCanary5xx: `my_5xx_ratio{ns="{{.Namespace}}",workload="{{.Canary}}"}`,
	}})
	cq, _ := e.Query(GateQueryCanaryRequests, gateTestTarget)
	p.set(map[string]string{`my_5xx_ratio{ns="come2us-prod",workload="order-service-v2"}`: "0.05", cq: "500"})
	rep, err := e.Evaluate(context.Background(), gateTestTarget, []Criterion{gateCriterion(t, "rollback.5xx")})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Verdict != VerdictFail || rep.Results[0].Display != "5.00%" {
		t.Fatalf("overridden query result = %+v", rep.Results[0])
	}

	for _, tt := range []struct {
		queries map[string]string
		want    string
	}{
		{map[string]string{"canary_5xx": "x"}, `invalid prometheus configuration: prometheus.queries has unknown key "canary_5xx" (known: canary_5xx_ratio, canary_business_error_ratio, canary_cpu_limit_ratio, canary_dead_letters, canary_latency_ms, canary_memory_limit_ratio, canary_pods_ready_ratio, canary_requests, stable_latency_ms)`},
		{map[string]string{GateQueryCPU: "rate(x{pod=\"{{.Canary\"}[5m])"}, "invalid prometheus configuration: prometheus.queries.canary_cpu_limit_ratio: template: canary_cpu_limit_ratio:1: bad character U+0022 '\"'"},
	} {
		_, err := NewGateEvaluator(config.Prometheus{URL: p.srv.URL, Queries: tt.queries})
		if !errors.Is(err, ErrGateConfig) || err.Error() != tt.want {
			t.Errorf("NewGateEvaluator(%v) =\n%v\nwant\n%s", tt.queries, err, tt.want)
		}
	}
	if _, err := NewGateEvaluator(config.Prometheus{}); !errors.Is(err, ErrGateConfig) {
		t.Errorf("no URL = %v", err)
	}
}

func TestGateUnusableAnswersAreUnknown(t *testing.T) {
	t.Parallel()
	p := gateStartProm(t)
	e := gateEvaluator(t, p, config.Prometheus{})
	c := gateCriterion(t, "rollback.cpu")
	q, _ := e.Query(c.Query, gateTestTarget)
	for _, tt := range []struct{ value, detail string }{
		{gatePromErrorValue, `query canary_cpu_limit_ratio failed: bad_data: 1:7: parse error: unexpected "}" in label matching`},
		{gatePromTwoSeries, "query canary_cpu_limit_ratio: the query returned 2 series; a gate needs exactly one"},
	} {
		p.set(map[string]string{q: tt.value})
		rep, err := e.Evaluate(context.Background(), gateTestTarget, []Criterion{c})
		if err != nil {
			t.Fatal(err)
		}
		if r := rep.Results[0]; r.Verdict != VerdictUnknown || r.Detail != tt.detail {
			t.Errorf("%s: verdict %s detail %q, want unknown %q", tt.value, r.Verdict, r.Detail, tt.detail)
		}
	}
	// A scalar answer is a figure like a one-sample vector.
	p.mu.Lock()
	p.scalars = true
	p.mu.Unlock()
	p.set(map[string]string{q: "0.9"})
	rep, _ := e.Evaluate(context.Background(), gateTestTarget, []Criterion{c})
	if rep.Results[0].Verdict != VerdictFail {
		t.Errorf("scalar 0.9 CPU = %+v", rep.Results[0])
	}
}

func TestGatePrometheusDownIsUnknown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + lis.Addr().String()
	lis.Close()
	e, err := NewGateEvaluator(config.Prometheus{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Evaluate(context.Background(), gateTestTarget, GateRollbackCriteria())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict() != VerdictUnknown || len(rep.Breaches()) != 0 {
		t.Fatalf("verdict with Prometheus down = %s, breaches %v", rep.Verdict(), rep.Breaches())
	}
	for _, r := range rep.Results {
		if r.Verdict != VerdictUnknown || !strings.Contains(r.Detail, "connection refused") {
			t.Errorf("%s: %s %q", r.Criterion.ID, r.Verdict, r.Detail)
		}
	}
}

func TestGateBearerToken(t *testing.T) {
	p := gateStartProm(t)
	t.Setenv("OPSCTL_TEST_PROM_TOKEN", "prom-token")
	e := gateEvaluator(t, p, config.Prometheus{TokenEnv: "OPSCTL_TEST_PROM_TOKEN"})
	if _, err := e.Evaluate(context.Background(), gateTestTarget, GatePhaseCriteria(2)); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.auth) == 0 || p.auth[0] != "Bearer prom-token" {
		t.Fatalf("Authorization headers = %q", p.auth)
	}
	t.Setenv("OPSCTL_TEST_PROM_TOKEN", "")
	if _, err := NewGateEvaluator(config.Prometheus{URL: p.srv.URL, TokenEnv: "OPSCTL_TEST_PROM_TOKEN"}); !errors.Is(err, ErrGateConfig) {
		t.Fatalf("empty token variable = %v", err)
	}
}

func gateKubeCanary(desired int32, podsReady ...bool) *mesh.Reader {
	objs := []runtime.Object{&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "order-service-v2", Namespace: "come2us-prod"},
		Spec:       appsv1.DeploymentSpec{Replicas: &desired},
	}}
	for i, ready := range podsReady {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("order-service-v2-%d", i), Namespace: "come2us-prod", Labels: map[string]string{"app": "order-service", "version": "v2"}},
			Status:     corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		})
	}
	return mesh.New(istiofake.NewSimpleClientset(), kubefake.NewSimpleClientset(objs...), "come2us-prod")
}

func TestGateReadinessFromKubernetes(t *testing.T) {
	t.Parallel()
	p := gateStartProm(t)
	tests := []struct {
		name    string
		reader  *mesh.Reader
		want    Verdict
		display string
	}{
		{"all ready", gateKubeCanary(3, true, true, true), VerdictPass, "3/3 ready"},
		{"one not ready", gateKubeCanary(3, true, true, false), VerdictFail, "2/3 ready"},
		{"pods missing", gateKubeCanary(3, true, true), VerdictFail, "2/3 ready"},
		{"no canary", gateKubeCanary(0), VerdictUnknown, "no canary pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := gateEvaluator(t, p, config.Prometheus{}, GateWithReadiness(tt.reader))
			rep, err := e.Evaluate(context.Background(), gateTestTarget, []Criterion{gateCriterion(t, "rollback.ready"), gateCriterion(t, "phase0.ready")})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				if r.Verdict != tt.want || r.Display != tt.display {
					t.Fatalf("%s: %s %q, want %s %q", r.Criterion.ID, r.Verdict, r.Display, tt.want, tt.display)
				}
			}
		})
	}
	for _, q := range p.queries() {
		if strings.Contains(q, "kube_deployment") {
			t.Fatalf("readiness went to Prometheus although Kubernetes answers it: %s", q)
		}
	}
}

func TestGateReportAndReason(t *testing.T) {
	t.Parallel()
	p := gateStartProm(t)
	e := gateEvaluator(t, p, config.Prometheus{})
	q5, _ := e.Query(GateQueryCanary5xx, gateTestTarget)
	qcpu, _ := e.Query(GateQueryCPU, gateTestTarget)
	qmem, _ := e.Query(GateQueryMemory, gateTestTarget)
	qcount, _ := e.Query(GateQueryCanaryRequests, gateTestTarget)
	qdlt, _ := e.Query(GateQueryDeadLetters, gateTestTarget)
	p.set(map[string]string{q5: "0.042", qcpu: "0.91", qmem: "0.5", qcount: "300", qdlt: "0"})
	rep, err := e.Evaluate(context.Background(), gateTestTarget, GateRollbackCriteria())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict() != VerdictFail {
		t.Fatalf("verdict %s", rep.Verdict())
	}
	got := GateBreachReason(rep.Breaches())
	want := "canary 5xx rate (1m average) 4.20% (rollback if ≥ 3%); canary CPU of limit 91.00% (rollback if > 80%)"
	if got != want {
		t.Fatalf("reason\n got: %s\nwant: %s", got, want)
	}
	// Latency, business errors and readiness have no data: they block, but are no breach.
	if n := len(rep.Blocking()); n != 5 {
		t.Fatalf("blocking = %d results, want 5", n)
	}
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"verdict":"unknown"`) {
		t.Fatalf("report JSON: %s %v", b, err)
	}
}

func TestGateThresholdText(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"rollback.5xx": "rollback if ≥ 3%", "rollback.latency": "rollback if ≥ +200 ms", "rollback.business": "rollback if ≥ 1%",
		"rollback.ready": "rollback if < 100% ready", "rollback.cpu": "rollback if > 80%", "rollback.memory": "rollback if > 85%",
		"rollback.dlt": "rollback if > 0 records",
		"phase0.ready": "pass if ≥ 100% ready", "phase0.errors": "pass if ≤ 0%", "phase1.latency": "pass if < +200 ms",
		"phase1.errors": "pass if < 1%", "phase2.5xx": "pass if < 0.3%", "phase2.business": "pass if < 1%", "phase3.ready": "pass if ≥ 100% ready",
	}
	for id, w := range want {
		if got := gateCriterion(t, id).ThresholdText(); got != w {
			t.Errorf("%s: %q, want %q", id, got, w)
		}
	}
}

// TestGateFormatValueHasNoNegativeZero: figures that round to zero print without a sign.
func TestGateFormatValueHasNoNegativeZero(t *testing.T) {
	t.Parallel()
	lat := GateRollbackCriteria()[1]
	five := GateRollbackCriteria()[0]
	for _, tt := range []struct {
		c    Criterion
		v    float64
		want string
	}{
		{lat, -0.3, "0 ms"},
		{lat, 0.4, "0 ms"},
		{lat, 215.2, "+215 ms"},
		{lat, -12.6, "-13 ms"},
		{five, -0.000001, "0.00%"},
		{five, 0.042, "4.20%"},
	} {
		if got := tt.c.FormatValue(tt.v); got != tt.want {
			t.Errorf("%s FormatValue(%v) = %q, want %q", tt.c.ID, tt.v, got, tt.want)
		}
	}
}

// TestGateMinimumSample: 1 error in 14 requests is 7.14 %, far above the 3 % rollback
// threshold, yet proves nothing. Below the minimum sample the traffic criteria are unknown
// (which refuses to move traffic and never rolls back), naming the count and the minimum; the
// pods and resource criteria are still judged.
func TestGateMinimumSample(t *testing.T) {
	t.Parallel()
	p := gateStartProm(t)
	for _, tt := range []struct {
		name     string
		prom     config.Prometheus
		opts     []GateOption
		requests string // "" = the count query returns no data
		want     Verdict
		detail   string
	}{
		{name: "14 requests", requests: "14.2", want: VerdictUnknown, detail: "only 14 requests in the window (need 100)"},
		{name: "99 requests", requests: "99", want: VerdictUnknown, detail: "only 99 requests in the window (need 100)"},
		{name: "100 requests", requests: "100", want: VerdictFail},
		{name: "no count", requests: "", want: VerdictUnknown, detail: "a verdict needs 100 in the window"},
		{name: "context minimum", prom: config.Prometheus{MinRequests: 500}, requests: "400", want: VerdictUnknown, detail: "only 400 requests in the window (need 500)"},
		{name: "option over context", prom: config.Prometheus{MinRequests: 500}, opts: []GateOption{GateWithMinRequests(10)}, requests: "14", want: VerdictFail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := gateEvaluator(t, p, tt.prom, tt.opts...)
			q5xx, _ := e.Query(GateQueryCanary5xx, gateTestTarget)
			qlat, _ := e.Query(GateQueryCanaryLatency, gateTestTarget)
			qstable, _ := e.Query(GateQueryStableLatency, gateTestTarget)
			qbiz, _ := e.Query(GateQueryBusinessErrors, gateTestTarget)
			qcpu, _ := e.Query(GateQueryCPU, gateTestTarget)
			qcount, _ := e.Query(GateQueryCanaryRequests, gateTestTarget)
			values := map[string]string{q5xx: "0.0714", qlat: "900", qstable: "100", qbiz: "0.5", qcpu: "0.95"}
			if tt.requests != "" {
				values[qcount] = tt.requests
			}
			p.set(values)
			crit := []Criterion{gateCriterion(t, "rollback.5xx"), gateCriterion(t, "rollback.latency"), gateCriterion(t, "rollback.business"), gateCriterion(t, "rollback.cpu")}
			rep, err := e.Evaluate(context.Background(), gateTestTarget, crit)
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range rep.Results[:3] {
				if res.Verdict != tt.want || !strings.Contains(res.Detail, tt.detail) {
					t.Errorf("%s: %s %q (%s), want %s with %q", res.Criterion.ID, res.Verdict, res.Display, res.Detail, tt.want, tt.detail)
				}
			}
			if cpu := rep.Results[3]; cpu.Verdict != VerdictFail {
				t.Errorf("the CPU criterion needs no sample, got %s (%s)", cpu.Verdict, cpu.Detail)
			}
		})
	}
}
