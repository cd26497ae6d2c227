package gitops

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Release is the part of a service's values file that opsctl manages: the stable image and
// the canary block (`canary: {enabled, image: {tag}, weight}`).
type Release struct {
	// StableRepository and StableTag are image.repository and image.tag (Deployment v1).
	StableRepository string
	StableTag        string
	// Canary is the canary block (Deployment v2 and its traffic weight).
	Canary Canary
}

// Canary is the values file's canary block.
type Canary struct {
	Enabled bool
	Tag     string
	// Weight is the percentage of traffic on v2, 0-100.
	Weight int
}

// String renders the state in the compact form used in commit trailers, e.g.
// "weight=10 enabled=true stable=1.4.2 canary=1.5.0".
func (r Release) String() string {
	return fmt.Sprintf("weight=%d enabled=%t stable=%s canary=%s", r.Canary.Weight, r.Canary.Enabled, orDash(r.StableTag), orDash(r.Canary.Tag))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ParseState reads the trailer form written by Release.String (the repository is not part of
// it and stays empty).
func ParseState(s string) (Release, error) {
	var r Release
	seen := map[string]bool{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return Release{}, fmt.Errorf("state %q: bad field %q", s, f)
		}
		seen[k] = true
		if v == "-" {
			v = ""
		}
		switch k {
		case "weight":
			w, err := strconv.Atoi(v)
			if err != nil {
				return Release{}, fmt.Errorf("state %q: weight: %w", s, err)
			}
			r.Canary.Weight = w
		case "enabled":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Release{}, fmt.Errorf("state %q: enabled: %w", s, err)
			}
			r.Canary.Enabled = b
		case "stable":
			r.StableTag = v
		case "canary":
			r.Canary.Tag = v
		default:
			return Release{}, fmt.Errorf("state %q: unknown field %q", s, k)
		}
	}
	if len(seen) != 4 {
		return Release{}, fmt.Errorf("state %q: want weight, enabled, stable and canary", s)
	}
	return r, nil
}

// DescribeDiff lists the fields that differ between a and b ("canary.weight 10 -> 30"), or
// "no difference".
func DescribeDiff(a, b Release) string {
	var parts []string
	add := func(name, x, y string) {
		if x != y {
			parts = append(parts, fmt.Sprintf("%s %s -> %s", name, quoteEmpty(x), quoteEmpty(y)))
		}
	}
	add("image.repository", a.StableRepository, b.StableRepository)
	add("image.tag", a.StableTag, b.StableTag)
	add("canary.enabled", strconv.FormatBool(a.Canary.Enabled), strconv.FormatBool(b.Canary.Enabled))
	add("canary.image.tag", a.Canary.Tag, b.Canary.Tag)
	add("canary.weight", strconv.Itoa(a.Canary.Weight), strconv.Itoa(b.Canary.Weight))
	if len(parts) == 0 {
		return "no difference"
	}
	return strings.Join(parts, ", ")
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// imageTag is the OCI tag grammar.
var imageTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidTag reports whether s is a valid container image tag.
func ValidTag(s string) bool { return imageTag.MatchString(s) }

// ReadRelease reads the image and canary blocks of a values file. Any deviation from the
// expected shape is an error wrapping ErrMalformed that names the field: missing or duplicate
// keys, unknown keys in the canary block, wrong types, a weight outside 0-100. Other keys of the
// file are not inspected.
func ReadRelease(data []byte) (Release, error) {
	root, err := parseDocument(data)
	if err != nil {
		return Release{}, err
	}
	var r Release
	get := func(kind ScalarKind, path ...string) (string, error) {
		n, _, err := lookup(root, path)
		if err != nil {
			return "", err
		}
		p := strings.Join(path, ".")
		if n.Kind != yaml.ScalarNode {
			return "", fmt.Errorf("%w: %s must be %s", ErrMalformed, p, kindName(kind))
		}
		if n.ShortTag() != kindTag(kind) {
			return "", fmt.Errorf("%w: %s must be %s, got %s %q (line %d)", ErrMalformed, p, kindName(kind), strings.TrimPrefix(n.ShortTag(), "!!"), n.Value, n.Line)
		}
		return n.Value, nil
	}
	if err := onlyKeys(root, []string{"canary"}, "enabled", "image", "weight"); err != nil {
		return Release{}, err
	}
	if err := onlyKeys(root, []string{"canary", "image"}, "tag"); err != nil {
		return Release{}, err
	}
	if r.StableRepository, err = get(KindString, "image", "repository"); err != nil {
		return Release{}, err
	}
	if r.StableTag, err = get(KindString, "image", "tag"); err != nil {
		return Release{}, err
	}
	enabled, err := get(KindBool, "canary", "enabled")
	if err != nil {
		return Release{}, err
	}
	var b bool
	if err := yaml.Unmarshal([]byte(enabled), &b); err != nil {
		return Release{}, fmt.Errorf("%w: canary.enabled: %v", ErrMalformed, err)
	}
	r.Canary.Enabled = b
	if r.Canary.Tag, err = get(KindString, "canary", "image", "tag"); err != nil {
		return Release{}, err
	}
	w, err := get(KindInt, "canary", "weight")
	if err != nil {
		return Release{}, err
	}
	var weight int
	if err := yaml.Unmarshal([]byte(w), &weight); err != nil {
		return Release{}, fmt.Errorf("%w: canary.weight: %v", ErrMalformed, err)
	}
	if weight < 0 || weight > 100 {
		return Release{}, fmt.Errorf("%w: canary.weight must be between 0 and 100, got %d", ErrMalformed, weight)
	}
	r.Canary.Weight = weight
	return r, nil
}

func kindName(k ScalarKind) string {
	switch k {
	case KindInt:
		return "an integer"
	case KindBool:
		return "a boolean (true or false)"
	default:
		return "a string (quote it)"
	}
}

// onlyKeys checks that the mapping at path exists and holds no keys outside allowed.
func onlyKeys(root *yaml.Node, path []string, allowed ...string) error {
	n, _, err := lookup(root, path)
	if err != nil {
		return err
	}
	p := strings.Join(path, ".")
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: %s must be a mapping with %s", ErrMalformed, p, strings.Join(allowed, ", "))
	}
	for j := 0; j < len(n.Content); j += 2 {
		if k := n.Content[j]; !slices.Contains(allowed, k.Value) {
			return fmt.Errorf("%w: unknown key %q in %s (line %d); allowed: %s", ErrMalformed, k.Value, p, k.Line, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// EditRelease rewrites the scalars of data that differ between the file's current Release and
// to, byte for byte outside those scalars. It fails with ErrNoChange when nothing differs, and
// never changes image.repository.
func EditRelease(data []byte, to Release) ([]byte, error) {
	cur, err := ReadRelease(data)
	if err != nil {
		return nil, err
	}
	if to.StableRepository != cur.StableRepository {
		return nil, fmt.Errorf("%w: image.repository is not edited by opsctl", ErrInvalidChange)
	}
	if to.Canary.Weight < 0 || to.Canary.Weight > 100 {
		return nil, fmt.Errorf("%w: canary.weight %d is outside 0-100", ErrInvalidChange, to.Canary.Weight)
	}
	for _, t := range []struct{ name, v string }{{"image.tag", to.StableTag}, {"canary.image.tag", to.Canary.Tag}} {
		if t.v != "" && !ValidTag(t.v) {
			return nil, fmt.Errorf("%w: %s %q is not a valid image tag", ErrInvalidChange, t.name, t.v)
		}
	}
	var edits []ScalarEdit
	if to.StableTag != cur.StableTag {
		edits = append(edits, ScalarEdit{Path: []string{"image", "tag"}, Kind: KindString, Value: to.StableTag})
	}
	if to.Canary.Enabled != cur.Canary.Enabled {
		edits = append(edits, ScalarEdit{Path: []string{"canary", "enabled"}, Kind: KindBool, Value: strconv.FormatBool(to.Canary.Enabled)})
	}
	if to.Canary.Tag != cur.Canary.Tag {
		edits = append(edits, ScalarEdit{Path: []string{"canary", "image", "tag"}, Kind: KindString, Value: to.Canary.Tag})
	}
	if to.Canary.Weight != cur.Canary.Weight {
		edits = append(edits, ScalarEdit{Path: []string{"canary", "weight"}, Kind: KindInt, Value: strconv.Itoa(to.Canary.Weight)})
	}
	if len(edits) == 0 {
		return nil, ErrNoChange
	}
	return EditScalars(data, edits...)
}
