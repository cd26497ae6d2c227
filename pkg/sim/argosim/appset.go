package argosim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"sigs.k8s.io/yaml"
)

// Generating Applications from the ApplicationSet.
//
// This reimplements the two pieces of the ApplicationSet controller the GitOps tree uses: the
// list generator and the matrix of two lists (every pair, first generator winning on a shared
// key, as Argo CD's matrix generator merges), and template rendering (with goTemplate: Go's
// text/template over every string of the template Application, keys included, with Sprig's
// function set minus env/expandenv/getHostByName plus toYaml/fromYaml, and goTemplateOptions
// such as missingkey=error; without it, {{param}} substitution). Anything else — other
// generators, selectors, templatePatch, per-generator templates — is refused by name.
//
// Argo CD's own code was considered and not used: its generators package links every SCM
// provider's SDK (GitHub, GitLab, Gitea, Bitbucket, Azure DevOps, AWS) into opsctl, and even
// its template renderer (applicationset/utils) pulls in controller-runtime, gojq and four more
// modules that opsctl's go.mod does not have, all to expand two nested loops over six names.

// errUnsupportedGenerator marks ApplicationSet features the simulation does not implement.
var errUnsupportedGenerator = errors.New("not supported by the simulated Argo CD")

// decodeApplicationSet strictly decodes an ApplicationSet manifest.
func decodeApplicationSet(data []byte) (*v1alpha1.ApplicationSet, error) {
	var as v1alpha1.ApplicationSet
	if err := yaml.UnmarshalStrict(data, &as); err != nil {
		return nil, fmt.Errorf("decode ApplicationSet: %w", err)
	}
	if as.Kind != "ApplicationSet" || as.APIVersion != v1alpha1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("decode ApplicationSet: got %s %s, want %s ApplicationSet", as.APIVersion, as.Kind, v1alpha1.SchemeGroupVersion)
	}
	return &as, nil
}

// decodeAppProject strictly decodes an AppProject manifest.
func decodeAppProject(data []byte) (*v1alpha1.AppProject, error) {
	var p v1alpha1.AppProject
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("decode AppProject: %w", err)
	}
	if p.Kind != "AppProject" || p.APIVersion != v1alpha1.SchemeGroupVersion.String() {
		return nil, fmt.Errorf("decode AppProject: got %s %s, want %s AppProject", p.APIVersion, p.Kind, v1alpha1.SchemeGroupVersion)
	}
	return &p, nil
}

// generateApplications expands an ApplicationSet into its Applications, in generator order.
func generateApplications(as *v1alpha1.ApplicationSet) ([]v1alpha1.Application, error) {
	if as.Spec.TemplatePatch != nil {
		return nil, fmt.Errorf("ApplicationSet %s: templatePatch is %w", as.Name, errUnsupportedGenerator)
	}
	if len(as.Spec.Generators) == 0 {
		return nil, fmt.Errorf("ApplicationSet %s has no generators", as.Name)
	}
	tmpl := templateApplication(as.Spec.Template)
	var apps []v1alpha1.Application
	seen := map[string]bool{}
	for i, g := range as.Spec.Generators {
		params, err := generatorParams(g, as.Spec.GoTemplate)
		if err != nil {
			return nil, fmt.Errorf("ApplicationSet %s: generator %d: %w", as.Name, i, err)
		}
		for _, p := range params {
			app, err := renderTemplate(tmpl, p, as.Spec.GoTemplate, as.Spec.GoTemplateOptions)
			if err != nil {
				return nil, fmt.Errorf("ApplicationSet %s: render template with %v: %w", as.Name, p, err)
			}
			if app.Name == "" {
				return nil, fmt.Errorf("ApplicationSet %s: the template gives an Application without a name for %v", as.Name, p)
			}
			if seen[app.Name] {
				return nil, fmt.Errorf("ApplicationSet %s: two parameter sets give the Application %q", as.Name, app.Name)
			}
			seen[app.Name] = true
			// As the controller does: without preserveResourcesOnDeletion, deleting an
			// Application deletes its resources (the resources finalizer).
			if (as.Spec.SyncPolicy == nil || !as.Spec.SyncPolicy.PreserveResourcesOnDeletion) && len(app.Finalizers) == 0 {
				app.Finalizers = []string{v1alpha1.ResourcesFinalizerName}
			}
			// As the ApplicationSet controller does: Applications live in the ApplicationSet's
			// namespace.
			app.Namespace = as.Namespace
			app.APIVersion = v1alpha1.SchemeGroupVersion.String()
			app.Kind = "Application"
			apps = append(apps, *app.DeepCopy())
		}
	}
	return apps, nil
}

// templateApplication turns the ApplicationSet's template into an Application to render, as
// the controller's GetTempApplication does.
func templateApplication(t v1alpha1.ApplicationSetTemplate) *v1alpha1.Application {
	var a v1alpha1.Application
	a.Annotations = t.Annotations
	a.Labels = t.Labels
	a.Namespace = t.Namespace
	a.Name = t.Name
	a.Spec = t.Spec
	a.Finalizers = t.Finalizers
	return &a
}

// generatorParams returns the parameter sets of one top-level generator.
func generatorParams(g v1alpha1.ApplicationSetGenerator, goTemplate bool) ([]map[string]any, error) {
	if g.Selector != nil {
		return nil, fmt.Errorf("generator selectors are %w", errUnsupportedGenerator)
	}
	switch {
	case g.List != nil && g.Matrix == nil && onlyListOrMatrix(g):
		return listParams(g.List, goTemplate)
	case g.Matrix != nil && g.List == nil && onlyListOrMatrix(g):
		return matrixParams(g.Matrix, goTemplate)
	}
	return nil, fmt.Errorf("this generator kind is %w (it handles list and matrix-of-list generators)", errUnsupportedGenerator)
}

func onlyListOrMatrix(g v1alpha1.ApplicationSetGenerator) bool {
	return g.Clusters == nil && g.Git == nil && g.SCMProvider == nil && g.ClusterDecisionResource == nil &&
		g.PullRequest == nil && g.Merge == nil && g.Plugin == nil && g.Oci == nil
}

func listParams(l *v1alpha1.ListGenerator, goTemplate bool) ([]map[string]any, error) {
	if l.ElementsYaml != "" {
		return nil, fmt.Errorf("list elementsYaml is %w", errUnsupportedGenerator)
	}
	if !reflect.ValueOf(l.Template).IsZero() {
		return nil, fmt.Errorf("per-generator templates are %w", errUnsupportedGenerator)
	}
	out := make([]map[string]any, 0, len(l.Elements))
	for i, e := range l.Elements {
		var element map[string]any
		if err := json.Unmarshal(e.Raw, &element); err != nil {
			return nil, fmt.Errorf("list element %d is not an object: %w", i, err)
		}
		if goTemplate {
			out = append(out, element)
			continue
		}
		// Without goTemplate Argo CD's list generator passes flat string parameters.
		flat := map[string]any{}
		for k, v := range element {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("list element %d: %q is not a string; nested values need goTemplate: true in the simulated Argo CD", i, k)
			}
			flat[k] = s
		}
		out = append(out, flat)
	}
	return out, nil
}

// matrixParams combines the parameter sets of two nested list generators: every pair, with the
// first generator's values winning on a shared key, as Argo CD's matrix generator merges them.
func matrixParams(m *v1alpha1.MatrixGenerator, goTemplate bool) ([]map[string]any, error) {
	if len(m.Generators) != 2 {
		return nil, fmt.Errorf("a matrix generator needs exactly two generators, got %d", len(m.Generators))
	}
	if !reflect.ValueOf(m.Template).IsZero() {
		return nil, fmt.Errorf("per-generator templates are %w", errUnsupportedGenerator)
	}
	var sets [2][]map[string]any
	for i, n := range m.Generators {
		if n.List == nil || n.Matrix != nil || n.Merge != nil || n.Clusters != nil || n.Git != nil || n.SCMProvider != nil ||
			n.ClusterDecisionResource != nil || n.PullRequest != nil || n.Plugin != nil || n.Oci != nil {
			return nil, fmt.Errorf("matrix generator %d: this generator kind is %w (it handles list generators inside a matrix)", i, errUnsupportedGenerator)
		}
		if n.Selector != nil {
			return nil, fmt.Errorf("matrix generator %d: selectors are %w", i, errUnsupportedGenerator)
		}
		p, err := listParams(n.List, goTemplate)
		if err != nil {
			return nil, fmt.Errorf("matrix generator %d: %w", i, err)
		}
		sets[i] = p
	}
	var out []map[string]any
	for _, a := range sets[0] {
		for _, b := range sets[1] {
			merged := deepCopyMap(b)
			mergeInto(merged, a)
			out = append(out, merged)
		}
	}
	return out, nil
}

// mergeInto copies src over dst, merging nested objects key by key.
func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
			dst[k] = deepCopyMap(sv)
			continue
		}
		dst[k] = v
	}
}

func deepCopyMap(m map[string]any) map[string]any {
	out := maps.Clone(m)
	for k, v := range out {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopyMap(sub)
		}
	}
	return out
}

// renderTemplate renders the template Application with one parameter set.
func renderTemplate(tmpl *v1alpha1.Application, params map[string]any, goTemplate bool, options []string) (*v1alpha1.Application, error) {
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return nil, fmt.Errorf("encode template: %w", err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("encode template: %w", err)
	}
	t := &templater{params: params, goTemplate: goTemplate, options: options}
	out, err := t.walk(doc)
	if err != nil {
		return nil, err
	}
	raw, err = json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode rendered template: %w", err)
	}
	var app v1alpha1.Application
	if err := json.Unmarshal(raw, &app); err != nil {
		return nil, fmt.Errorf("the rendered template is not an Application: %w", err)
	}
	return &app, nil
}

// templater renders every string of a JSON document.
type templater struct {
	params     map[string]any
	goTemplate bool
	options    []string
	base       *template.Template
}

func (t *templater) walk(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return t.replace(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := t.walk(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			rk, err := t.replace(k)
			if err != nil {
				return nil, err
			}
			r, err := t.walk(e)
			if err != nil {
				return nil, err
			}
			out[rk] = r
		}
		return out, nil
	}
	return v, nil
}

func (t *templater) replace(s string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	if !t.goTemplate {
		return plainTemplate.ReplaceAllStringFunc(s, func(tag string) string {
			key := strings.TrimSpace(tag[2 : len(tag)-2])
			if v, ok := t.params[key].(string); ok && key != "" {
				return v
			}
			return tag
		}), nil
	}
	if t.base == nil {
		funcs := sprig.GenericFuncMap()
		// As Argo CD: templates must not learn about the controller's environment.
		delete(funcs, "env")
		delete(funcs, "expandenv")
		delete(funcs, "getHostByName")
		funcs["toYaml"] = func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		}
		funcs["fromYaml"] = func(s string) (map[string]any, error) {
			var m map[string]any
			err := yaml.Unmarshal([]byte(s), &m)
			return m, err
		}
		base := template.New("applicationset").Funcs(funcs)
		for _, o := range t.options {
			// text/template panics on an option it does not know; refuse it instead.
			switch o {
			case "missingkey=default", "missingkey=invalid", "missingkey=zero", "missingkey=error":
				base = base.Option(o)
			default:
				return "", fmt.Errorf("goTemplateOptions: unknown option %q (want missingkey=default|zero|error)", o)
			}
		}
		t.base = base
	}
	clone, err := t.base.Clone()
	if err != nil {
		return "", fmt.Errorf("template %s: %w", s, err)
	}
	parsed, err := clone.Parse(s)
	if err != nil {
		return "", fmt.Errorf("failed to parse template %s: %w", s, err)
	}
	var b bytes.Buffer
	if err := parsed.Execute(&b, t.params); err != nil {
		return "", fmt.Errorf("failed to execute go template %s: %w", s, err)
	}
	return b.String(), nil
}

// plainTemplate matches {{param}} tags of non-Go templates.
var plainTemplate = regexp.MustCompile(`{{[^{}]*}}`)
