package chart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/redrive"
)

// The opsctl agent's chart (gitops/charts/opsctl-agent), per-env values (gitops/agent/<env>)
// and ApplicationSet (gitops/argocd/opsctl-agent.yaml), checked as the services' are: rendered
// with Helm, decoded strictly, and held to what the agent needs.

const agentChart = "gitops/charts/opsctl-agent"

func renderAgent(t *testing.T, env string, values []byte) *chart.Manifest {
	t.Helper()
	c, err := chart.LoadDir(filepath.Join(repoRoot, agentChart))
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Render(context.Background(), chart.Release{Name: "opsctl-agent", Namespace: gitops.Namespace(env)}, values)
	if err != nil {
		t.Fatalf("render opsctl-agent in %s: %v", env, err)
	}
	return m
}

func agentValues(t *testing.T, env string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "gitops", "agent", env, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAgentChartEveryEnvironment(t *testing.T) {
	for _, env := range gitops.Environments() {
		t.Run(env, func(t *testing.T) {
			ns := gitops.Namespace(env)
			m := renderAgent(t, env, agentValues(t, env))
			for _, o := range m.Objects {
				if o.Namespace != ns {
					t.Errorf("%s %s in namespace %q, want %s", o.Kind, o.Name, o.Namespace, ns)
				}
			}

			deps := chart.Of[*appsv1.Deployment](m)
			if len(deps) != 1 {
				t.Fatalf("%d Deployments", len(deps))
			}
			d := deps[0]
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want 2 (one leads, one stands by)", d.Spec.Replicas)
			}
			pod := d.Spec.Template.Spec
			if pod.ServiceAccountName != "opsctl-agent" || len(pod.Containers) != 1 {
				t.Fatalf("pod spec: %+v", pod)
			}
			ctr := pod.Containers[0]
			args := strings.Join(ctr.Args, " ")
			for _, want := range []string{"agent", "--policy=/etc/opsctl/policy/redrive-policy.yaml", "--leader-elect=always", "--lease-name=opsctl-agent", "--listen=:9090"} {
				if !strings.Contains(args, want) {
					t.Errorf("args %q lack %s", args, want)
				}
			}
			vars := map[string]corev1.EnvVar{}
			for _, e := range ctr.Env {
				vars[e.Name] = e
			}
			if vars["OPSCTL_CONFIG"].Value != "/etc/opsctl/config/config.yaml" ||
				vars["POD_NAME"].ValueFrom == nil || vars["POD_NAME"].ValueFrom.FieldRef.FieldPath != "metadata.name" ||
				vars["POD_NAMESPACE"].ValueFrom == nil || vars["POD_NAMESPACE"].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
				t.Errorf("env %+v", ctr.Env)
			}
			if ctr.LivenessProbe == nil || ctr.LivenessProbe.HTTPGet.Path != "/healthz" || ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("probes: liveness %+v, readiness %+v", ctr.LivenessProbe, ctr.ReadinessProbe)
			}
			if sc := ctr.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container security context %+v", sc)
			}
			mounts := map[string]string{}
			for _, vm := range ctr.VolumeMounts {
				mounts[vm.Name] = vm.MountPath
			}
			configMaps := map[string]string{}
			for _, v := range pod.Volumes {
				if v.ConfigMap != nil {
					configMaps[mounts[v.Name]] = v.ConfigMap.Name
				}
			}
			if configMaps["/etc/opsctl/config"] != "opsctl-agent-config" || configMaps["/etc/opsctl/policy"] != "opsctl-agent-redrive-policy" {
				t.Errorf("mounts %v from ConfigMaps %v", mounts, configMaps)
			}

			// The configuration is an opsctl config file with one context, as config.Load reads it.
			cfg := configMap(t, m, "opsctl-agent-config", "config.yaml")
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			loaded, err := config.Load(path)
			if err != nil {
				t.Fatalf("the agent's config.yaml: %v", err)
			}
			name, ctx, err := loaded.Resolve("")
			if err != nil || name != "cluster" || len(ctx.Kafka.Brokers) != 2 || ctx.Kafka.SASL.Mechanism != kafka.SASLAWSMSKIAM || !ctx.Kafka.TLS.Enabled {
				t.Errorf("context %s: %+v, %v", name, ctx, err)
			}
			// The policy is the built-in default, byte for byte, and valid.
			policy := configMap(t, m, "opsctl-agent-redrive-policy", "redrive-policy.yaml")
			if _, err := redrive.Parse([]byte(policy), "the policy ConfigMap"); err != nil {
				t.Error(err)
			}
			if policy != string(redrive.DefaultText()) {
				t.Error("gitops/charts/opsctl-agent/redrive-policy.yaml differs from pkg/redrive/default-policy.yaml: change both")
			}

			sas := chart.Of[*corev1.ServiceAccount](m)
			if len(sas) != 1 || !strings.HasSuffix(sas[0].Annotations["eks.amazonaws.com/role-arn"], "role/come2us-"+env+"-opsctl-agent") {
				t.Errorf("ServiceAccount %+v", sas)
			}
			checkLeaseRBAC(t, m, ns)

			svcs := chart.Of[*corev1.Service](m)
			if len(svcs) != 1 || !svcs[0].Spec.PublishNotReadyAddresses || !selects(svcs[0].Spec.Selector, d.Spec.Template.Labels) ||
				len(svcs[0].Spec.Ports) != 1 || svcs[0].Spec.Ports[0].Name != "http-metrics" {
				t.Errorf("Service %+v", svcs)
			}
			sms := chart.Of[*monitoringv1.ServiceMonitor](m)
			if len(sms) != 1 || !selects(sms[0].Spec.Selector.MatchLabels, svcs[0].Labels) || len(sms[0].Spec.Endpoints) != 1 ||
				sms[0].Spec.Endpoints[0].Port != "http-metrics" || sms[0].Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor %+v", sms)
			}
			pdbs := chart.Of[*policyv1.PodDisruptionBudget](m)
			if len(pdbs) != 1 || pdbs[0].Spec.MaxUnavailable == nil || pdbs[0].Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("PodDisruptionBudget %+v", pdbs)
			}
		})
	}
}

// checkLeaseRBAC checks the agent may read, create and renew its Lease and nothing else.
func checkLeaseRBAC(t *testing.T, m *chart.Manifest, ns string) {
	t.Helper()
	roles := chart.Of[*rbacv1.Role](m)
	bindings := chart.Of[*rbacv1.RoleBinding](m)
	if len(roles) != 1 || len(bindings) != 1 {
		t.Fatalf("%d Roles, %d RoleBindings", len(roles), len(bindings))
	}
	allowed := map[string]bool{}
	for _, r := range roles[0].Rules {
		if !slices.Equal(r.APIGroups, []string{"coordination.k8s.io"}) || !slices.Equal(r.Resources, []string{"leases"}) {
			t.Errorf("rule beyond Leases: %+v", r)
		}
		for _, v := range r.Verbs {
			switch {
			case len(r.ResourceNames) == 0 && v == "create":
			case slices.Equal(r.ResourceNames, []string{"opsctl-agent"}):
			default:
				t.Errorf("verb %s on leases %v: only create may go unnamed", v, r.ResourceNames)
			}
			allowed[v] = true
		}
	}
	for _, v := range []string{"get", "create", "update"} {
		if !allowed[v] {
			t.Errorf("leader election needs %s on leases", v)
		}
	}
	b := bindings[0]
	if b.RoleRef.Kind != "Role" || b.RoleRef.Name != roles[0].Name || len(b.Subjects) != 1 ||
		b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != "opsctl-agent" || b.Subjects[0].Namespace != ns {
		t.Errorf("RoleBinding %+v", b)
	}
}

func configMap(t *testing.T, m *chart.Manifest, name, key string) string {
	t.Helper()
	for _, cm := range chart.Of[*corev1.ConfigMap](m) {
		if cm.Name == name {
			v, ok := cm.Data[key]
			if !ok {
				t.Fatalf("ConfigMap %s has no key %s", name, key)
			}
			return v
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return ""
}

func TestAgentChartRefusesIncompleteValues(t *testing.T) {
	c, err := chart.LoadDir(filepath.Join(repoRoot, agentChart))
	if err != nil {
		t.Fatal(err)
	}
	for values, want := range map[string]string{
		"image: {repository: r, tag: t}\n":                                "context.kafka.brokers is required",
		"context: {kafka: {brokers: [b:9098]}}\nimage: {repository: r}\n": "image.tag is required",
	} {
		_, err := c.Render(context.Background(), chart.Release{Name: "opsctl-agent", Namespace: "come2us-dev"}, []byte(values))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("values %q: %v, want %q", values, err, want)
		}
	}
	// A policy set in the values replaces the chart's.
	own := "rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n"
	values, err := json.Marshal(map[string]any{"image": map[string]string{"repository": "r", "tag": "t"},
		"context": map[string]any{"kafka": map[string]any{"brokers": []string{"b:9098"}}}, "redrivePolicy": own})
	if err != nil {
		t.Fatal(err)
	}
	m := renderAgent(t, "dev", values)
	if got := configMap(t, m, "opsctl-agent-redrive-policy", "redrive-policy.yaml"); got != own {
		t.Errorf("policy ConfigMap %q, want the values' policy", got)
	}
}

// TestAgentApplicationSet checks the ApplicationSet makes one Application per environment,
// pointing at the chart and values that exist, in the come2us project, which allows every kind
// the chart renders.
func TestAgentApplicationSet(t *testing.T) {
	var appset argov1.ApplicationSet
	decodeArgo(t, filepath.Join(repoRoot, "gitops", "argocd", "opsctl-agent.yaml"), &appset)
	var project argov1.AppProject
	decodeArgo(t, filepath.Join(repoRoot, "gitops", "argocd", "appproject.yaml"), &project)
	gens := appset.Spec.Generators
	if len(gens) != 1 || gens[0].List == nil {
		t.Fatalf("want one list generator, got %+v", gens)
	}
	var names []string
	for _, el := range gens[0].List.Elements {
		var p map[string]string
		if err := json.Unmarshal(el.Raw, &p); err != nil {
			t.Fatal(err)
		}
		expand := func(s string) string {
			var b bytes.Buffer
			if err := template.Must(template.New("").Option("missingkey=error").Parse(s)).Execute(&b, p); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		env := p["env"]
		tmpl := appset.Spec.Template
		name := expand(tmpl.Name)
		names = append(names, name)
		spec := tmpl.Spec
		src := spec.Source
		if name != "opsctl-agent-"+env || spec.Project != project.Name || expand(spec.Destination.Namespace) != gitops.Namespace(env) ||
			expand(spec.Destination.Name) != env {
			t.Errorf("Application %s: project %s, destination %+v", name, spec.Project, spec.Destination)
		}
		if src == nil || src.Path != agentChart || src.Helm == nil || len(src.Helm.ValueFiles) != 1 || !slices.Contains(project.Spec.SourceRepos, src.RepoURL) {
			t.Fatalf("%s source %+v", name, src)
		}
		valuesFile := path.Join(src.Path, expand(src.Helm.ValueFiles[0]))
		if valuesFile != path.Join("gitops", "agent", env, "values.yaml") {
			t.Errorf("%s values %s", name, valuesFile)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, valuesFile)); err != nil {
			t.Error(err)
		}
		sp := spec.SyncPolicy
		if sp == nil || sp.Automated == nil || sp.Automated.Prune == nil || !*sp.Automated.Prune || sp.Automated.SelfHeal == nil || !*sp.Automated.SelfHeal {
			t.Errorf("%s: automated sync with prune and selfHeal required", name)
		}
		// Every namespaced kind the chart renders must be allowed by the project, or Argo CD
		// refuses the sync.
		for _, o := range renderAgent(t, env, agentValues(t, env)).Objects {
			group, _, _ := strings.Cut(o.APIVersion, "/")
			if !strings.Contains(o.APIVersion, "/") {
				group = ""
			}
			ok := false
			for _, gk := range project.Spec.NamespaceResourceWhitelist {
				ok = ok || (gk.Group == group && gk.Kind == o.Kind)
			}
			if !ok {
				t.Errorf("the come2us project does not allow %s %s (group %q): add it to namespaceResourceWhitelist", o.Kind, o.Name, group)
			}
		}
	}
	if !slices.Equal(names, []string{"opsctl-agent-dev", "opsctl-agent-prod"}) {
		t.Errorf("Applications %v", names)
	}
}
