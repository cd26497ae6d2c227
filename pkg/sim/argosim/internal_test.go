package argosim

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateFromTheRepositoryApplicationSet(t *testing.T) {
	t.Parallel()
	as, err := decodeApplicationSet(readRepoFile(t, "gitops/argocd/applicationset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := generateApplications(as)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	// The matrix iterates the first generator (env) outermost.
	want := "order-service-dev,payment-service-dev,product-service-dev,order-service-prod,payment-service-prod,product-service-prod"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("applications = %s, want %s", got, want)
	}
	a := apps[4] // payment-service-prod
	src := a.Spec.GetSource()
	if a.Namespace != "argocd" || a.Spec.Project != "come2us" || a.Spec.Destination.Namespace != "come2us-prod" ||
		src.Helm.ReleaseName != "payment-service" || src.Helm.ValueFiles[0] != "../../envs/prod/payment/values.yaml" ||
		a.Labels["come2us.io/service"] != "payment" || a.Labels["come2us.io/env"] != "prod" {
		t.Fatalf("payment-service-prod = %+v", a)
	}
	if len(a.Finalizers) != 0 {
		t.Fatalf("preserveResourcesOnDeletion is set, yet finalizers %v", a.Finalizers)
	}
	if !a.Spec.SyncPolicy.IsAutomatedSyncEnabled() || !a.Spec.SyncPolicy.SyncOptions.HasOption(syncOptionPruneLast) {
		t.Fatalf("sync policy %+v", a.Spec.SyncPolicy)
	}
}

func TestGenerateRefuses(t *testing.T) {
	t.Parallel()
	base := string(readRepoFile(t, "gitops/argocd/applicationset.yaml"))
	for _, tc := range []struct {
		name, from, to, want string
		unsupported          bool
	}{
		{"missing key", "'{{ .service }}-service-{{ .env }}'", "'{{ .service }}-{{ .region }}'", "map has no entry for key \"region\"", false},
		{"unknown template option", "missingkey=error", "missingkey=explode", "unknown option", false},
		{"git generator", "    - matrix:", "    - git: {repoURL: x, revision: main}\n    - matrix:", "generator kind", true},
		{"selector", "    - matrix:", "    - selector: {matchLabels: {a: b}}\n      matrix:", "selectors", true},
		{"three in a matrix", "                - service: product\n", "                - service: product\n          - list:\n              elements: [{x: y}]\n", "exactly two", false},
		{"duplicate names", "'{{ .service }}-service-{{ .env }}'", "'{{ .service }}-service'", "two parameter sets give", false},
		{"unknown field", "  goTemplate: true", "  goTemplate: true\n  goTemplates: true", "unknown field", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(base, tc.from, tc.to, 1)
			if doc == base {
				t.Fatalf("%q not found in the ApplicationSet", tc.from)
			}
			as, err := decodeApplicationSet([]byte(doc))
			if err == nil {
				_, err = generateApplications(as)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if errors.Is(err, errUnsupportedGenerator) != tc.unsupported {
				t.Fatalf("errors.Is(%v, errUnsupportedGenerator) = %v", err, !tc.unsupported)
			}
		})
	}
}

func TestPlainTemplates(t *testing.T) {
	t.Parallel()
	doc := `apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: plain, namespace: argocd}
spec:
  generators:
    - list:
        elements: [{cluster: a, url: https://a}, {cluster: b, url: https://b}]
  template:
    metadata: {name: 'app-{{cluster}}', labels: {'{{cluster}}': '{{ unknown }}'}}
    spec:
      project: default
      source: {repoURL: x, path: p}
      destination: {server: '{{url}}', namespace: ns}
`
	as, err := decodeApplicationSet([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := generateApplications(as)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[1].Name != "app-b" || apps[1].Spec.Destination.Server != "https://b" || apps[1].Labels["b"] != "{{ unknown }}" {
		t.Fatalf("apps %+v", apps)
	}
	if len(apps[0].Finalizers) != 1 {
		t.Fatalf("without preserveResourcesOnDeletion the resources finalizer is expected: %v", apps[0].Finalizers)
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		want, live any
		ok         bool
	}{
		{"equal", map[string]any{"a": 1.0}, map[string]any{"a": 1.0}, true},
		{"extra live field", map[string]any{"a": 1.0}, map[string]any{"a": 1.0, "b": "x"}, true},
		{"changed value", map[string]any{"a": 1.0}, map[string]any{"a": 2.0}, false},
		{"missing field", map[string]any{"a": "x"}, map[string]any{}, false},
		{"zero value omitted live", map[string]any{"a": 0.0, "b": false, "c": "", "d": []any{}}, map[string]any{}, true},
		{"list element removed", []any{"a", "b"}, []any{"a"}, false},
		{"list element added", []any{"a"}, []any{"a", "b"}, false},
		{"list element changed", []any{map[string]any{"w": 90.0}}, []any{map[string]any{"w": 50.0}}, false},
		{"type changed", map[string]any{"a": "1"}, map[string]any{"a": 1.0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matches(tc.want, tc.live); got != tc.ok {
				t.Fatalf("matches = %v, want %v", got, tc.ok)
			}
		})
	}
}

func obj(kind, name string, wave string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	u.SetName(name)
	u.SetNamespace("ns")
	ann := map[string]string{annotationTrackingID: "app:/" + kind + ":ns/" + name}
	if wave != "" {
		ann[annotationSyncWave] = wave
	}
	u.SetAnnotations(ann)
	return u
}

func TestPlanSyncOrder(t *testing.T) {
	t.Parallel()
	kind := func(k string) kubesim.Kind { return kubesim.Kind{Kind: k, Version: "v1"} }
	rendered := &manifests{objects: []desired{
		{obj: obj("Deployment", "svc-v1", "0"), kind: kind("Deployment"), wave: 0},
		{obj: obj("VirtualService", "svc", "1"), kind: kind("VirtualService"), wave: 1},
	}}
	sortForApply(rendered.objects)
	live := map[string]*unstructured.Unstructured{}
	for _, o := range []*unstructured.Unstructured{obj("Deployment", "svc-v2", "0"), obj("HorizontalPodAutoscaler", "svc-v2", "")} {
		live[o.GetAnnotations()[annotationTrackingID]] = o
	}
	kindFor := func(_, k string) (kubesim.Kind, bool) { return kind(k), true }
	for _, tc := range []struct {
		pruneLast bool
		want      string
	}{
		{true, "apply Deployment/svc-v1, apply VirtualService/svc, prune HorizontalPodAutoscaler/svc-v2, prune Deployment/svc-v2"},
		{false, "apply Deployment/svc-v1, prune HorizontalPodAutoscaler/svc-v2, prune Deployment/svc-v2, apply VirtualService/svc"},
	} {
		var steps []string
		for _, task := range planSync(rendered, live, tc.pruneLast, kindFor) {
			verb := "apply"
			if task.prune {
				verb = "prune"
			}
			steps = append(steps, verb+" "+task.kind.Kind+"/"+task.obj.GetName())
		}
		if got := strings.Join(steps, ", "); got != tc.want {
			t.Errorf("pruneLast=%v:\n got %s\nwant %s", tc.pruneLast, got, tc.want)
		}
	}
}

func TestRevisionsThatLookLikeOptionsAreRefused(t *testing.T) {
	t.Parallel()
	for _, rev := range []string{"", "-x", "--output=/etc/passwd", "main branch", "a\nb"} {
		if validRevision(rev) == nil {
			t.Errorf("validRevision(%q) accepted", rev)
		}
	}
	for _, rev := range []string{"main", "HEAD~1", "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "feature/x"} {
		if err := validRevision(rev); err != nil {
			t.Errorf("validRevision(%q) = %v", rev, err)
		}
	}
}

// FuzzGenerate feeds arbitrary ApplicationSet documents to the decoder and the generator: they
// must return applications or an error, never panic.
func FuzzGenerate(f *testing.F) {
	f.Add(readRepoFile(f, "gitops/argocd/applicationset.yaml"))
	f.Add([]byte("apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nspec:\n  goTemplate: true\n  goTemplateOptions: [bogus]\n  generators: [{list: {elements: [{a: '{{'}]}}]\n  template: {metadata: {name: '{{ .a }}'}}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		as, err := decodeApplicationSet(doc)
		if err != nil {
			return
		}
		apps, err := generateApplications(as)
		if err == nil {
			for _, a := range apps {
				if a.Name == "" {
					t.Fatal("an application without a name was generated")
				}
			}
		}
	})
}

func TestTokenLocations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		md   metadata.MD
		want string
	}{
		{"argo-cd API client", metadata.Pairs("token", "abc"), "abc"},
		{"bearer header", metadata.Pairs("authorization", "Bearer abc"), "abc"},
		{"gateway cookie", metadata.Pairs("grpcgateway-cookie", "other=1; argocd.token=abc"), "abc"},
		{"basic auth is not a token", metadata.Pairs("authorization", "Basic abc"), ""},
		{"nothing", metadata.MD{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenOf(metadata.NewIncomingContext(context.Background(), tc.md)); got != tc.want {
				t.Fatalf("tokenOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestUncomparableIsOutOfSync: an object that cannot be normalised to JSON (a NaN) used to
// compare as an empty object on both sides, which reads as "in sync".
func TestUncomparableIsOutOfSync(t *testing.T) {
	t.Parallel()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "weights", "namespace": "come2us-prod"},
		"data":     map[string]any{"ratio": math.NaN()},
	}}
	if inSync(desired{obj: obj, kind: kubesim.Kind{Kind: "ConfigMap"}}, obj.DeepCopy(), nil) {
		t.Fatal("an object that cannot be compared reads as in sync")
	}
}
