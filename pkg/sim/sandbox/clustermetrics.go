package sandbox

import (
	"runtime/metrics"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

var (
	gvrDeployments     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrPods            = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrApplications    = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	gvrVirtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
)

// sandboxNamespace reports whether ns is one of the platform's namespaces.
func sandboxNamespace(ns string) bool { return strings.HasPrefix(ns, "come2us-") }

var (
	descSpecReplicas  = prometheus.NewDesc("kube_deployment_spec_replicas", "Number of desired pods for a deployment.", []string{"namespace", "deployment"}, nil)
	descReadyReplicas = prometheus.NewDesc("kube_deployment_status_replicas_ready", "The number of ready replicas per deployment.", []string{"namespace", "deployment"}, nil)
	descLimits        = prometheus.NewDesc("kube_pod_container_resource_limits", "The number of requested limit resource by a container.", []string{"namespace", "pod", "container", "node", "resource", "unit"}, nil)
	descCPU           = prometheus.NewDesc("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", []string{"namespace", "pod", "container", "cpu"}, nil)
	descMemory        = prometheus.NewDesc("container_memory_working_set_bytes", "Current working set in bytes.", []string{"namespace", "pod", "container"}, nil)
)

// kubeState is the sandbox's kube-state-metrics: Deployment replicas and Pod limits, read from
// the simulated cluster at every scrape.
type kubeState struct{ kube *kubesim.Server }

// Describe sends nothing: the series depend on what the cluster holds (an unchecked collector).
func (kubeState) Describe(chan<- *prometheus.Desc) {}

// Collect reports the platform namespaces' Deployments and Pod limits.
func (k kubeState) Collect(ch chan<- prometheus.Metric) {
	for _, d := range k.kube.List(gvrDeployments, "", nil) {
		if !sandboxNamespace(d.GetNamespace()) {
			continue
		}
		spec, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
		ready, _, _ := unstructured.NestedInt64(d.Object, "status", "readyReplicas")
		ch <- prometheus.MustNewConstMetric(descSpecReplicas, prometheus.GaugeValue, float64(spec), d.GetNamespace(), d.GetName())
		ch <- prometheus.MustNewConstMetric(descReadyReplicas, prometheus.GaugeValue, float64(ready), d.GetNamespace(), d.GetName())
	}
	for _, p := range k.kube.List(gvrPods, "", nil) {
		if !sandboxNamespace(p.GetNamespace()) {
			continue
		}
		for _, c := range containers(p) {
			for _, l := range []struct{ res, unit string }{{"cpu", "core"}, {"memory", "byte"}} {
				q, ok := c.limits[l.res]
				if !ok {
					continue
				}
				ch <- prometheus.MustNewConstMetric(descLimits, prometheus.GaugeValue, q, p.GetNamespace(), p.GetName(), c.name, "sandbox", l.res, l.unit)
			}
		}
	}
}

type container struct {
	name   string
	limits map[string]float64
}

func containers(p *unstructured.Unstructured) []container {
	list, _, _ := unstructured.NestedSlice(p.Object, "spec", "containers")
	var out []container
	for _, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		c := container{name: name, limits: map[string]float64{}}
		limits, _, _ := unstructured.NestedStringMap(m, "resources", "limits")
		for res, v := range limits {
			if q, err := resource.ParseQuantity(v); err == nil {
				c.limits[res] = q.AsApproximateFloat64()
			}
		}
		out = append(out, c)
	}
	return out
}

// cadvisor is the sandbox's kubelet/cAdvisor: every pod of the simulated cluster runs in this one
// process, so the process's real CPU time and memory are shared out evenly over the pods that
// exist at each scrape. The figures are real in sum and simulated in their split.
type cadvisor struct {
	kube *kubesim.Server

	mu      sync.Mutex
	lastCPU float64
	podCPU  map[string]float64 // namespace/pod/container → cumulative seconds
}

func newCadvisor(kube *kubesim.Server) *cadvisor {
	return &cadvisor{kube: kube, podCPU: map[string]float64{}, lastCPU: processCPU()}
}

// Describe sends nothing (an unchecked collector).
func (*cadvisor) Describe(chan<- *prometheus.Desc) {}

// Collect reports each pod container's share of the process's CPU time and memory.
func (c *cadvisor) Collect(ch chan<- prometheus.Metric) {
	type ref struct{ ns, pod, container string }
	var refs []ref
	for _, p := range c.kube.List(gvrPods, "", nil) {
		if !sandboxNamespace(p.GetNamespace()) {
			continue
		}
		for _, ct := range containers(p) {
			refs = append(refs, ref{p.GetNamespace(), p.GetName(), ct.name})
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := processCPU()
	delta := now - c.lastCPU
	c.lastCPU = now
	if len(refs) == 0 {
		return
	}
	mem := processMemory() / float64(len(refs))
	seen := map[string]bool{}
	for _, r := range refs {
		k := r.ns + "/" + r.pod + "/" + r.container
		seen[k] = true
		c.podCPU[k] += delta / float64(len(refs))
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, c.podCPU[k], r.ns, r.pod, r.container, "total")
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, mem, r.ns, r.pod, r.container)
	}
	for k := range c.podCPU {
		if !seen[k] {
			delete(c.podCPU, k)
		}
	}
}

// processCPU is the CPU time the Go runtime estimates this process has used, in seconds.
func processCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return s[0].Value.Float64()
}

// processMemory is the memory the Go runtime has mapped, in bytes.
func processMemory() float64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64())
}
