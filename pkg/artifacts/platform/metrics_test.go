package platform

import (
	"testing"

	"github.com/come2us/opsctl/pkg/metrics"
)

// serviceMetrics is every series name the SAGA services and the opsctl agent export, from
// pkg/metrics itself, so dashboards and rules are checked against the code that registers the
// collectors.
func serviceMetrics() map[string]bool {
	out := map[string]bool{}
	for _, n := range append(metrics.Names(), metrics.AgentNames()...) {
		out[n] = true
	}
	return out
}

// externalMetrics is every metric our dashboards and rules read that something other than our
// services exports, with the exporter. TestExternalAllowlistIsUsed keeps it minimal.
func externalMetrics() map[string]string {
	return map[string]string{
		"istio_requests_total":                        "istio (Envoy, telemetry v2)",
		"istio_request_duration_milliseconds_bucket":  "istio (Envoy, telemetry v2)",
		"istio_request_duration_milliseconds_sum":     "istio (Envoy, telemetry v2)",
		"istio_request_duration_milliseconds_count":   "istio (Envoy, telemetry v2)",
		"kube_deployment_status_replicas_unavailable": "kube-state-metrics",
		"kube_deployment_status_replicas_ready":       "kube-state-metrics",
		"kube_deployment_spec_replicas":               "kube-state-metrics",
		"kube_pod_container_resource_limits":          "kube-state-metrics",
		"container_cpu_usage_seconds_total":           "cadvisor (kubelet)",
		"container_memory_working_set_bytes":          "cadvisor (kubelet)",
	}
}

// knownMetric reports whether a metric name is exported by our services or by one of the
// allowlisted exporters, or is recorded by one of our own recording rules.
func knownMetric(name string, recorded map[string]bool) bool {
	if serviceMetrics()[name] || recorded[name] {
		return true
	}
	if _, ok := externalMetrics()[name]; ok {
		return true
	}
	return false
}

func TestKnownMetric(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"saga_orders", true},
		{"saga_http_request_duration_seconds_bucket", true},
		{"saga_http_request_duration_seconds", false},
		{"istio_requests_total", true},
		{"kube_pod_container_resource_limits", true},
		{"saga_orders_total", false},
		{"http_requests_total", false},
		{"up", false},
		{"saga:dead_lettered:rate5m", true},
	}
	recorded := map[string]bool{"saga:dead_lettered:rate5m": true}
	for _, tt := range tests {
		if got := knownMetric(tt.name, recorded); got != tt.want {
			t.Errorf("knownMetric(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
