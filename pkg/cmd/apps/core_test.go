package apps_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// TestCoreMode runs the commands with --core against a Kubernetes API (kubesim) holding the
// Application objects, through Argo CD's typed clientset and a kubeconfig.
func TestCoreMode(t *testing.T) {
	env(t)
	ks := kubesim.New()
	base, err := ks.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	for _, doc := range fixtures(t) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Apply(&unstructured.Unstructured{Object: obj}); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := ks.WriteKubeconfig(kubeconfig, base, "sim", "argocd"); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	doc := fmt.Sprintf("current-context: prod\ncontexts:\n  prod:\n    argocd:\n      core: true\n    kube:\n      kubeconfig: %q\n      context: sim\n", kubeconfig)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	r := run(t, cfg, false, "", "apps", "list")
	if r.err != nil {
		t.Fatal(r.err)
	}
	golden(t, "list.golden", r.out) // the same table as through argocd-server

	r = run(t, cfg, false, "", "apps", "get", "nope-service-prod")
	want := `application "nope-service-prod" not found in the Kubernetes API at ` + base + " (project come2us)"
	if r.err == nil || r.err.Error() != want || cmdutil.ExitCode(r.err) != 1 {
		t.Fatalf("core get of an unknown app = %v", r.err)
	}

	r = run(t, cfg, false, "", "apps", "sync", "order-service-prod", "--prune", "--yes")
	if r.err != nil {
		t.Fatal(r.err)
	}
	stored, err := ks.Get(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}, "argocd", "order-service-prod")
	if err != nil {
		t.Fatal(err)
	}
	prune, _, _ := unstructured.NestedBool(stored.Object, "operation", "sync", "prune")
	user, _, _ := unstructured.NestedString(stored.Object, "operation", "initiatedBy", "username")
	if !prune || user != "tester@host" {
		t.Fatalf("operation patched by a core sync: %v", stored.Object["operation"])
	}
	r = run(t, cfg, false, "", "apps", "sync", "order-service-prod", "--yes")
	if r.err == nil || !strings.Contains(r.err.Error(), "another operation is already in progress") {
		t.Fatalf("second core sync = %v", r.err)
	}

	// A kube API that is down is one line too.
	ks.Close()
	r = run(t, cfg, false, "", "apps", "list")
	if r.err == nil || r.err.Error() != "cannot reach the Kubernetes API at "+base+": connection refused" {
		t.Fatalf("core list with the API down = %v", r.err)
	}
}
