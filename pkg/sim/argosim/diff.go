package argosim

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Comparing what git renders with what the cluster holds.
//
// The simulated cluster runs no admission and adds no defaults, so a live object differs from
// its manifest only where someone changed it, where a controller owns a field (the HPA owns
// spec.replicas; status belongs to controllers), or in fields the API server adds (uid,
// resourceVersion...). The comparison therefore checks that every field the manifest sets has
// the same value live: objects key by key, lists element by element and of equal length, so a
// route removed from a VirtualService or a weight changed by hand is drift, while fields only
// the live object has are not. A field the manifest sets to its zero value (0, false, "", {} or
// []) also matches a live object that omits it, as protobuf-based clients drop zero values when
// they write an object back. ignoreDifferences JSON pointers are removed from the manifest
// before comparing.

// comparable returns obj as plain JSON values (numbers as float64), without status.
// An object that cannot be normalised yields ok false: a comparison that cannot be made must
// read as out of sync, never as "nothing differs".
func comparable(obj *unstructured.Unstructured) (m map[string]any, ok bool) {
	b, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, false
	}
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, false
	}
	delete(m, "status")
	return m, true
}

// matches reports whether live carries everything want sets.
func matches(want, live any) bool {
	switch w := want.(type) {
	case map[string]any:
		l, ok := live.(map[string]any)
		if !ok {
			return live == nil && len(w) == 0
		}
		for k, wv := range w {
			lv, present := l[k]
			if !present {
				if isZero(wv) {
					continue
				}
				return false
			}
			if !matches(wv, lv) {
				return false
			}
		}
		return true
	case []any:
		l, ok := live.([]any)
		if !ok {
			return live == nil && len(w) == 0
		}
		if len(w) != len(l) {
			return false
		}
		for i := range w {
			if !matches(w[i], l[i]) {
				return false
			}
		}
		return true
	case nil:
		return live == nil || isZero(live)
	default:
		return want == live
	}
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// ignoredPointers returns the JSON pointers of ignoreDifferences that apply to obj.
func ignoredPointers(ignores []v1alpha1.ResourceIgnoreDifferences, group, kind, namespace, name string) []string {
	var out []string
	for _, ig := range ignores {
		if ig.Kind != kind || ig.Group != group || (ig.Name != "" && ig.Name != name) || (ig.Namespace != "" && ig.Namespace != namespace) {
			continue
		}
		out = append(out, ig.JSONPointers...)
	}
	return out
}

// splitPointer splits an RFC 6901 JSON pointer into unescaped tokens.
func splitPointer(p string) []string {
	if p == "" || p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts
}

// removePointer deletes the value at a JSON pointer from a JSON document, if present.
func removePointer(doc map[string]any, p string) {
	tokens := splitPointer(p)
	if len(tokens) == 0 {
		return
	}
	var cur any = doc
	for _, t := range tokens[:len(tokens)-1] {
		cur = child(cur, t)
		if cur == nil {
			return
		}
	}
	last := tokens[len(tokens)-1]
	switch c := cur.(type) {
	case map[string]any:
		delete(c, last)
	case []any:
		if i, err := strconv.Atoi(last); err == nil && i >= 0 && i < len(c) {
			c[i] = nil // keep indices stable; nil matches anything zero-like
		}
	}
}

// getPointer returns the value at a JSON pointer, if present.
func getPointer(doc map[string]any, p string) (any, bool) {
	tokens := splitPointer(p)
	if len(tokens) == 0 {
		return nil, false
	}
	var cur any = doc
	for _, t := range tokens {
		next := child(cur, t)
		if next == nil {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// setPointer sets the value at a JSON pointer, creating objects on the way.
func setPointer(doc map[string]any, p string, v any) {
	tokens := splitPointer(p)
	if len(tokens) == 0 {
		return
	}
	cur := doc
	for _, t := range tokens[:len(tokens)-1] {
		next, ok := cur[t].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[t] = next
		}
		cur = next
	}
	cur[tokens[len(tokens)-1]] = v
}

func child(v any, token string) any {
	switch c := v.(type) {
	case map[string]any:
		return c[token]
	case []any:
		if i, err := strconv.Atoi(token); err == nil && i >= 0 && i < len(c) {
			return c[i]
		}
	}
	return nil
}

// predicted returns live normalised (comparable) and the live object with the rendered one's
// fields laid over it, as JSON; what cannot be normalised falls back to the raw objects.
func predicted(d desired, live *unstructured.Unstructured) (normalized, predicted string) {
	want, ok1 := comparable(d.obj)
	got, ok2 := comparable(live)
	if !ok1 || !ok2 {
		return jsonOf(live), jsonOf(d.obj)
	}
	b, err := json.Marshal(got)
	if err != nil {
		return jsonOf(live), jsonOf(d.obj)
	}
	var over map[string]any
	if err := json.Unmarshal(b, &over); err != nil {
		return jsonOf(live), jsonOf(d.obj)
	}
	overlay(over, want)
	p, err := json.Marshal(over)
	if err != nil {
		return jsonOf(live), jsonOf(d.obj)
	}
	return string(b), string(p)
}

// overlay sets every field of want in dst: maps merge, anything else replaces.
func overlay(dst, want map[string]any) {
	for k, wv := range want {
		if wm, ok := wv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				overlay(dm, wm)
				continue
			}
		}
		dst[k] = wv
	}
}

// inSync compares one rendered object with its live copy (nil when absent).
func inSync(d desired, live *unstructured.Unstructured, ignores []v1alpha1.ResourceIgnoreDifferences) bool {
	if live == nil {
		return false
	}
	want, ok := comparable(d.obj)
	if !ok {
		return false
	}
	got, ok := comparable(live)
	if !ok {
		return false
	}
	for _, p := range ignoredPointers(ignores, d.kind.Group, d.kind.Kind, d.obj.GetNamespace(), d.obj.GetName()) {
		removePointer(want, p)
	}
	return matches(want, got)
}
