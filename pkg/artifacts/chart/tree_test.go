package chart_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	istioapisecurity "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
	"github.com/come2us/opsctl/pkg/gitops"
)

// decodeArgo strictly decodes an Argo CD manifest into its argo-cd Go type.
func decodeArgo(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	strict, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(strict) > 0 {
		t.Fatalf("%s: %v", file, strict)
	}
}

// TestApplicationSet checks that the ApplicationSet generates exactly one Application per
// environment and service, with the fixed names, and that each points at files that exist.
func TestApplicationSet(t *testing.T) {
	dir := filepath.Join(repoRoot, "gitops", "argocd")
	var appset argov1.ApplicationSet
	decodeArgo(t, filepath.Join(dir, "applicationset.yaml"), &appset)
	var project argov1.AppProject
	decodeArgo(t, filepath.Join(dir, "appproject.yaml"), &project)
	if project.Name != "come2us" {
		t.Errorf("AppProject %q, want come2us", project.Name)
	}

	// Expand the matrix of list generators the way Argo CD does.
	gens := appset.Spec.Generators
	if len(gens) != 1 || gens[0].Matrix == nil {
		t.Fatalf("want one matrix generator, got %+v", gens)
	}
	params := []map[string]string{{}}
	for _, g := range gens[0].Matrix.Generators {
		if g.List == nil {
			t.Fatalf("matrix child is not a list generator: %+v", g)
		}
		var next []map[string]string
		for _, p := range params {
			for _, el := range g.List.Elements {
				var kv map[string]string
				if err := json.Unmarshal(el.Raw, &kv); err != nil {
					t.Fatal(err)
				}
				merged := map[string]string{}
				for k, v := range p {
					merged[k] = v
				}
				for k, v := range kv {
					merged[k] = v
				}
				next = append(next, merged)
			}
		}
		params = next
	}
	tmplSpec := appset.Spec.Template
	expand := func(s string, p map[string]string) string {
		tpl, err := template.New("").Option("missingkey=error").Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := tpl.Execute(&b, p); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return b.String()
	}

	var names []string
	for _, p := range params {
		env, svc := p["env"], p["service"]
		name := expand(tmplSpec.Name, p)
		names = append(names, name)
		if name != gitops.ApplicationName(svc, env) {
			t.Errorf("Application %q, want %q", name, gitops.ApplicationName(svc, env))
		}
		spec := tmplSpec.Spec
		if ns := expand(spec.Destination.Namespace, p); ns != gitops.Namespace(env) {
			t.Errorf("%s namespace %q", name, ns)
		}
		if spec.Project != "come2us" {
			t.Errorf("%s project %q", name, spec.Project)
		}
		src := spec.Source
		if src == nil || src.Helm == nil || len(src.Helm.ValueFiles) != 1 {
			t.Fatalf("%s: want a Helm source with one values file", name)
		}
		if src.Path != path.Join(gitops.DefaultRoot, gitops.ChartDir) {
			t.Errorf("%s chart path %q", name, src.Path)
		}
		valuesFile := path.Join(src.Path, expand(src.Helm.ValueFiles[0], p))
		wantValues, _ := gitops.ValuesPath(gitops.DefaultRoot, env, svc)
		if valuesFile != wantValues {
			t.Errorf("%s values %q, want %q", name, valuesFile, wantValues)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, valuesFile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if rn := expand(src.Helm.ReleaseName, p); rn != gitops.AppName(svc) {
			t.Errorf("%s release %q", name, rn)
		}
		if !slices.Contains(project.Spec.SourceRepos, src.RepoURL) {
			t.Errorf("%s repo %q is not in the project's sourceRepos %v", name, src.RepoURL, project.Spec.SourceRepos)
		}
		ok := false
		for _, d := range project.Spec.Destinations {
			ok = ok || d.Namespace == gitops.Namespace(env)
		}
		if !ok {
			t.Errorf("project does not allow namespace %s", gitops.Namespace(env))
		}
		sp := spec.SyncPolicy
		if sp == nil || sp.Automated == nil || sp.Automated.Prune == nil || !*sp.Automated.Prune || sp.Automated.SelfHeal == nil || !*sp.Automated.SelfHeal {
			t.Errorf("%s: automated sync with prune and selfHeal required: %+v", name, sp)
			continue
		}
		if sp.Retry == nil || sp.Retry.Limit < 1 || sp.Retry.Backoff == nil {
			t.Errorf("%s: retry with backoff required: %+v", name, sp.Retry)
		}
		if !slices.Contains([]string(sp.SyncOptions), "CreateNamespace=true") {
			t.Errorf("%s: CreateNamespace=true missing from %v", name, sp.SyncOptions)
		}
	}
	var want []string
	for _, env := range gitops.Environments() {
		for _, svc := range gitops.Services() {
			want = append(want, gitops.ApplicationName(svc, env))
		}
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("Applications %v, want %v", names, want)
	}
}

// TestIstioPlatform decodes the mesh-wide Istio objects strictly and checks that the tracing
// provider named by the Telemetry exists in the istiod values, and the NLB annotation is set.
func TestIstioPlatform(t *testing.T) {
	dir := filepath.Join(repoRoot, "gitops", "platform", "istio")
	var all []chart.Object
	for _, f := range []string{"peerauthentication.yaml", "gateway.yaml", "telemetry.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		objs, err := chart.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		all = append(all, objs...)
	}
	m := &chart.Manifest{Objects: all}

	pas := chart.Of[*istiosecurity.PeerAuthentication](m)
	if len(pas) != 1 || pas[0].Namespace != "istio-system" || pas[0].Spec.GetMtls().GetMode() != istioapisecurity.PeerAuthentication_MutualTLS_STRICT || pas[0].Spec.GetSelector() != nil {
		t.Errorf("want one mesh-wide STRICT PeerAuthentication in istio-system, got %+v", pas)
	}
	gws := chart.Of[*istionetworking.Gateway](m)
	if len(gws) != 1 || gws[0].Namespace+"/"+gws[0].Name != "istio-system/come2us-gateway" || gws[0].Spec.GetSelector()["istio"] != "ingressgateway" {
		t.Errorf("Gateway: %+v", gws)
	}
	tels := chart.Of[*istiotelemetry.Telemetry](m)
	if len(tels) != 1 || len(tels[0].Spec.GetTracing()) != 1 || len(tels[0].Spec.GetTracing()[0].GetProviders()) != 1 {
		t.Fatalf("Telemetry: %+v", tels)
	}
	provider := tels[0].Spec.GetTracing()[0].GetProviders()[0].GetName()

	var istiod struct {
		MeshConfig struct {
			ExtensionProviders []struct {
				Name   string `json:"name"`
				Zipkin *struct {
					Service string `json:"service"`
					Port    int    `json:"port"`
				} `json:"zipkin"`
			} `json:"extensionProviders"`
		} `json:"meshConfig"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "istiod-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &istiod); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range istiod.MeshConfig.ExtensionProviders {
		if p.Name == provider && p.Zipkin != nil && strings.Contains(p.Zipkin.Service, "otel-collector") && p.Zipkin.Port == 9411 {
			found = true
		}
	}
	if !found {
		t.Errorf("Telemetry uses provider %q, but istiod-values.yaml has no zipkin provider of that name pointing at the OTel Collector", provider)
	}

	var gw struct {
		Service struct {
			Type        string            `json:"type"`
			Annotations map[string]string `json:"annotations"`
		} `json:"service"`
	}
	data, err = os.ReadFile(filepath.Join(dir, "ingressgateway-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &gw); err != nil {
		t.Fatal(err)
	}
	if gw.Service.Type != "LoadBalancer" || gw.Service.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "external" ||
		gw.Service.Annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] != "ip" {
		t.Errorf("ingress gateway Service is not an NLB: %+v", gw.Service)
	}
}
