package argosim

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/artifacts/chart"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// Annotations Argo CD reads and writes on managed objects.
const (
	// annotationTrackingID is Argo CD's default (annotation) resource tracking:
	// "<app>:<group>/<Kind>:<namespace>/<name>".
	annotationTrackingID = "argocd.argoproj.io/tracking-id"
	// annotationSyncWave orders the apply of a sync (lower waves first).
	annotationSyncWave = "argocd.argoproj.io/sync-wave"
)

// desired is one object an Application renders, ready to apply.
type desired struct {
	obj  *unstructured.Unstructured
	kind kubesim.Kind
	wave int
}

// manifests is an Application rendered at one commit.
type manifests struct {
	commit  string
	objects []desired // in apply order: wave, then kind order, then name
	images  []string
}

// trackingID returns the tracking annotation value of an object managed by app.
func trackingID(app string, k kubesim.Kind, namespace, name string) string {
	return fmt.Sprintf("%s:%s/%s:%s/%s", app, k.Group, k.Kind, namespace, name)
}

// renderApp renders an Application's Helm source from the tree of a commit, the way the
// repo-server would: the chart at source.path, value files relative to it, inline values on
// top, released as helm.releaseName into the destination namespace. Only single-source Helm
// applications from the watched repository are supported.
func renderApp(ctx context.Context, tree fs.FS, app *v1alpha1.Application, kube *kubesim.Server) (*manifests, error) {
	if app.Spec.HasMultipleSources() {
		return nil, fmt.Errorf("multi-source applications are not supported by the simulated Argo CD")
	}
	src := app.Spec.GetSource()
	if src.Chart != "" || src.Kustomize != nil || src.Directory != nil || src.Plugin != nil {
		return nil, fmt.Errorf("only Helm charts from the git repository are supported by the simulated Argo CD")
	}
	chartDir := path.Clean(src.Path)
	if src.Path == "" || !fs.ValidPath(chartDir) {
		return nil, fmt.Errorf("source path %q is not a directory inside the repository", src.Path)
	}
	c, err := chart.Load(tree, chartDir)
	if err != nil {
		return nil, err
	}
	h := src.Helm
	if h == nil {
		h = &v1alpha1.ApplicationSourceHelm{}
	}
	if len(h.Parameters) > 0 || len(h.FileParameters) > 0 {
		return nil, fmt.Errorf("helm parameters are not supported by the simulated Argo CD; use value files")
	}
	values, err := helmValues(tree, chartDir, h)
	if err != nil {
		return nil, err
	}
	release := h.ReleaseName
	if release == "" {
		release = app.Name
	}
	namespace := app.Spec.Destination.Namespace
	if h.Namespace != "" {
		namespace = h.Namespace
	}
	m, err := c.Render(ctx, chart.Release{Name: release, Namespace: namespace}, values)
	if err != nil {
		return nil, err
	}
	out := &manifests{}
	seen := map[string]bool{}
	for _, o := range m.Objects {
		d, err := toDesired(app.Name, o, app.Spec.Destination.Namespace, kube)
		if err != nil {
			return nil, err
		}
		id := trackingID(app.Name, d.kind, d.obj.GetNamespace(), d.obj.GetName())
		if seen[id] {
			return nil, fmt.Errorf("%s %s/%s is rendered twice", d.kind.Kind, d.obj.GetNamespace(), d.obj.GetName())
		}
		seen[id] = true
		out.objects = append(out.objects, d)
		out.images = append(out.images, podImages(d.obj)...)
	}
	sortForApply(out.objects)
	sort.Strings(out.images)
	out.images = compactStrings(out.images)
	return out, nil
}

// helmValues returns the values document to render with: the value files in order, then inline
// values, merged the way Helm layers -f files (later files win, objects merge key by key).
// A single value file is passed through byte for byte.
func helmValues(tree fs.FS, chartDir string, h *v1alpha1.ApplicationSourceHelm) ([]byte, error) {
	var docs [][]byte
	for _, vf := range h.ValueFiles {
		p := path.Join(chartDir, vf)
		if !fs.ValidPath(p) {
			return nil, fmt.Errorf("value file %q is outside the repository", vf)
		}
		b, err := fs.ReadFile(tree, p)
		if err != nil {
			if h.IgnoreMissingValueFiles {
				continue
			}
			return nil, fmt.Errorf("value file %s: %w", p, err)
		}
		docs = append(docs, b)
	}
	if inline := h.ValuesString(); inline != "" {
		docs = append(docs, []byte(inline))
	}
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
		return docs[0], nil
	}
	merged := map[string]any{}
	for i, d := range docs {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			return nil, fmt.Errorf("values document %d: %w", i+1, err)
		}
		mergeInto(merged, m)
	}
	b, err := yaml.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("merge values: %w", err)
	}
	return b, nil
}

// toDesired converts a rendered object into what is applied: its kind as the cluster serves
// it, the destination namespace when the chart left it empty, and the tracking annotation.
func toDesired(app string, o chart.Object, destNamespace string, kube *kubesim.Server) (desired, error) {
	js, err := yaml.YAMLToJSON(o.YAML)
	if err != nil {
		return desired{}, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return desired{}, fmt.Errorf("%s %s: %w", o.Kind, o.Name, err)
	}
	k, ok := kube.KindFor(u.GetAPIVersion(), u.GetKind())
	if !ok {
		return desired{}, fmt.Errorf("%s %s %s: the simulated cluster does not serve this kind", u.GetAPIVersion(), u.GetKind(), u.GetName())
	}
	if k.Namespaced && u.GetNamespace() == "" {
		u.SetNamespace(destNamespace)
	}
	if !k.Namespaced {
		u.SetNamespace("")
	}
	wave := 0
	if w, ok := u.GetAnnotations()[annotationSyncWave]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return desired{}, fmt.Errorf("%s %s: %s %q is not an integer", u.GetKind(), u.GetName(), annotationSyncWave, w)
		}
		wave = n
	}
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[annotationTrackingID] = trackingID(app, k, u.GetNamespace(), u.GetName())
	u.SetAnnotations(ann)
	return desired{obj: u, kind: k, wave: wave}, nil
}

// kindRank is the apply order of kinds within a wave, after gitops-engine's: namespaces and
// identities first, then configuration, services, workloads, then the traffic objects that
// point at them.
func kindRank(kind string) int {
	order := []string{"Namespace", "ServiceAccount", "Secret", "ConfigMap", "Service", "Deployment",
		"HorizontalPodAutoscaler", "PodDisruptionBudget", "DestinationRule", "VirtualService", "Gateway",
		"PeerAuthentication", "Telemetry", "ServiceMonitor"}
	if i := slices.Index(order, kind); i >= 0 {
		return i
	}
	return len(order)
}

func sortForApply(ds []desired) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.wave != b.wave {
			return a.wave < b.wave
		}
		if ra, rb := kindRank(a.kind.Kind), kindRank(b.kind.Kind); ra != rb {
			return ra < rb
		}
		return a.obj.GetNamespace()+"/"+a.obj.GetName() < b.obj.GetNamespace()+"/"+b.obj.GetName()
	})
}

// podImages lists the container images of a workload's pod template.
func podImages(u *unstructured.Unstructured) []string {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	var out []string
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok {
			if img, ok := m["image"].(string); ok && img != "" {
				out = append(out, img)
			}
		}
	}
	return out
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
