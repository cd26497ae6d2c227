package platform

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/zclconf/go-cty/cty"
	"golang.org/x/mod/modfile"
	istionet "istio.io/api/networking/v1alpha3"
	istioapi "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
)

// zones are the public DNS zones of the environments (the certificate covers each zone and its
// wildcard; gitops/platform/istio/gateway.yaml serves api.<zone>).
var zones = map[string]string{"dev": "dev.come2us.shop", "prod": "come2us.shop"}

// wave is an Application's sync wave (0 when it has none).
func wave(t *testing.T, app *v1alpha1.Application) int {
	t.Helper()
	w, ok := app.Annotations["argocd.argoproj.io/sync-wave"]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(w)
	if err != nil {
		t.Fatalf("%s sync-wave %q: %v", app.Name, w, err)
	}
	return n
}

// decodeBuilt decodes the objects of a kustomize build strictly into their Go types (Istio's
// own types for mesh objects, Kubernetes' for the rest): an unknown field or kind fails.
func decodeBuilt(t *testing.T, dir string) []chart.Object {
	t.Helper()
	built, err := Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	for _, o := range built {
		doc, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(append(stream, "---\n"...), doc...)
	}
	objs, err := chart.Decode(stream)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return objs
}

func only[T any](t *testing.T, objs []chart.Object, what string) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.Value.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s, want exactly one", len(found), what)
	}
	return found[0]
}

// istioVersion is the istio.io/client-go version opsctl is built with: the mesh's charts are
// pinned to the same release, so the types opsctl reads and writes are the mesh's own.
func istioVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Require {
		if r.Mod.Path == "istio.io/client-go" {
			return strings.TrimPrefix(r.Mod.Version, "v")
		}
	}
	t.Fatal("go.mod does not require istio.io/client-go")
	return ""
}

// TestMeshApplications: Argo CD installs the mesh — Istio's CRDs, istiod, the ingress gateway
// and the mesh-wide objects — in order, from charts of the release opsctl's Istio types come
// from, with the values files of gitops/platform/istio.
func TestMeshApplications(t *testing.T) {
	version := istioVersion(t)
	istiodValues, err := LoadYAML(filepath.Join(platformRoot, "istio", "istiod-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gatewayValues, err := LoadYAML(filepath.Join(platformRoot, "istio", "ingressgateway-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			apps := loadEnvApps(t, env)
			charts := map[string]string{"istio-base": "base", "istiod": "istiod", "istio-ingressgateway": "gateway"}
			for name, chartName := range charts {
				app := apps[name]
				if app == nil {
					t.Fatalf("no Application %s-%s", name, env)
				}
				src := chartSource(t, app)
				if src.Chart != chartName || src.RepoURL != "https://istio-release.storage.googleapis.com/charts" {
					t.Errorf("%s installs %s from %s, want Istio's %s chart", app.Name, src.Chart, src.RepoURL, chartName)
				}
				if src.TargetRevision != version {
					t.Errorf("%s pins %s %s; opsctl is built with istio.io/client-go %s", app.Name, chartName, src.TargetRevision, version)
				}
				if app.Spec.Destination.Namespace != "istio-system" {
					t.Errorf("%s deploys to %s, want istio-system", app.Name, app.Spec.Destination.Namespace)
				}
			}
			for name, file := range map[string]string{"istiod": "istiod-values.yaml", "istio-ingressgateway": "ingressgateway-values.yaml"} {
				src := chartSource(t, apps[name])
				if src.Helm == nil || !slices.Contains(src.Helm.ValueFiles, "$values/gitops/platform/istio/"+file) {
					t.Errorf("%s does not use gitops/platform/istio/%s", apps[name].Name, file)
				}
			}
			mesh := apps["istio-mesh"]
			if mesh == nil || mesh.Spec.Source == nil || mesh.Spec.Source.Path != "gitops/platform/istio" {
				t.Fatalf("no Application syncs gitops/platform/istio: %+v", mesh)
			}

			// Order: CRDs, then the control plane, then what needs both; the gateway's Service
			// needs the load balancer controller, which must be running when it is created.
			lbc := apps["aws-load-balancer-controller"]
			if lbc == nil {
				t.Fatalf("no Application aws-load-balancer-controller-%s", env)
			}
			before := [][2]*v1alpha1.Application{
				{apps["istio-base"], apps["istiod"]},
				{apps["istio-base"], mesh},
				{apps["istiod"], mesh},
				{apps["istiod"], apps["istio-ingressgateway"]},
				{lbc, apps["istio-ingressgateway"]},
				{lbc, apps["kube-prometheus-stack"]},
			}
			if a := apps["argocd-ingress"]; a != nil {
				before = append(before, [2]*v1alpha1.Application{lbc, a})
			}
			for _, b := range before {
				if wave(t, b[0]) >= wave(t, b[1]) {
					t.Errorf("%s (wave %d) must sync before %s (wave %d)", b[0].Name, wave(t, b[0]), b[1].Name, wave(t, b[1]))
				}
			}

			objs := decodeBuilt(t, filepath.Join(repoRoot, mesh.Spec.Source.Path))
			pa := only[*istiosecurity.PeerAuthentication](t, objs, "PeerAuthentications")
			if pa.Namespace != "istio-system" || pa.Spec.GetSelector() != nil || pa.Spec.GetMtls().GetMode() != istioapi.PeerAuthentication_MutualTLS_STRICT {
				t.Errorf("PeerAuthentication %s/%s is not mesh-wide STRICT mTLS: %v", pa.Namespace, pa.Name, pa.Spec.GetMtls())
			}
			var providers []string
			for _, p := range asList(mustLookup(t, istiodValues, "meshConfig", "extensionProviders")) {
				n, _ := LookupString(p, "name")
				providers = append(providers, n)
			}
			tel := only[*istiotelemetry.Telemetry](t, objs, "Telemetries")
			for _, tr := range tel.Spec.GetTracing() {
				for _, p := range tr.GetProviders() {
					if !slices.Contains(providers, p.GetName()) {
						t.Errorf("Telemetry %s traces to provider %q, which istiod's meshConfig.extensionProviders (%v) does not declare", tel.Name, p.GetName(), providers)
					}
				}
			}
			gw := only[*istionetworking.Gateway](t, objs, "Gateways")
			for k, v := range gw.Spec.GetSelector() {
				if got, _ := LookupString(gatewayValues, "labels", k); got != v {
					t.Errorf("Gateway %s selects %s=%s, which the ingress gateway's pods (labels %v) do not carry", gw.Name, k, v, gatewayValues["labels"])
				}
			}
			var targetPorts []int
			for _, p := range asList(mustLookup(t, gatewayValues, "service", "ports")) {
				if n, ok := Lookup(p, "targetPort"); ok {
					f, _ := number(n)
					targetPorts = append(targetPorts, int(f))
				}
			}
			var hosts []string
			for _, s := range gw.Spec.GetServers() {
				if !slices.Contains(targetPorts, int(s.GetPort().GetNumber())) {
					t.Errorf("Gateway server port %d is not a target port of the gateway's Service %v", s.GetPort().GetNumber(), targetPorts)
				}
				hosts = append(hosts, s.GetHosts()...)
			}
			if !slices.Contains(hosts, "api."+zones[env]) {
				t.Errorf("Gateway hosts %v do not include api.%s", hosts, zones[env])
			}

			// Prometheus intercepts no inbound traffic: meshed clients (the agent's canary
			// guard) must reach the host they are configured with in plain HTTP.
			agent, err := LoadYAML(filepath.Join(repoRoot, "gitops", "charts", "opsctl-agent", "values.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			promURL := mustLookup(t, agent, "context", "prometheus", "url").(string)
			u, err := url.Parse(promURL)
			if err != nil {
				t.Fatal(err)
			}
			fqdn := strings.TrimSuffix(u.Hostname(), ".")
			if strings.HasSuffix(fqdn, ".svc") {
				fqdn += ".cluster.local"
			}
			var plain bool
			for _, dr := range chart.Of[*istionetworking.DestinationRule](&chart.Manifest{Objects: objs}) {
				if dr.Spec.GetHost() == fqdn && dr.Spec.GetTrafficPolicy().GetTls().GetMode() == istionet.ClientTLSSettings_DISABLE {
					plain = true
				}
			}
			if !plain {
				t.Errorf("no DestinationRule sends plain HTTP to %s, the Prometheus the agent reads (%s)", fqdn, promURL)
			}
		})
	}
}

// policyActions returns every action of an aws_iam_policy_document data source.
func policyActions(t *testing.T, in *Instance, addr string) []string {
	t.Helper()
	doc, ok := in.Module.DataSources[addr]
	if !ok {
		t.Fatalf("no data.%s", addr)
	}
	var actions []string
	for _, b := range doc.Body.Blocks {
		if b.Type != "statement" {
			continue
		}
		v, err := in.Eval(b.Body.Attributes["actions"].Expr)
		if err != nil {
			t.Fatal(err)
		}
		for it := v.ElementIterator(); it.Next(); {
			_, a := it.Element()
			actions = append(actions, a.AsString())
		}
	}
	return actions
}

// TestLoadBalancerController: the controller that creates the NLB of the ingress gateway and the
// ALB of Grafana and Argo CD runs with the role Terraform binds to its service account, finds
// the cluster's VPC by the tag Terraform gives it, and the Ingresses it serves are well formed.
func TestLoadBalancerController(t *testing.T) {
	gatewayValues, err := LoadYAML(filepath.Join(platformRoot, "istio", "ingressgateway-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := LookupString(gatewayValues, "service", "annotations", "service.beta.kubernetes.io/aws-load-balancer-type"); typ != "external" {
		t.Errorf("the ingress gateway's Service has aws-load-balancer-type %q: only \"external\" is the controller's (an NLB), anything else is the in-tree classic ELB", typ)
	}
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			root := loadEnv(t, env)
			eks := child(t, root, "eks")
			vpc := child(t, root, "vpc")
			tf := child(t, root, "load_balancer_controller")
			apps := loadEnvApps(t, env)
			app := apps["aws-load-balancer-controller"]
			if app == nil {
				t.Fatalf("no Application aws-load-balancer-controller-%s", env)
			}
			src := chartSource(t, app)
			if src.Chart != "aws-load-balancer-controller" || src.RepoURL != "https://aws.github.io/eks-charts" {
				t.Errorf("%s installs %s from %s", app.Name, src.Chart, src.RepoURL)
			}
			v := helmValues(t, src)
			cluster, err := eks.Output("cluster_name")
			if err != nil {
				t.Fatal(err)
			}
			got, _ := LookupString(v, "clusterName")
			wantString(t, "controller clusterName", cty.StringVal(got), cluster.AsString())
			region, err := root.Var("region")
			if err != nil {
				t.Fatal(err)
			}
			got, _ = LookupString(v, "region")
			wantString(t, "controller region", cty.StringVal(got), region.AsString())
			got, _ = LookupString(v, "vpcTags", "Name")
			wantString(t, "controller vpcTags.Name", cty.StringVal(got), attr(t, vpc, "aws_vpc.this", "tags").GetAttr("Name").AsString())
			sa, _ := LookupString(v, "serviceAccount", "name")
			wantString(t, "controller service account", attr(t, tf, "aws_eks_pod_identity_association.controller", "service_account"), sa)
			wantString(t, "controller namespace", attr(t, tf, "aws_eks_pod_identity_association.controller", "namespace"), app.Spec.Destination.Namespace)
			if n, _ := Lookup(v, "replicaCount"); func() bool { f, ok := number(n); return !ok || f < 2 }() {
				t.Errorf("controller replicaCount = %v, want 2 or more (its webhook serves every Service and Ingress)", n)
			}
			actions := policyActions(t, tf, "aws_iam_policy_document.controller")
			for _, a := range []string{
				"elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup",
				"elasticloadbalancing:CreateListener", "elasticloadbalancing:RegisterTargets",
				"elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:AddTags",
				"ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:CreateSecurityGroup",
				"acm:ListCertificates", "acm:DescribeCertificate", "iam:CreateServiceLinkedRole",
			} {
				if !slices.Contains(actions, a) {
					t.Errorf("the controller's policy lacks %s", a)
				}
			}

			// Grafana's Ingress, from the kube-prometheus-stack values and the env's host.
			kps := chartSource(t, apps["kube-prometheus-stack"])
			base := values(t, "kube-prometheus-stack")
			ing, _ := Lookup(base, "grafana", "ingress")
			envIng, _ := Lookup(helmValues(t, kps), "grafana", "ingress")
			grafana := map[string]any{}
			for _, m := range []any{ing, envIng} {
				if m, ok := m.(map[string]any); ok {
					for k, v := range m {
						grafana[k] = v
					}
				}
			}
			if grafana["enabled"] != true || grafana["ingressClassName"] != "alb" {
				t.Errorf("Grafana's ingress = %v, want enabled with class alb", grafana)
			}
			checkALBAnnotations(t, "Grafana", grafana["annotations"])
			var hosts []string
			for _, h := range asList(grafana["hosts"]) {
				hosts = append(hosts, h.(string))
			}
			if !slices.Equal(hosts, []string{"grafana." + zones[env]}) {
				t.Errorf("Grafana hosts %v, want grafana.%s", hosts, zones[env])
			}
			var tlsHosts []string
			for _, tl := range asList(grafana["tls"]) {
				for _, h := range asList(mustLookup(t, tl, "hosts")) {
					tlsHosts = append(tlsHosts, h.(string))
				}
			}
			if !slices.Equal(tlsHosts, hosts) {
				t.Errorf("Grafana tls hosts %v, want %v (the controller finds the certificate by them)", tlsHosts, hosts)
			}

			a := apps["argocd-ingress"]
			if env != "prod" {
				if a != nil {
					t.Errorf("%s: only the hub (prod) runs Argo CD", a.Name)
				}
				return
			}
			if a == nil || a.Spec.Source == nil {
				t.Fatal("no Application argocd-ingress-prod for the hub Argo CD's ALB")
			}
			objs := decodeBuilt(t, filepath.Join(repoRoot, a.Spec.Source.Path))
			in := only[*networkingv1.Ingress](t, objs, "Ingresses")
			if in.Namespace != "argocd" || in.Spec.IngressClassName == nil || *in.Spec.IngressClassName != "alb" {
				t.Errorf("Argo CD Ingress %s/%s class %v, want argocd and alb", in.Namespace, in.Name, in.Spec.IngressClassName)
			}
			checkALBAnnotations(t, "Argo CD", anyMap(in.Annotations))
			services := map[string]bool{"argocd-server": true}
			for _, o := range objs {
				if s, ok := o.Value.(*corev1.Service); ok {
					services[s.Name] = true
					if s.Name == "argogrpc" && s.Annotations["alb.ingress.kubernetes.io/backend-protocol-version"] != "GRPC" {
						t.Error("the argogrpc Service is not marked as a gRPC backend")
					}
				}
			}
			var grpcRule bool
			for _, r := range in.Spec.Rules {
				if r.Host != "argocd."+zones[env] {
					t.Errorf("Argo CD Ingress host %q, want argocd.%s", r.Host, zones[env])
				}
				for _, p := range r.HTTP.Paths {
					svc := p.Backend.Service.Name
					if !services[svc] {
						t.Errorf("Argo CD Ingress routes to Service %s, which does not exist", svc)
					}
					if svc == "argogrpc" {
						grpcRule = true
						cond := in.Annotations["alb.ingress.kubernetes.io/conditions."+svc]
						var parsed []map[string]any
						if err := json.Unmarshal([]byte(cond), &parsed); err != nil || len(parsed) == 0 {
							t.Errorf("conditions.%s = %q: %v", svc, cond, err)
						}
					}
				}
			}
			if !grpcRule {
				t.Error("the Argo CD Ingress sends no traffic to the gRPC Service: the argocd CLI and opsctl could not connect")
			}
		})
	}
}

// number reads a YAML or JSON number (YAML decodes integers as int, JSON as float64).
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func anyMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// checkALBAnnotations checks the annotations every ALB Ingress of the platform carries: the
// shared internet-facing group, IP targets, and HTTPS only.
func checkALBAnnotations(t *testing.T, what string, raw any) {
	t.Helper()
	ann, _ := raw.(map[string]any)
	want := map[string]string{
		"alb.ingress.kubernetes.io/scheme":      "internet-facing",
		"alb.ingress.kubernetes.io/target-type": "ip",
		"alb.ingress.kubernetes.io/group.name":  "come2us-ops",
	}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("%s Ingress annotation %s = %v, want %s", what, k, ann[k], v)
		}
	}
	ports, _ := ann["alb.ingress.kubernetes.io/listen-ports"].(string)
	var listeners []map[string]int
	if err := json.Unmarshal([]byte(ports), &listeners); err != nil {
		t.Errorf("%s Ingress listen-ports %q: %v", what, ports, err)
	}
	for _, l := range listeners {
		for proto := range l {
			if proto != "HTTPS" {
				t.Errorf("%s Ingress listens on %s; the ALB serves HTTPS only", what, proto)
			}
		}
	}
	if _, ok := ann["alb.ingress.kubernetes.io/certificate-arn"]; ok {
		t.Errorf("%s Ingress names a certificate ARN: the controller finds the environment's certificate by host", what)
	}
}
