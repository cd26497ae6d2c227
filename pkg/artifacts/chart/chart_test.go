package chart_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	istioapi "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/goldentest"
)

// repoRoot is the repository root, two levels above this package.
const repoRoot = "../../.."

// seed holds the numbers of the design's autoscaling section (HPA min/max and
// requests/limits), the reference the rendered objects are checked against.
var seed = map[string]struct {
	min, max                       int32
	cpuReq, cpuLim, memReq, memLim string
}{
	"order":   {2, 5, "200m", "500m", "512Mi", "1Gi"},
	"payment": {2, 5, "300m", "600m", "512Mi", "1Gi"},
	"product": {2, 10, "200m", "400m", "256Mi", "512Mi"},
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := chart.LoadDir(filepath.Join(repoRoot, gitops.DefaultRoot, gitops.ChartDir))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readValues(t *testing.T, env, svc string) []byte {
	t.Helper()
	p, err := gitops.ValuesPath(gitops.DefaultRoot, env, svc)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, p))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func render(t *testing.T, c *chart.Chart, env, svc string, values []byte) *chart.Manifest {
	t.Helper()
	m, err := c.Render(context.Background(), chart.Release{Name: gitops.AppName(svc), Namespace: gitops.Namespace(env)}, values)
	if err != nil {
		t.Fatalf("render %s/%s: %v", env, svc, err)
	}
	return m
}

// withCanary returns the env values with the canary block set, edited the way opsctl does.
func withCanary(t *testing.T, values []byte, tag string, weight int) []byte {
	t.Helper()
	rel, err := gitops.ReadRelease(values)
	if err != nil {
		t.Fatal(err)
	}
	rel.Canary = gitops.Canary{Enabled: true, Tag: tag, Weight: weight}
	out, err := gitops.EditRelease(values, rel)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenderEveryEnvironmentAndService(t *testing.T) {
	c := loadChart(t)
	for _, env := range gitops.Environments() {
		for _, svc := range gitops.Services() {
			t.Run(env+"/"+svc, func(t *testing.T) {
				// The same check through the fs.FS entry point the simulated Argo CD uses.
				m, err := chart.RenderService(context.Background(), os.DirFS(repoRoot), gitops.DefaultRoot, env, svc)
				if err != nil {
					t.Fatal(err)
				}
				checkManifest(t, env, svc, m, nil)

				m2 := render(t, c, env, svc, readValues(t, env, svc))
				if len(m2.Objects) != len(m.Objects) {
					t.Errorf("LoadDir+Render gave %d objects, RenderService %d", len(m2.Objects), len(m.Objects))
				}
			})
		}
	}
}

func TestRenderCanary(t *testing.T) {
	c := loadChart(t)
	for _, env := range gitops.Environments() {
		for _, svc := range gitops.Services() {
			for _, w := range []int{0, 10, 30, 50, 100} {
				t.Run(fmt.Sprintf("%s/%s/%d", env, svc, w), func(t *testing.T) {
					values := withCanary(t, readValues(t, env, svc), "2.0.0-rc.1", w)
					m := render(t, c, env, svc, values)
					checkManifest(t, env, svc, m, &canaryWant{tag: "2.0.0-rc.1", weight: w})
				})
			}
		}
	}
}

type canaryWant struct {
	tag    string
	weight int
}

func checkManifest(t *testing.T, env, svc string, m *chart.Manifest, canary *canaryWant) {
	t.Helper()
	app := gitops.AppName(svc)
	ns := gitops.Namespace(env)
	want := seed[svc]
	tracks := []string{"v1"}
	if canary != nil {
		tracks = append(tracks, "v2")
	}

	for _, o := range m.Objects {
		if o.Namespace != ns {
			t.Errorf("%s %s: namespace %q, want %q", o.Kind, o.Name, o.Namespace, ns)
		}
		if canary == nil && strings.HasSuffix(o.Name, "-v2") {
			t.Errorf("canary off but %s %s rendered", o.Kind, o.Name)
		}
	}

	// Deployments: one per track, labelled app/version, seed resources, probes, config.
	deps := chart.Of[*appsv1.Deployment](m)
	var depNames []string
	for _, d := range deps {
		depNames = append(depNames, d.Name)
	}
	var wantNames []string
	for _, tr := range tracks {
		wantNames = append(wantNames, app+"-"+tr)
	}
	if !slices.Equal(depNames, wantNames) {
		t.Fatalf("Deployments %v, want %v", depNames, wantNames)
	}
	for i, d := range deps {
		tr := tracks[i]
		lbl := d.Spec.Template.Labels
		if lbl["app"] != app || lbl["version"] != tr {
			t.Errorf("%s pod labels %v, want app=%s version=%s", d.Name, lbl, app, tr)
		}
		if sel := d.Spec.Selector.MatchLabels; sel["app"] != app || sel["version"] != tr {
			t.Errorf("%s selector %v", d.Name, sel)
		}
		if d.Spec.Replicas != nil {
			t.Errorf("%s sets replicas; the HPA owns them", d.Name)
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", d.Name, len(d.Spec.Template.Spec.Containers))
		}
		ctr := d.Spec.Template.Spec.Containers[0]
		wantTag := "1.0.0"
		if tr == "v2" {
			wantTag = canary.tag
		}
		if !strings.HasSuffix(ctr.Image, "/come2us/"+app+":"+wantTag) {
			t.Errorf("%s image %q, want tag %q", d.Name, ctr.Image, wantTag)
		}
		if len(ctr.Command) != 0 {
			t.Errorf("%s command %v: the image's entrypoint must run the service", d.Name, ctr.Command)
		}
		if len(ctr.Env) == 0 || ctr.Env[0].Name != "SERVICE_VERSION" || ctr.Env[0].Value != tr {
			t.Errorf("%s env %+v, want SERVICE_VERSION=%s first", d.Name, ctr.Env, tr)
		}
		checkQuantity(t, d.Name+" cpu request", ctr.Resources.Requests[corev1.ResourceCPU], want.cpuReq)
		checkQuantity(t, d.Name+" cpu limit", ctr.Resources.Limits[corev1.ResourceCPU], want.cpuLim)
		checkQuantity(t, d.Name+" memory request", ctr.Resources.Requests[corev1.ResourceMemory], want.memReq)
		checkQuantity(t, d.Name+" memory limit", ctr.Resources.Limits[corev1.ResourceMemory], want.memLim)
		if len(ctr.Ports) != 1 || ctr.Ports[0].ContainerPort != 8080 || ctr.Ports[0].Name != "http" {
			t.Errorf("%s ports %+v, want http 8080", d.Name, ctr.Ports)
		}
		if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
			t.Errorf("%s readiness probe %+v, want GET /readyz", d.Name, p)
		}
		if p := ctr.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s liveness probe %+v, want GET /healthz", d.Name, p)
		}
		if len(ctr.EnvFrom) != 2 || ctr.EnvFrom[0].ConfigMapRef == nil || ctr.EnvFrom[0].ConfigMapRef.Name != app+"-config" ||
			ctr.EnvFrom[1].SecretRef == nil || ctr.EnvFrom[1].SecretRef.Name != app+"-secrets" {
			t.Errorf("%s envFrom %+v, want ConfigMap %s-config and Secret %s-secrets", d.Name, ctr.EnvFrom, app, app)
		}
		if d.Spec.Template.Spec.ServiceAccountName != app {
			t.Errorf("%s service account %q", d.Name, d.Spec.Template.Spec.ServiceAccountName)
		}
		tsc := d.Spec.Template.Spec.TopologySpreadConstraints
		if len(tsc) != 1 || tsc[0].TopologyKey != "topology.kubernetes.io/zone" || tsc[0].LabelSelector.MatchLabels["version"] != tr {
			t.Errorf("%s topology spread %+v, want zone spread of its own track", d.Name, tsc)
		}
	}
	if _, ok := m.Find("ConfigMap", app+"-config"); !ok {
		t.Errorf("ConfigMap %s-config missing", app)
	}
	if _, ok := m.Find("ServiceAccount", app); !ok {
		t.Errorf("ServiceAccount %s missing", app)
	}

	// HPA and PDB: one per track, seed min/max, CPU 70 % and memory 75 %.
	hpas := chart.Of[*autoscalingv2.HorizontalPodAutoscaler](m)
	if len(hpas) != len(tracks) {
		t.Fatalf("%d HPAs, want %d", len(hpas), len(tracks))
	}
	for i, h := range hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != wantNames[i] {
			t.Errorf("%s targets %+v", h.Name, h.Spec.ScaleTargetRef)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != want.min || h.Spec.MaxReplicas != want.max {
			t.Errorf("%s replicas %v-%d, want %d-%d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas, want.min, want.max)
		}
		targets := map[corev1.ResourceName]int32{}
		for _, mt := range h.Spec.Metrics {
			if mt.Resource != nil && mt.Resource.Target.AverageUtilization != nil {
				targets[mt.Resource.Name] = *mt.Resource.Target.AverageUtilization
			}
		}
		if targets[corev1.ResourceCPU] != 70 || targets[corev1.ResourceMemory] != 75 || len(targets) != 2 {
			t.Errorf("%s targets %v, want cpu 70 memory 75", h.Name, targets)
		}
	}
	pdbs := chart.Of[*policyv1.PodDisruptionBudget](m)
	if len(pdbs) != len(tracks) {
		t.Fatalf("%d PDBs, want %d", len(pdbs), len(tracks))
	}
	for i, p := range pdbs {
		if p.Spec.Selector.MatchLabels["version"] != tracks[i] || p.Spec.Selector.MatchLabels["app"] != app {
			t.Errorf("%s selector %v", p.Name, p.Spec.Selector.MatchLabels)
		}
	}

	// Service: ClusterIP on 8080 selecting both tracks.
	svcs := chart.Of[*corev1.Service](m)
	if len(svcs) != 1 || svcs[0].Name != app || svcs[0].Spec.Type != corev1.ServiceTypeClusterIP ||
		len(svcs[0].Spec.Ports) != 1 || svcs[0].Spec.Ports[0].Port != 8080 {
		t.Fatalf("Service: %+v", svcs)
	}
	for _, d := range deps {
		if !selects(svcs[0].Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("Service selector %v does not select %s", svcs[0].Spec.Selector, d.Name)
		}
	}

	// DestinationRule: ISTIO_MUTUAL, circuit breaker, subsets selecting the Deployments.
	drs := chart.Of[*istionetworking.DestinationRule](m)
	if len(drs) != 1 || drs[0].Name != app {
		t.Fatalf("DestinationRules: %d", len(drs))
	}
	dr := &drs[0].Spec
	tp := dr.GetTrafficPolicy()
	if tp.GetTls().GetMode() != istioapi.ClientTLSSettings_ISTIO_MUTUAL {
		t.Errorf("DestinationRule TLS mode %v", tp.GetTls().GetMode())
	}
	if tp.GetOutlierDetection().GetConsecutive_5XxErrors().GetValue() == 0 || tp.GetOutlierDetection().GetBaseEjectionTime() == nil {
		t.Errorf("DestinationRule has no outlier detection: %v", tp.GetOutlierDetection())
	}
	if tp.GetConnectionPool().GetTcp().GetMaxConnections() == 0 || tp.GetConnectionPool().GetHttp().GetHttp1MaxPendingRequests() == 0 {
		t.Errorf("DestinationRule has no connection pool limits: %v", tp.GetConnectionPool())
	}
	subsets := map[string]map[string]string{}
	for _, s := range dr.GetSubsets() {
		subsets[s.GetName()] = s.GetLabels()
	}
	for i, d := range deps {
		labels, ok := subsets[tracks[i]]
		if !ok {
			t.Errorf("no subset %s for %s", tracks[i], d.Name)
			continue
		}
		if !selects(labels, d.Spec.Template.Labels) {
			t.Errorf("subset %s labels %v do not select %s (%v)", tracks[i], labels, d.Name, d.Spec.Template.Labels)
		}
		for j, other := range deps {
			if i != j && selects(labels, other.Spec.Template.Labels) {
				t.Errorf("subset %s also selects %s", tracks[i], other.Name)
			}
		}
	}

	// VirtualService: each route splits 100 % between subsets that exist; v2 only with a canary.
	vss := chart.Of[*istionetworking.VirtualService](m)
	if len(vss) != 1 || vss[0].Name != app {
		t.Fatalf("VirtualServices: %d", len(vss))
	}
	if len(vss[0].Spec.GetHttp()) == 0 {
		t.Fatal("VirtualService has no HTTP routes")
	}
	for _, route := range vss[0].Spec.GetHttp() {
		sum := int32(0)
		got := map[string]int32{}
		for _, dst := range route.GetRoute() {
			sum += dst.GetWeight()
			got[dst.GetDestination().GetSubset()] = dst.GetWeight()
			if dst.GetDestination().GetHost() != app {
				t.Errorf("route %s goes to host %q", route.GetName(), dst.GetDestination().GetHost())
			}
			if _, ok := subsets[dst.GetDestination().GetSubset()]; !ok {
				t.Errorf("route %s uses undefined subset %q", route.GetName(), dst.GetDestination().GetSubset())
			}
		}
		if sum != 100 {
			t.Errorf("route %s weights sum to %d", route.GetName(), sum)
		}
		wantRoute := map[string]int32{"v1": 100}
		if canary != nil {
			wantRoute = map[string]int32{"v1": int32(100 - canary.weight), "v2": int32(canary.weight)}
		}
		if fmt.Sprint(got) != fmt.Sprint(wantRoute) {
			t.Errorf("route %s weights %v, want %v", route.GetName(), got, wantRoute)
		}
	}

	// ServiceMonitor: /metrics with the pod's version label.
	sms := chart.Of[*monitoringv1.ServiceMonitor](m)
	if len(sms) != 1 {
		t.Fatalf("ServiceMonitors: %d", len(sms))
	}
	sm := sms[0]
	if !slices.Equal(sm.Spec.PodTargetLabels, []string{"version"}) || len(sm.Spec.Endpoints) != 1 ||
		sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Port != "http" ||
		!selects(sm.Spec.Selector.MatchLabels, svcs[0].Labels) {
		t.Errorf("ServiceMonitor %+v", sm.Spec)
	}
}

func checkQuantity(t *testing.T, what string, got resource.Quantity, want string) {
	t.Helper()
	if got.Cmp(resource.MustParse(want)) != 0 {
		t.Errorf("%s = %s, want %s", what, got.String(), want)
	}
}

// selects reports whether a label selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestRenderRejectsBadValues(t *testing.T) {
	c := loadChart(t)
	base := string(readValues(t, "prod", "order"))
	tests := []struct {
		name    string
		from    string
		to      string
		wantErr string
	}{
		{"canary without tag", "enabled: false # true", "enabled: true # true", "canary.image.tag is empty"},
		{"weight above 100", "weight: 0 #", "weight: 150 #", "canary.weight must be an integer 0-100"},
		{"weight not a number", "weight: 0 #", `weight: "ten" #`, "canary.weight must be an integer 0-100"},
		{"fractional weight", "weight: 0 #", "weight: 12.5 #", "canary.weight must be an integer 0-100"},
		{"unknown service", "service: order", "service: cart", "service must be one of order, payment, product"},
		{"no stable tag", `tag: "1.0.0"`, `tag: ""`, "image.tag is required"},
		{"min above max", "minReplicas: 2", "minReplicas: 9", "exceeds maxReplicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.from) {
				t.Fatalf("fixture lacks %q", tt.from)
			}
			values := strings.Replace(base, tt.from, tt.to, 1)
			_, err := c.Render(context.Background(), chart.Release{Name: "order-service", Namespace: "come2us-prod"}, []byte(values))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestRenderGolden pins the full output for one canary state so chart changes show up in review.
func TestRenderGolden(t *testing.T) {
	c := loadChart(t)
	values := withCanary(t, readValues(t, "prod", "order"), "1.1.0", 30)
	m := render(t, c, "prod", "order", values)
	var buf bytes.Buffer
	for _, o := range m.Objects {
		fmt.Fprintf(&buf, "---\n# Source: %s\n%s", o.Source, bytes.TrimLeft(o.YAML, "\n"))
		if !bytes.HasSuffix(o.YAML, []byte("\n")) {
			buf.WriteByte('\n')
		}
	}
	golden(t, "prod-order-canary-30", buf.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Equal(t, name, got)
}

func TestLoadFromFS(t *testing.T) {
	// Loading from a sub-directory of an fs.FS (a checkout) and from the chart's own root must
	// give the same chart.
	a, err := chart.Load(os.DirFS(repoRoot), "gitops/charts/saga-service")
	if err != nil {
		t.Fatal(err)
	}
	b, err := chart.Load(os.DirFS(filepath.Join(repoRoot, "gitops/charts/saga-service")), ".")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "saga-service" || a.Name() != b.Name() || a.Version() != b.Version() {
		t.Errorf("charts differ: %s %s / %s %s", a.Name(), a.Version(), b.Name(), b.Version())
	}
	if _, err := chart.Load(os.DirFS(repoRoot), "gitops/charts/missing"); err == nil {
		t.Error("loading a missing chart succeeded")
	}
}

func BenchmarkRenderService(b *testing.B) {
	fsys := os.DirFS(repoRoot)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chart.RenderService(context.Background(), fsys, gitops.DefaultRoot, "prod", "order"); err != nil {
			b.Fatal(err)
		}
	}
}
