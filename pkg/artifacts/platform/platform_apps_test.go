package platform

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/zclconf/go-cty/cty"
)

const appsRoot = platformRoot + "/argocd-apps"

// repoRoot is the repository root, against which Argo CD resolves source paths.
const repoRoot = "../../.."

func loadEnvApps(t *testing.T, env string) map[string]*v1alpha1.Application {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(appsRoot, env, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Applications for %s: %v", env, err)
	}
	apps := map[string]*v1alpha1.Application{}
	for _, p := range paths {
		app, err := LoadApplication(p)
		if err != nil {
			t.Fatal(err)
		}
		// One hub Argo CD holds both environments' Applications, so names carry the env.
		base := strings.TrimSuffix(filepath.Base(p), ".yaml")
		if base+"-"+env != app.Name {
			t.Errorf("%s holds Application %s, want %s-%s", p, app.Name, base, env)
		}
		if d := app.Spec.Destination; d.Name != env || d.Server != "" {
			t.Errorf("%s deploys to cluster name %q server %q, want the cluster registered as %q", app.Name, d.Name, d.Server, env)
		}
		apps[base] = app
	}
	return apps
}

func helmValues(t *testing.T, src v1alpha1.ApplicationSource) map[string]any {
	t.Helper()
	if src.Helm == nil || src.Helm.ValuesObject == nil {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(src.Helm.ValuesObject.Raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func chartSource(t *testing.T, app *v1alpha1.Application) v1alpha1.ApplicationSource {
	t.Helper()
	for _, s := range app.Spec.GetSources() {
		if s.Chart != "" {
			return s
		}
	}
	t.Fatalf("Application %s has no chart source", app.Name)
	return v1alpha1.ApplicationSource{}
}

func TestPlatformApplications(t *testing.T) {
	proj, err := LoadAppProject(filepath.Join(appsRoot, "project.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"aws-load-balancer-controller", "fluent-bit", "grafana-dashboards", "istio-base", "istio-ingressgateway", "istio-mesh", "istiod", "karpenter", "karpenter-nodepools", "kube-prometheus-stack", "loki", "otel-collector", "prometheus-rules", "tempo"}
	// The hub Argo CD runs in prod only, and with it its ALB Ingress.
	wantApps := map[string][]string{"dev": common, "prod": append(slices.Clone(common), "argocd-ingress")}
	semver := regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			apps := loadEnvApps(t, env)
			var names []string
			for n := range apps {
				names = append(names, n)
			}
			slices.Sort(names)
			want := slices.Sorted(slices.Values(wantApps[env]))
			if !slices.Equal(names, want) {
				t.Errorf("Applications = %v, want %v", names, want)
			}
			for _, app := range apps {
				if err := CheckApplicationInProject(app, proj); err != nil {
					t.Error(err)
				}
				if app.Spec.SyncPolicy == nil || app.Spec.SyncPolicy.Automated == nil {
					t.Errorf("%s does not sync automatically", app.Name)
				}
				if wave, ok := app.Annotations["argocd.argoproj.io/sync-wave"]; ok {
					if _, err := strconv.Atoi(wave); err != nil {
						t.Errorf("%s sync-wave %q is not an integer", app.Name, wave)
					}
				}
				if got := app.Labels["come2us.io/env"]; got != env {
					t.Errorf("%s is labelled env %q, want %q", app.Name, got, env)
				}
				refs := map[string]bool{}
				for _, src := range app.Spec.GetSources() {
					if src.Ref != "" {
						refs[src.Ref] = true
					}
				}
				for _, src := range app.Spec.GetSources() {
					switch {
					case src.Chart != "":
						if !semver.MatchString(src.TargetRevision) {
							t.Errorf("%s pins chart %s to %q, want an exact version", app.Name, src.Chart, src.TargetRevision)
						}
						if src.Helm == nil {
							continue
						}
						for _, vf := range src.Helm.ValueFiles {
							ref, rel, ok := strings.Cut(vf, "/")
							if !ok || !strings.HasPrefix(ref, "$") || !refs[ref[1:]] {
								t.Errorf("%s value file %s does not name a ref source", app.Name, vf)
								continue
							}
							if _, err := os.Stat(filepath.Join(repoRoot, rel)); err != nil {
								t.Errorf("%s value file %s: %v", app.Name, vf, err)
							}
						}
					case src.Path != "":
						if _, err := os.Stat(filepath.Join(repoRoot, src.Path)); err != nil {
							t.Errorf("%s source path %s: %v", app.Name, src.Path, err)
						}
					case src.Ref == "":
						t.Errorf("%s has a source with neither chart, path nor ref", app.Name)
					}
				}
			}
			if p := apps["karpenter-nodepools"].Spec.Source.Path; p != "gitops/platform/karpenter/overlays/"+env {
				t.Errorf("karpenter-nodepools syncs %s, want the %s overlay", p, env)
			}
		})
	}
	for _, env := range []string{"dev", "prod"} {
		root, err := LoadApplication(filepath.Join(appsRoot, "platform-"+env+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckApplicationInProject(root, proj); err != nil {
			t.Error(err)
		}
		if root.Spec.Source.Path != "gitops/platform/argocd-apps/"+env {
			t.Errorf("platform-%s syncs %s", env, root.Spec.Source.Path)
		}
	}
}

func TestPlatformHelmRepositoriesAreDeclared(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(appsRoot, "repositories.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := splitYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, d := range docs {
		var secret struct {
			Kind     string                             `json:"kind"`
			Metadata struct{ Labels map[string]string } `json:"metadata"`
			Data     map[string]string                  `json:"stringData"`
		}
		if err := json.Unmarshal(yamlToJSON(t, d), &secret); err != nil {
			t.Fatal(err)
		}
		if secret.Kind != "Secret" || secret.Metadata.Labels["argocd.argoproj.io/secret-type"] != "repository" {
			t.Errorf("repositories.yaml holds a %s that is not an Argo CD repository secret", secret.Kind)
		}
		if strings.Contains(secret.Data["url"], "public.ecr.aws") && secret.Data["enableOCI"] != "true" {
			t.Errorf("OCI repository %s without enableOCI", secret.Data["url"])
		}
		declared[secret.Data["url"]] = true
	}
	for _, env := range []string{"dev", "prod"} {
		for _, app := range loadEnvApps(t, env) {
			for _, src := range app.Spec.GetSources() {
				if src.Chart != "" && !declared[src.RepoURL] {
					t.Errorf("%s/%s pulls chart %s from %s, which repositories.yaml does not declare", env, app.Name, src.Chart, src.RepoURL)
				}
			}
		}
	}
}

// TestPlatformMatchesTerraform ties the Kubernetes side to the AWS side: the names the
// Applications and the Karpenter objects use are the names Terraform gives the resources.
func TestPlatformMatchesTerraform(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			root := loadEnv(t, env)
			eks := child(t, root, "eks")
			karpenter := child(t, root, "karpenter")
			s3 := child(t, root, "s3")
			apps := loadEnvApps(t, env)

			cluster, err := eks.Output("cluster_name")
			if err != nil {
				t.Fatal(err)
			}
			nodeRole, err := karpenter.Output("node_role_name")
			if err != nil {
				t.Fatal(err)
			}
			queue := attr(t, karpenter, "aws_sqs_queue.interruption", "name")
			bucket := func(purpose string) string {
				v, err := s3.AttrEach("aws_s3_bucket.this", purpose, "bucket")
				if err != nil {
					t.Fatal(err)
				}
				return v.AsString()
			}

			kv := helmValues(t, chartSource(t, apps["karpenter"]))
			got, _ := LookupString(kv, "settings", "clusterName")
			wantString(t, "karpenter settings.clusterName", cty.StringVal(got), cluster.AsString())
			got, _ = LookupString(kv, "settings", "interruptionQueue")
			wantString(t, "karpenter settings.interruptionQueue", cty.StringVal(got), queue.AsString())
			sa, _ := LookupString(kv, "serviceAccount", "name")
			wantString(t, "karpenter service account", cty.StringVal(sa), attr(t, karpenter, "aws_eks_pod_identity_association.controller", "service_account").AsString())

			lv := helmValues(t, chartSource(t, apps["loki"]))
			for _, k := range []string{"chunks", "ruler", "admin"} {
				got, _ := LookupString(lv, "loki", "storage", "bucketNames", k)
				wantString(t, "loki bucket "+k, cty.StringVal(got), bucket("loki"))
			}
			tv := helmValues(t, chartSource(t, apps["tempo"]))
			got, _ = LookupString(tv, "tempo", "storage", "trace", "s3", "bucket")
			wantString(t, "tempo bucket", cty.StringVal(got), bucket("tempo"))

			fv := helmValues(t, chartSource(t, apps["fluent-bit"]))
			var clusterEnv string
			for _, e := range asList(fv["env"]) {
				if n, _ := LookupString(e, "name"); n == "CLUSTER_NAME" {
					clusterEnv, _ = LookupString(e, "value")
				}
			}
			wantString(t, "fluent-bit CLUSTER_NAME", cty.StringVal(clusterEnv), cluster.AsString())

			// Pod Identity associations name the service accounts the charts create.
			writers, err := s3.Var("pod_writers")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"loki", "tempo"} {
				w := writers.Index(cty.StringVal(c))
				chartSA, _ := LookupString(values(t, c), "serviceAccount", "name")
				wantString(t, c+" service account", w.GetAttr("service_account"), chartSA)
				wantString(t, c+" namespace", w.GetAttr("namespace"), apps[c].Spec.Destination.Namespace)
			}
			fbSA, _ := LookupString(values(t, "fluent-bit"), "serviceAccount", "name")
			wantString(t, "fluent-bit service account", attr(t, eks, "aws_eks_pod_identity_association.node_logs", "service_account"), fbSA)

			// Karpenter objects built from the overlay.
			objs, err := Kustomize(filepath.Join(platformRoot, "karpenter", "overlays", env))
			if err != nil {
				t.Fatal(err)
			}
			nodeClasses := map[string]map[string]any{}
			var pools []map[string]any
			for _, o := range objs {
				name, _ := LookupString(o, "metadata", "name")
				switch o["kind"] {
				case "EC2NodeClass":
					nodeClasses[name] = o
				case "NodePool":
					pools = append(pools, o)
				default:
					t.Errorf("unexpected %v in the Karpenter overlay", o["kind"])
				}
			}
			for name, nc := range nodeClasses {
				role, _ := LookupString(nc, "spec", "role")
				wantString(t, "EC2NodeClass "+name+" role", cty.StringVal(role), nodeRole.AsString())
				for _, sel := range []string{"subnetSelectorTerms", "securityGroupSelectorTerms"} {
					terms := asList(mustLookup(t, nc, "spec", sel))
					tag, _ := LookupString(terms[0], "tags", "karpenter.sh/discovery")
					wantString(t, "EC2NodeClass "+sel, cty.StringVal(tag), cluster.AsString())
				}
				raw, _ := json.Marshal(nc)
				if strings.Contains(string(raw), "CLUSTER") {
					t.Errorf("EC2NodeClass %s still holds the base placeholder: %s", name, raw)
				}
			}
			var spotAndOnDemand bool
			for _, p := range pools {
				name, _ := LookupString(p, "metadata", "name")
				ref, _ := LookupString(p, "spec", "template", "spec", "nodeClassRef", "name")
				if _, ok := nodeClasses[ref]; !ok {
					t.Errorf("NodePool %s refers to EC2NodeClass %q, which the overlay does not define", name, ref)
				}
				if policy, _ := LookupString(p, "spec", "disruption", "consolidationPolicy"); policy != "WhenEmptyOrUnderutilized" {
					t.Errorf("NodePool %s consolidationPolicy = %q, want WhenEmptyOrUnderutilized", name, policy)
				}
				if _, ok := Lookup(p, "spec", "limits", "cpu"); !ok {
					t.Errorf("NodePool %s has no CPU limit", name)
				}
				for _, req := range asList(mustLookup(t, p, "spec", "template", "spec", "requirements")) {
					if key, _ := LookupString(req, "key"); key != "karpenter.sh/capacity-type" {
						continue
					}
					var types []string
					for _, v := range asList(mustLookup(t, req, "values")) {
						types = append(types, v.(string))
					}
					if slices.Contains(types, "spot") && slices.Contains(types, "on-demand") {
						spotAndOnDemand = true
					}
				}
			}
			if !spotAndOnDemand {
				t.Error("no NodePool allows both spot and on-demand capacity")
			}
		})
	}
}

func TestApplicationLoadersRejectBrokenManifests(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
		project             bool
	}{
		{name: "unknown-field", content: "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\nspec:\n  project: p\n  destination: {server: x, namespace: y}\n  sauce: {}\n", want: "unknown field"},
		{name: "wrong-kind", content: "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: a}\n", want: "want argoproj.io/v1alpha1 Application"},
		{name: "two-docs", content: "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n---\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: b}\n", want: "want one YAML document"},
		{name: "project-kind", content: "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: a}\n", want: "AppProject", project: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".yaml")
			if err := writeFile(p, tt.content); err != nil {
				t.Fatal(err)
			}
			var err error
			if tt.project {
				_, err = LoadAppProject(p)
			} else {
				_, err = LoadApplication(p)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}

	proj := &v1alpha1.AppProject{}
	proj.Name = "platform"
	proj.Spec.SourceRepos = []string{"https://github.com/come2us/opsctl.git"}
	proj.Spec.Destinations = []v1alpha1.ApplicationDestination{{Server: "https://kubernetes.default.svc", Namespace: "observability"}}
	app := &v1alpha1.Application{}
	app.Name = "x"
	app.Spec.Project = "platform"
	app.Spec.Source = &v1alpha1.ApplicationSource{RepoURL: "https://example.com/charts", Chart: "x"}
	app.Spec.Destination = v1alpha1.ApplicationDestination{Server: "https://kubernetes.default.svc", Namespace: "default"}
	err := CheckApplicationInProject(app, proj)
	if err == nil || !strings.Contains(err.Error(), "sourceRepos") || !strings.Contains(err.Error(), "not permitted") {
		t.Errorf("CheckApplicationInProject = %v, want both the source and the destination rejected", err)
	}
}
