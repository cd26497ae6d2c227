package platform

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func values(t *testing.T, component string) map[string]any {
	t.Helper()
	v, err := LoadYAML(filepath.Join(platformRoot, component, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKubePrometheusStackSelectsEverywhere(t *testing.T) {
	v := values(t, "kube-prometheus-stack")
	spec, ok := Lookup(v, "prometheus", "prometheusSpec")
	if !ok {
		t.Fatal("no prometheus.prometheusSpec")
	}
	for _, kind := range []string{"serviceMonitor", "podMonitor", "rule"} {
		if useHelm, _ := Lookup(spec, kind+"SelectorNilUsesHelmValues"); useHelm != false {
			t.Errorf("%sSelectorNilUsesHelmValues = %v: Prometheus would only see objects labelled with the Helm release", kind, useHelm)
		}
		for _, sel := range []string{kind + "Selector", kind + "NamespaceSelector"} {
			m, ok := Lookup(spec, sel)
			if mm, isMap := m.(map[string]any); !ok || !isMap || len(mm) != 0 {
				t.Errorf("%s = %v, want {} (every object in every namespace)", sel, m)
			}
		}
	}
	if enabled, ok := Lookup(v, "kube-state-metrics", "enabled"); ok && enabled == false {
		t.Error("kube-state-metrics is disabled; the canary readiness and limit rules need it")
	}
	if enabled, _ := Lookup(v, "nodeExporter", "enabled"); enabled != true {
		t.Error("node-exporter is not enabled")
	}
	if pm, _ := Lookup(v, "prometheus-node-exporter", "prometheus", "podMonitor", "enabled"); pm != true {
		t.Error("node-exporter is not scraped through a PodMonitor")
	}

	pods, _ := Lookup(spec, "additionalPodMonitors")
	var envoy bool
	for _, pm := range asList(pods) {
		for _, ep := range asList(mustLookup(t, pm, "podMetricsEndpoints")) {
			path, _ := LookupString(ep, "path")
			port, _ := LookupString(ep, "port")
			if path == "/stats/prometheus" && port == "http-envoy-prom" {
				envoy = true
			}
		}
	}
	if !envoy {
		t.Error("no PodMonitor scrapes the Envoy sidecars' /stats/prometheus on http-envoy-prom")
	}
	services, _ := Lookup(spec, "additionalServiceMonitors")
	var istiod bool
	for _, sm := range asList(services) {
		sel, _ := LookupString(sm, "selector", "matchLabels", "istio")
		for _, ep := range asList(mustLookup(t, sm, "endpoints")) {
			if port, _ := LookupString(ep, "port"); port == "http-monitoring" && sel == "pilot" {
				istiod = true
			}
		}
	}
	if !istiod {
		t.Error("no ServiceMonitor scrapes istiod (istio=pilot, port http-monitoring)")
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func mustLookup(t *testing.T, v any, path ...string) any {
	t.Helper()
	x, ok := Lookup(v, path...)
	if !ok {
		t.Fatalf("no %s in %v", strings.Join(path, "."), v)
	}
	return x
}

func TestFluentBitPipeline(t *testing.T) {
	v := values(t, "fluent-bit")
	if kind, _ := LookupString(v, "kind"); kind != "DaemonSet" {
		t.Errorf("fluent-bit kind = %q, want DaemonSet", kind)
	}
	var sections []FluentBitSection
	for _, part := range []string{"service", "inputs", "filters", "outputs", "customParsers"} {
		text, ok := LookupString(v, "config", part)
		if !ok {
			t.Fatalf("config.%s missing", part)
		}
		s, err := ParseFluentBitConfig(text)
		if err != nil {
			t.Fatalf("config.%s: %v", part, err)
		}
		sections = append(sections, s...)
	}
	find := func(kind, name string) []FluentBitSection {
		var out []FluentBitSection
		for _, s := range sections {
			if n, _ := s.Get("Name"); s.Kind == kind && n == name {
				out = append(out, s)
			}
		}
		return out
	}
	tails := find("INPUT", "tail")
	if len(tails) != 1 {
		t.Fatalf("want one tail input, got %d", len(tails))
	}
	if p, _ := tails[0].Get("Path"); p != "/var/log/containers/*.log" {
		t.Errorf("tail path = %q", p)
	}

	// The JSON parser filter must name a parser that is defined with Format json.
	parsers := find("FILTER", "parser")
	if len(parsers) != 1 {
		t.Fatalf("want one parser filter, got %d", len(parsers))
	}
	parserName, _ := parsers[0].Get("Parser")
	var jsonParser bool
	for _, p := range sections {
		if n, _ := p.Get("Name"); p.Kind == "PARSER" && n == parserName {
			format, _ := p.Get("Format")
			jsonParser = format == "json"
		}
	}
	if !jsonParser {
		t.Errorf("parser filter uses %q, which is not a PARSER with Format json", parserName)
	}

	// The level filter drops debug and trace records and keeps the rest. Fluent Bit's Onigmo
	// and Go's RE2 agree on this plain alternation.
	greps := find("FILTER", "grep")
	var levelRule string
	for _, g := range greps {
		for _, ex := range g.All("Exclude") {
			if key, re, ok := strings.Cut(ex, " "); ok && key == "level" {
				levelRule = strings.TrimSpace(re)
			}
		}
	}
	if levelRule == "" {
		t.Fatal("no grep filter excludes on the level key")
	}
	re, err := regexp.Compile(levelRule)
	if err != nil {
		t.Fatalf("level filter regex: %v", err)
	}
	for level, dropped := range map[string]bool{"debug": true, "DEBUG": true, "trace": true, "INFO": false, "info": false, "WARN": false, "ERROR": false, "error": false} {
		if re.MatchString(level) != dropped {
			t.Errorf("level %s dropped = %v, want %v", level, re.MatchString(level), dropped)
		}
	}

	// Order matters: metadata, then JSON, then the level (which only exists after parsing).
	var order []string
	for _, s := range sections {
		if s.Kind == "FILTER" {
			n, _ := s.Get("Name")
			order = append(order, n)
		}
	}
	if !slices.Equal(order, []string{"kubernetes", "parser", "grep"}) {
		t.Errorf("filter order = %v, want kubernetes, parser, grep", order)
	}

	lokis := find("OUTPUT", "loki")
	if len(lokis) != 1 {
		t.Fatalf("want one loki output, got %d", len(lokis))
	}
	if host, _ := lokis[0].Get("Host"); host != "loki-gateway.observability.svc.cluster.local" {
		t.Errorf("loki host = %q", host)
	}
	if labels, _ := lokis[0].Get("Labels"); !strings.Contains(labels, "level=$level") {
		t.Errorf("loki labels %q do not carry the level", labels)
	}
}

func TestParseFluentBitConfigRejectsBrokenConfig(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"outside section", "Name tail\n", "outside any section"},
		{"unknown section", "[INPUTS]\n    Name tail\n", "unknown section"},
		{"unterminated", "[INPUT\n", "malformed section header"},
		{"no value", "[INPUT]\n    Name\n", "has no value"},
		{"no name", "[OUTPUT]\n    Match *\n", "has no Name"},
		{"include", "@INCLUDE other.conf\n", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFluentBitConfig(tt.text)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	s, err := ParseFluentBitConfig("# c\n[INPUT]\n    Name systemd\n    Systemd_Filter a=1\n    systemd_filter b=2\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := s[0].All("Systemd_Filter"); !slices.Equal(got, []string{"a=1", "b=2"}) {
		t.Errorf("repeated keys = %v", got)
	}
}

func FuzzParseFluentBitConfig(f *testing.F) {
	f.Add("[SERVICE]\n    Flush 1\n[INPUT]\n    Name tail\n    Path /x\n")
	f.Add("[FILTER]\n\tName grep\n\tExclude level ^debug$\n")
	f.Fuzz(func(t *testing.T, text string) {
		sections, err := ParseFluentBitConfig(text)
		if err != nil {
			return
		}
		for _, s := range sections {
			for _, e := range s.Entries {
				if e.Key == "" || e.Value == "" {
					t.Fatalf("empty key or value in %+v", s)
				}
			}
		}
	})
}

func TestLokiStoresInS3(t *testing.T) {
	v := values(t, "loki")
	if typ, _ := LookupString(v, "loki", "storage", "type"); typ != "s3" {
		t.Errorf("loki.storage.type = %q, want s3", typ)
	}
	configs := asList(mustLookup(t, v, "loki", "schemaConfig", "configs"))
	if len(configs) == 0 {
		t.Fatal("no schema config")
	}
	last := configs[len(configs)-1]
	if store, _ := LookupString(last, "object_store"); store != "s3" {
		t.Errorf("schema object_store = %q, want s3", store)
	}
	if minio, _ := Lookup(v, "minio", "enabled"); minio != false {
		t.Error("the bundled MinIO must be off: storage is S3")
	}
}

func TestOtelCollectorPipeline(t *testing.T) {
	v := values(t, "otel-collector")
	cfg, ok := Lookup(v, "config")
	if !ok {
		t.Fatal("no config")
	}
	pipelines, err := CollectorPipelines(cfg.(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	var traces *CollectorPipeline
	for i := range pipelines {
		if pipelines[i].Name == "traces" {
			traces = &pipelines[i]
		}
	}
	if traces == nil {
		t.Fatal("no traces pipeline")
	}
	var types []string
	for _, r := range traces.Receivers {
		types = append(types, ComponentType(r))
	}
	if !slices.Contains(types, "zipkin") || !slices.Contains(types, "otlp") {
		t.Errorf("traces receivers = %v, want zipkin (Envoy) and otlp (services)", traces.Receivers)
	}
	var tempo bool
	for _, e := range traces.Exporters {
		endpoint, _ := LookupString(cfg, "exporters", e, "endpoint")
		if ComponentType(e) == "otlp" && strings.HasPrefix(endpoint, "tempo.observability.svc.cluster.local:") {
			tempo = true
		}
	}
	if !tempo {
		t.Errorf("traces exporters %v: none is an otlp exporter to Tempo", traces.Exporters)
	}
	if enabled, _ := Lookup(v, "ports", "zipkin", "enabled"); enabled != true {
		t.Error("the zipkin port is not exposed on the Service")
	}
	if name, _ := LookupString(v, "fullnameOverride"); name != "otel-collector" {
		t.Errorf("fullnameOverride = %q: istiod and the services send to otel-collector", name)
	}

	tv := values(t, "tempo")
	if _, ok := Lookup(tv, "tempo", "receivers", "otlp", "protocols", "grpc"); !ok {
		t.Error("Tempo does not receive OTLP/gRPC")
	}
	if backend, _ := LookupString(tv, "tempo", "storage", "trace", "backend"); backend != "s3" {
		t.Errorf("Tempo backend = %q, want s3", backend)
	}
}

func TestCollectorPipelinesRejectsUndefinedComponents(t *testing.T) {
	cfg := map[string]any{
		"receivers": map[string]any{"otlp": map[string]any{}},
		"exporters": map[string]any{"otlp/tempo": map[string]any{}},
		"service": map[string]any{"pipelines": map[string]any{
			"traces":  map[string]any{"receivers": []any{"otlp", "zipkin"}, "exporters": []any{"otlp/tempo"}},
			"metrics": nil,
			"logs":    map[string]any{"receivers": []any{"otlp"}},
			"spans":   map[string]any{"receivers": []any{"otlp"}, "exporters": []any{"otlp/tempo"}},
		}},
	}
	_, err := CollectorPipelines(cfg)
	if err == nil {
		t.Fatal("accepted a pipeline with an undefined receiver")
	}
	for _, want := range []string{`uses receiver "zipkin"`, "pipeline logs needs at least one receiver and one exporter", `unknown signal "spans"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if _, err := CollectorPipelines(map[string]any{}); err == nil {
		t.Error("accepted a config without service")
	}
}

func TestLoadYAMLRejectsDuplicateKeys(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"dup.yaml":   "a: 1\na: 2\n",
		"multi.yaml": "a: 1\n---\nb: 2\n",
		"empty.yaml": "# nothing\n",
	} {
		p := filepath.Join(dir, name)
		if err := writeFile(p, content); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadYAML(p); err == nil {
			t.Errorf("LoadYAML accepted %s", name)
		}
	}
}
