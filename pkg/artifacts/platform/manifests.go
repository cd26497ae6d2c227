package platform

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// LoadYAML reads one YAML document (such as a Helm values file) into generic maps. Duplicate keys,
// which Helm would silently resolve to the last one, and extra documents are errors.
func LoadYAML(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read YAML: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: more than one YAML document", path)
	}
	if out == nil {
		return nil, fmt.Errorf("%s: empty document", path)
	}
	return out, nil
}

// Lookup follows a path of mapping keys through generic YAML data.
func Lookup(v any, path ...string) (any, bool) {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// LookupString is Lookup for a string leaf.
func LookupString(v any, path ...string) (string, bool) {
	x, ok := Lookup(v, path...)
	if !ok {
		return "", false
	}
	s, ok := x.(string)
	return s, ok
}

// Kustomize builds a kustomization directory with kustomize's own engine (what `kubectl apply
// -k` and Argo CD run) and returns the resulting objects as generic maps.
func Kustomize(dir string) ([]map[string]any, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []map[string]any
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		out = append(out, m)
	}
	return out, nil
}
