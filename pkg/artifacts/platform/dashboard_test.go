package platform

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadDashboards(t *testing.T) map[string]*Dashboard {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(platformRoot, "grafana", "dashboards", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	out := map[string]*Dashboard{}
	for _, p := range paths {
		d, err := LoadDashboard(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[d.UID]; dup {
			t.Errorf("dashboard uid %s used twice", d.UID)
		}
		out[d.UID] = d
	}
	return out
}

func TestDashboardQueriesReadOnlyExportedMetrics(t *testing.T) {
	recorded := recordedNames(allRules(loadAllRules(t)))
	for _, d := range loadDashboards(t) {
		queries, err := d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		if len(queries) == 0 {
			t.Errorf("%s has no queries", d.Path)
		}
		for _, q := range queries {
			names, err := MetricNames(q.PromQL)
			if err != nil {
				t.Errorf("%s %s: %v", d.Path, q.Where, err)
				continue
			}
			if len(names) == 0 {
				t.Errorf("%s %s reads no metric: %s", d.Path, q.Where, q.Expr)
			}
			for _, m := range names {
				if !knownMetric(m, recorded) {
					t.Errorf("%s %s reads %s, which neither our services nor an allowlisted exporter export", d.Path, q.Where, m)
				}
			}
		}
	}
}

// TestExternalAllowlistIsUsed keeps the allowlist of other exporters' metrics down to the
// metrics our rules and dashboards really read, so it cannot grow into a blanket pass.
func TestExternalAllowlistIsUsed(t *testing.T) {
	used := map[string]bool{}
	for _, r := range allRules(loadAllRules(t)) {
		names, err := MetricNames(r.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	for _, d := range loadDashboards(t) {
		queries, err := d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			names, err := MetricNames(q.PromQL)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				used[n] = true
			}
		}
	}
	for name, exporter := range externalMetrics() {
		if !used[name] {
			t.Errorf("allowlisted %s metric %s is read by no rule or dashboard; drop it from the allowlist", exporter, name)
		}
	}
}

func TestDashboardsCoverTheDesign(t *testing.T) {
	dashboards := loadDashboards(t)
	tests := []struct {
		uid   string
		reads []string
		want  []string // substrings some query must contain
	}{
		{uid: "come2us-dlt", reads: []string{"saga_kafka_records_dead_lettered_total", "saga_kafka_records_failed_total"}, want: []string{"sum by (topic)", "rate(saga_kafka_records_dead_lettered_total"}},
		{uid: "come2us-saga", reads: []string{"saga_compensations_total", "saga_kafka_records_consumed_total", "saga_orders", "saga_outbox_oldest_age_seconds"}, want: []string{"sum by (step)", `topic="orders-failed"`}},
		{uid: "come2us-canary", reads: []string{"istio_requests_total", "istio_request_duration_milliseconds_sum", "istio_request_duration_milliseconds_count", "saga_business_errors_total"}, want: []string{"sum by (destination_version)", `response_code=~"5.."`}},
	}
	for _, tt := range tests {
		t.Run(tt.uid, func(t *testing.T) {
			d, ok := dashboards[tt.uid]
			if !ok {
				t.Fatalf("no dashboard %s", tt.uid)
			}
			queries, err := d.Queries()
			if err != nil {
				t.Fatal(err)
			}
			read := map[string]bool{}
			var all []string
			for _, q := range queries {
				names, err := MetricNames(q.PromQL)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range names {
					read[n] = true
				}
				all = append(all, q.Expr)
			}
			for _, m := range tt.reads {
				if !read[m] {
					t.Errorf("no query reads %s", m)
				}
			}
			joined := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(joined, w) {
					t.Errorf("no query contains %q", w)
				}
			}
		})
	}
}

func TestDashboardConfigMapsMatchFiles(t *testing.T) {
	objs, err := Kustomize(filepath.Join(platformRoot, "grafana"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(platformRoot, "grafana", "dashboards", "*.json"))
	if len(objs) != len(files) {
		t.Fatalf("kustomize produced %d objects for %d dashboard files", len(objs), len(files))
	}
	for _, o := range objs {
		if o["kind"] != "ConfigMap" {
			t.Errorf("unexpected %v", o["kind"])
			continue
		}
		if v, _ := LookupString(o, "metadata", "labels", "grafana_dashboard"); v != "1" {
			t.Errorf("%v lacks the grafana_dashboard=1 label the Grafana sidecar selects", o["metadata"])
		}
		if ns, _ := LookupString(o, "metadata", "namespace"); ns != "observability" {
			t.Errorf("dashboard ConfigMap in namespace %q, want observability", ns)
		}
		data, _ := Lookup(o, "data")
		for key, content := range data.(map[string]any) {
			want, err := os.ReadFile(filepath.Join(platformRoot, "grafana", "dashboards", key))
			if err != nil {
				t.Fatalf("ConfigMap key %s has no dashboard file: %v", key, err)
			}
			if content != string(want) {
				t.Errorf("ConfigMap key %s differs from the file", key)
			}
			if !json.Valid([]byte(content.(string))) {
				t.Errorf("ConfigMap key %s is not JSON", key)
			}
		}
	}
}

func TestLoadDashboardRejectsBrokenDashboards(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{name: "not-json", content: `{"uid": "x",`, want: "not a dashboard JSON"},
		{name: "no-uid", content: `{"title": "x", "panels": [{"id": 1, "targets": [{"expr": "up"}]}]}`, want: "uid and a title"},
		{name: "dup-panel", content: `{"uid": "u", "title": "x", "panels": [{"id": 1, "title": "a", "targets": [{"expr": "up"}]}, {"id": 1, "title": "b", "targets": [{"expr": "up"}]}]}`, want: "panel id 1"},
		{name: "no-query", content: `{"uid": "u", "title": "x", "panels": [{"id": 1, "title": "a"}]}`, want: "has no queries"},
		{name: "trailing", content: `{"uid": "u", "title": "x", "panels": [{"id": 1, "title": "a", "targets": [{"expr": "up"}]}]} {}`, want: "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".json")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadDashboard(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestGrafanaToPromQL(t *testing.T) {
	tests := []struct{ in, want string }{
		{`rate(x{ns="$namespace"}[$__rate_interval])`, `rate(x{ns="var"}[5m])`},
		{`increase(x{a=~"${app:regex}|[[b]]"}[$__range])`, `increase(x{a=~"var|var"}[5m])`},
		{`x{pod=~"$app-v[12]-.+"}`, `x{pod=~"var-v[12]-.+"}`},
		{`x * $__range_s`, `x * 300`},
		{`plain`, `plain`},
	}
	for _, tt := range tests {
		if got := GrafanaToPromQL(tt.in); got != tt.want {
			t.Errorf("GrafanaToPromQL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDashboardVariableQueries(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.json")
	content := `{"uid": "u", "title": "t",
	  "panels": [{"id": 1, "title": "p", "targets": [{"refId": "A", "expr": "up"}]}],
	  "templating": {"list": [
	    {"name": "a", "type": "query", "query": "label_values(saga_orders{namespace=\"$ns\"}, state)"},
	    {"name": "b", "type": "query", "query": {"query": "query_result(sum(saga_outbox_backlog))", "refId": "x"}},
	    {"name": "c", "type": "custom", "query": "x,y"}
	  ]}}`
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDashboard(p)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := d.Queries()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range qs {
		got = append(got, q.PromQL)
	}
	want := []string{"up", `saga_orders{namespace="var"}`, "sum(saga_outbox_backlog)"}
	if !slices.Equal(got, want) {
		t.Errorf("queries = %q, want %q", got, want)
	}
	d.Templating.List = append(d.Templating.List, TemplateVariable{Name: "bad", Type: "query", Query: json.RawMessage(`"metrics(x)"`)})
	if _, err := d.Queries(); err == nil || !strings.Contains(err.Error(), "unsupported query") {
		t.Errorf("unsupported variable query accepted: %v", err)
	}
}
