package meshsim_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/kube"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
	"github.com/come2us/opsctl/pkg/sim/meshsim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run"))
}

// cluster is a simulated cluster with pkg/mesh readers for dev and prod, as the sandbox wires it.
type cluster struct {
	kube   *kubesim.Server
	routes map[string]meshsim.RouteReader
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ks := kubesim.New()
	ks.Token = "t"
	url, err := ks.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ks.Close() })
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := ks.WriteKubeconfig(kc, url, "sandbox", "come2us-prod"); err != nil {
		t.Fatal(err)
	}
	c := &cluster{kube: ks, routes: map[string]meshsim.RouteReader{}}
	for _, env := range []string{"dev", "prod"} {
		rc, err := kube.RESTConfig(config.Kube{Kubeconfig: kc, Context: "sandbox"})
		if err != nil {
			t.Fatal(err)
		}
		rc.QPS, rc.Burst = 1000, 1000 // the router reads routes far more often than a CLI
		c.routes[env] = mesh.New(istioclient.NewForConfigOrDie(rc), kubernetes.NewForConfigOrDie(rc), "come2us-"+env)
	}
	return c
}

// setWeights applies the chart's VirtualService shape with v2 at weight (no v2 route at 0).
func (c *cluster) setWeights(t *testing.T, ns, app string, weight int) {
	t.Helper()
	canary := ""
	if weight > 0 {
		canary = fmt.Sprintf(`
    - destination: {host: %s, subset: v2}
      weight: %d`, app, weight)
	}
	doc := fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  hosts: [%[1]s]
  http:
  - name: mesh
    route:
    - destination: {host: %[1]s, subset: v1}
      weight: %[3]d%[4]s
`, app, ns, 100-weight, canary)
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	if _, err := c.kube.Apply(&unstructured.Unstructured{Object: obj}); err != nil {
		t.Fatal(err)
	}
}

// upstream is an in-process service: it echoes the path it was asked for.
func upstream(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/payments/confirm" {
			w.WriteHeader(http.StatusPaymentRequired)
		}
		_, _ = io.WriteString(w, r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	return s.URL
}

func newMesh(t *testing.T, c *cluster) (*meshsim.Mesh, string) {
	t.Helper()
	up := upstream(t)
	m, err := meshsim.New(meshsim.Config{
		Upstreams: map[string]string{"order-service": up, "payment-service": up},
		Routes:    c.routes, Refresh: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := m.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m, base
}

func get(t *testing.T, url string) (status int, subset, body string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("x-mesh-subset"), string(b)
}

// countOf sums istio_requests_total over the other labels.
type countOf struct {
	m                           *meshsim.Mesh
	ns, workload, version, code string
}

func (c *countOf) value() float64 {
	mfs, _ := c.m.Registry().Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != meshsim.MetricRequests {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["reporter"] == "destination" && l["destination_workload_namespace"] == c.ns && l["destination_workload"] == c.workload &&
				l["destination_version"] == c.version && (c.code == "" || l["response_code"] == c.code) {
				sum += mt.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestWeightedRoutingFollowsTheLiveVirtualService(t *testing.T) {
	c := newCluster(t)
	m, base := newMesh(t, c)

	tests := []struct {
		name   string
		weight int // v2 weight applied before the requests; -1 leaves no VirtualService
		v1, v2 int // of 10 requests
	}{
		{"not synced yet: everything to the stable pods", -1, 10, 0},
		{"no canary", 0, 10, 0},
		{"canary at 30%", 30, 7, 3},
		{"canary at 50%", 50, 5, 5},
		{"promoted to 100%", 100, 0, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.weight >= 0 {
				c.setWeights(t, "come2us-prod", "order-service", tc.weight)
			}
			time.Sleep(5 * time.Millisecond) // past the route cache
			v1Before, v2Before := countVersion(m, "v1"), countVersion(m, "v2")
			got := map[string]int{}
			for range 10 {
				status, subset, body := get(t, base+"/prod/order-service/orders/7?view=full")
				if status != http.StatusOK || body != "/orders/7?view=full" {
					t.Fatalf("status %d body %q: the request did not reach the upstream path", status, body)
				}
				got[subset]++
			}
			if got["v1"] != tc.v1 || got["v2"] != tc.v2 {
				t.Fatalf("subsets %v, want v1=%d v2=%d", got, tc.v1, tc.v2)
			}
			if d1, d2 := countVersion(m, "v1")-v1Before, countVersion(m, "v2")-v2Before; d1 != float64(tc.v1) || d2 != float64(tc.v2) {
				t.Fatalf("istio_requests_total grew by v1=%v v2=%v, want %d and %d", d1, d2, tc.v1, tc.v2)
			}
		})
	}
	// dev has no VirtualService: its traffic stays on v1 whatever prod does.
	if _, subset, _ := get(t, base+"/dev/order-service/orders"); subset != "v1" {
		t.Fatalf("dev request went to %s", subset)
	}
}

func countVersion(m *meshsim.Mesh, version string) float64 {
	return (&countOf{m: m, ns: "come2us-prod", workload: "order-service-" + version, version: version}).value()
}

func TestFaultsOnTheCanary(t *testing.T) {
	c := newCluster(t)
	m, base := newMesh(t, c)
	c.setWeights(t, "come2us-prod", "order-service", 50)
	if err := m.SetFault(meshsim.FaultKey{Env: "prod", App: "order-service", Version: "v2"},
		meshsim.Fault{Delay: 30 * time.Millisecond, ErrorRatio: 0.5}); err != nil {
		t.Fatal(err)
	}
	codes := map[string]map[int]int{"v1": {}, "v2": {}}
	for range 20 {
		status, subset, _ := get(t, base+"/prod/order-service/orders")
		codes[subset][status]++
	}
	if codes["v1"][200] != 10 || codes["v2"][503] != 5 || codes["v2"][200] != 5 {
		t.Fatalf("status codes by subset %v, want v1 10×200 and v2 5×200 + 5×503", codes)
	}
	if n := (&countOf{m: m, ns: "come2us-prod", workload: "order-service-v2", version: "v2", code: "503"}).value(); n != 5 {
		t.Fatalf("istio_requests_total{response_code=503} of v2 = %v, want 5", n)
	}
	// The delay shows in v2's duration histogram only.
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	mean := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != meshsim.MetricDuration {
			continue
		}
		sum, count := map[string]float64{}, map[string]float64{}
		for _, mt := range mf.GetMetric() {
			v := ""
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "destination_version" {
					v = lp.GetValue()
				}
			}
			sum[v] += mt.GetHistogram().GetSampleSum()
			count[v] += float64(mt.GetHistogram().GetSampleCount())
		}
		for v := range sum {
			mean[v] = sum[v] / count[v]
		}
	}
	if mean["v2"] < 30 || mean["v1"] >= 30 {
		t.Fatalf("mean latency v1 %.1f ms, v2 %.1f ms; want v2 ≥ 30 ms (injected) and v1 below", mean["v1"], mean["v2"])
	}

	// Clearing the fault through the admin API.
	req, _ := http.NewRequest(http.MethodDelete, base+"/-/faults/prod/order-service/v2", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(m.Faults()) != 0 {
		t.Fatalf("DELETE: %d, faults left %v", resp.StatusCode, m.Faults())
	}
}

func TestFaultAdminAPI(t *testing.T) {
	c := newCluster(t)
	m, base := newMesh(t, c)
	put := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, base+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, path, body string
		status           int
		errText          string
	}{
		{"valid", "/-/faults/prod/order-service/v2", `{"delay":"250ms","errorRatio":0.05}`, 204, ""},
		{"unknown env", "/-/faults/stage/order-service/v2", `{"errorRatio":0.1}`, 400, `unknown environment \"stage\"`},
		{"unknown app", "/-/faults/prod/cart-service/v2", `{"errorRatio":0.1}`, 400, "unknown service"},
		{"unknown subset", "/-/faults/prod/order-service/v3", `{"errorRatio":0.1}`, 400, "unknown subset"},
		{"ratio out of range", "/-/faults/prod/order-service/v2", `{"errorRatio":1.5}`, 400, "nothing changed"},
		{"bad delay", "/-/faults/prod/order-service/v2", `{"delay":"soon"}`, 400, "delay"},
		{"unknown field", "/-/faults/prod/order-service/v2", `{"latency":"1s"}`, 400, "nothing changed"},
		{"2xx status", "/-/faults/prod/order-service/v2", `{"errorRatio":0.1,"status":200}`, 400, "4xx or 5xx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := put(tc.path, tc.body)
			if status != tc.status || !strings.Contains(body, tc.errText) {
				t.Fatalf("PUT %s %s: %d %s, want %d containing %q", tc.path, tc.body, status, body, tc.status, tc.errText)
			}
		})
	}
	// Only the valid one is set.
	f := m.Faults()
	if len(f) != 1 || f[meshsim.FaultKey{Env: "prod", App: "order-service", Version: "v2"}] != (meshsim.Fault{Delay: 250 * time.Millisecond, ErrorRatio: 0.05}) {
		t.Fatalf("faults %v", f)
	}
	_, _, body := get(t, base+"/-/faults")
	if !strings.Contains(body, `"delay":"250ms"`) || !strings.Contains(body, `"errorRatio":0.05`) {
		t.Fatalf("GET /-/faults: %s", body)
	}
}

func TestUnknownRoutes(t *testing.T) {
	c := newCluster(t)
	_, base := newMesh(t, c)
	for _, path := range []string{"/stage/order-service/orders", "/prod/cart-service/", "/prod"} {
		if status, _, _ := get(t, base+path); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []meshsim.Config{
		{},
		{Upstreams: map[string]string{"order-service": "not a url"}},
		{Upstreams: map[string]string{"order-service": "/relative"}},
	} {
		if _, err := meshsim.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// A context-aware reader is what the Mesh needs; pkg/mesh's Reader satisfies it.
var _ meshsim.RouteReader = (*mesh.Reader)(nil)

// TestCloseWaitsForRequestsNotForSilentConnections: Close lets a request in flight finish, and
// does not wait for a connection that was opened but never sent a request (the HTTP server's
// own Shutdown waits 5 s for those, then fails).
func TestCloseWaitsForRequestsNotForSilentConnections(t *testing.T) {
	c := newCluster(t)
	arrived := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(slow.Close)
	m, err := meshsim.New(meshsim.Config{Upstreams: map[string]string{"order-service": slow.URL}, Routes: c.routes})
	if err != nil {
		t.Fatal(err)
	}
	base, err := m.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/prod/order-service/orders")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	<-arrived
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if r := <-got; r.err != nil || r.status != http.StatusOK || r.body != "done" {
		t.Fatalf("the request in flight during Close: %d %q %v", r.status, r.body, r.err)
	}
	// The silent connection was closed too.
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the silent connection is still open after Close: %v", err)
	}
}
