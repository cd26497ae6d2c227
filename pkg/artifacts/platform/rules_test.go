package platform

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const platformRoot = "../../../gitops/platform"

// loadAllRules loads every PrometheusRule manifest under gitops/platform/prometheus-rules.
func loadAllRules(t *testing.T) []RuleObject {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(platformRoot, "prometheus-rules", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	var all []RuleObject
	for _, p := range paths {
		objs, err := LoadPrometheusRules(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, objs...)
	}
	return all
}

func allRules(objs []RuleObject) []rulefmt.Rule {
	var out []rulefmt.Rule
	for _, o := range objs {
		for _, g := range o.Groups.Groups {
			out = append(out, g.Rules...)
		}
	}
	return out
}

func recordedNames(rules []rulefmt.Rule) map[string]bool {
	out := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			out[r.Record] = true
		}
	}
	return out
}

func TestPrometheusRulesReadOnlyExportedMetrics(t *testing.T) {
	rules := allRules(loadAllRules(t))
	recorded := recordedNames(rules)
	for _, r := range rules {
		name := r.Alert + r.Record
		names, err := MetricNames(r.Expr)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s reads no metric", name)
		}
		for _, m := range names {
			if !knownMetric(m, recorded) {
				t.Errorf("%s reads %s, which neither our services nor an allowlisted exporter export", name, m)
			}
		}
	}
}

// threshold finds the comparison that decides an alert: the left side of "and"/"unless" chains,
// through parentheses, down to "<expr> OP <number>".
func threshold(t *testing.T, expr string) (string, float64) {
	t.Helper()
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	for {
		switch n := node.(type) {
		case *parser.ParenExpr:
			node = n.Expr
		case *parser.BinaryExpr:
			if n.Op == parser.LAND || n.Op == parser.LUNLESS {
				node = n.LHS
				continue
			}
			if !n.Op.IsComparisonOperator() {
				t.Fatalf("%q does not end in a comparison", expr)
			}
			lit, ok := n.RHS.(*parser.NumberLiteral)
			if !ok {
				t.Fatalf("%q compares against %s, not a number", expr, n.RHS)
			}
			return n.Op.String(), lit.Val
		default:
			t.Fatalf("%q has no threshold comparison", expr)
		}
	}
}

// ranges returns every range-vector duration in an expression.
func ranges(t *testing.T, expr string) []time.Duration {
	t.Helper()
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if ms, ok := n.(*parser.MatrixSelector); ok {
			out = append(out, ms.Range)
		}
		return nil
	})
	return out
}

func TestRequiredAlertsAndRollbackCriteria(t *testing.T) {
	rules := map[string]rulefmt.Rule{}
	for _, r := range allRules(loadAllRules(t)) {
		if r.Alert != "" {
			if _, dup := rules[r.Alert]; dup {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			rules[r.Alert] = r
		}
	}
	tests := []struct {
		alert     string
		op        string
		value     float64
		canary    bool
		reads     []string
		window    time.Duration // every range in the expression, when set
		mustMatch []string      // substrings the expression must contain
	}{
		{alert: "SagaDeadLetterTopicGrowing", op: ">", value: 0, reads: []string{"saga_kafka_records_dead_lettered_total"}, mustMatch: []string{"topic"}},
		{alert: "SagaOutboxBacklogStale", op: ">", value: 300, reads: []string{"saga_outbox_oldest_age_seconds"}},
		{alert: "SagaOutboxRowsFailed", op: ">", value: 0, reads: []string{"saga_outbox_failed"}},
		{alert: "SagaPaymentOutcomeUnknown", op: ">", value: 0, reads: []string{"saga_payments_unresolved"}},
		{alert: "SagaOrdersPendingTooLong", op: ">", value: 0, reads: []string{"saga_orders", "saga_kafka_records_consumed_total"}, mustMatch: []string{`state="PENDING"`}},
		{alert: "CanaryHigh5xxRate", op: ">=", value: 0.03, canary: true, reads: []string{"istio_requests_total"}, window: time.Minute, mustMatch: []string{`destination_version="v2"`, `response_code=~"5.."`, `reporter="destination"`}},
		{alert: "CanaryLatencyRegression", op: ">=", value: 200, canary: true, reads: []string{"istio_request_duration_milliseconds_sum", "istio_request_duration_milliseconds_count"}, mustMatch: []string{`destination_version="v2"`, `destination_version="v1"`}},
		{alert: "CanaryBusinessErrorRate", op: ">=", value: 0.01, canary: true, reads: []string{"saga_business_errors_total", "saga_http_requests_total"}, mustMatch: []string{`version="v2"`}},
		{alert: "CanaryPodsNotReady", op: ">", value: 0, canary: true, reads: []string{"kube_deployment_status_replicas_unavailable"}, mustMatch: []string{`-service-v2`}},
		{alert: "CanaryCPUHigh", op: ">", value: 0.80, canary: true, reads: []string{"container_cpu_usage_seconds_total", "kube_pod_container_resource_limits"}, mustMatch: []string{`resource="cpu"`, `-service-v2-`}},
		{alert: "CanaryMemoryHigh", op: ">", value: 0.85, canary: true, reads: []string{"container_memory_working_set_bytes", "kube_pod_container_resource_limits"}, mustMatch: []string{`resource="memory"`, `-service-v2-`}},
	}
	for _, tt := range tests {
		t.Run(tt.alert, func(t *testing.T) {
			r, ok := rules[tt.alert]
			if !ok {
				t.Fatalf("no alert %s", tt.alert)
			}
			op, value := threshold(t, r.Expr)
			if op != tt.op || value != tt.value {
				t.Errorf("threshold = %s %v, want %s %v", op, value, tt.op, tt.value)
			}
			names, err := MetricNames(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tt.reads {
				if !slices.Contains(names, m) {
					t.Errorf("expression reads %v, want %s among them", names, m)
				}
			}
			for _, s := range tt.mustMatch {
				if !strings.Contains(r.Expr, s) {
					t.Errorf("expression lacks %s:\n%s", s, r.Expr)
				}
			}
			if tt.window != 0 {
				for _, d := range ranges(t, r.Expr) {
					if d != tt.window {
						t.Errorf("range [%s] in expression, want every range to be %s", d, tt.window)
					}
				}
			}
			if tt.canary {
				if r.Labels["canary"] != "rollback" || r.Labels["severity"] != "critical" {
					t.Errorf("labels = %v, want canary=rollback and severity=critical", r.Labels)
				}
			}
			if r.Annotations["summary"] == "" {
				t.Error("no summary annotation")
			}
		})
	}
}

func TestLoadPrometheusRulesRejectsBrokenManifests(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{file: "bad-expr.yaml", want: "BrokenExpression"},
		{file: "unknown-field.yaml", want: "unknown field"},
		{file: "wrong-kind.yaml", want: "want monitoring.coreos.com/v1 PrometheusRule"},
		{file: "bad-template.yaml", want: "annotation"},
		{file: "empty.yaml", want: "no PrometheusRule objects"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := LoadPrometheusRules(filepath.Join("testdata", "rules", tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `sum(rate(a_total[5m])) / sum(rate(b_total[5m]))`, want: []string{"a_total", "b_total"}},
		{expr: `histogram_quantile(0.9, sum by (le) (rate(x_bucket{job="j"}[1m])))`, want: []string{"x_bucket"}},
		{expr: `{__name__="named"}`, want: []string{"named"}},
		{expr: `{__name__=~"any.*"}`, wantErr: "names no metric"},
		{expr: `sum(rate(a[5m]`, wantErr: "parse PromQL"},
		{expr: `vector(1)`, want: []string{}},
	}
	for _, tt := range tests {
		got, err := MetricNames(tt.expr)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("MetricNames(%q) error = %v, want %q", tt.expr, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("MetricNames(%q) = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

func FuzzMetricNames(f *testing.F) {
	f.Add(`sum by (topic) (rate(saga_kafka_records_dead_lettered_total[5m])) > 0`)
	f.Add(`{__name__="x"} and on(a) y offset 5m`)
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := MetricNames(expr)
		if err != nil {
			return
		}
		if !slices.IsSorted(names) {
			t.Fatalf("unsorted names %v", names)
		}
	})
}
