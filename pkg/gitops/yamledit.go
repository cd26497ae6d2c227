package gitops

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ScalarKind is the YAML type a ScalarEdit writes.
type ScalarKind int

// The scalar kinds EditScalars can write.
const (
	KindString ScalarKind = iota
	KindInt
	KindBool
)

// ScalarEdit sets the scalar at Path (mapping keys from the document root) to Value, written as
// Kind. Strings keep the quoting style of the value they replace when it can hold the new
// value, and are double-quoted when a plain scalar would read back as another type.
type ScalarEdit struct {
	Path  []string
	Kind  ScalarKind
	Value string
}

// EditScalars replaces existing scalars in a YAML document by splicing new text into the
// original bytes: comments, key order, indentation, flow or block style and every byte outside
// the replaced scalars stay exactly as they were. It never re-marshals the document. Every edit
// must name an existing scalar; on any error the input is left untouched and nil is returned.
func EditScalars(data []byte, edits ...ScalarEdit) ([]byte, error) {
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	lines := lineStarts(data)
	type splice struct {
		start, end int
		text       string
		path       string
	}
	splices := make([]splice, 0, len(edits))
	for _, e := range edits {
		p := strings.Join(e.Path, ".")
		node, flow, err := lookup(root, e.Path)
		if err != nil {
			return nil, err
		}
		if err := spliceable(node, p); err != nil {
			return nil, err
		}
		start, err := offsetOf(data, lines, node.Line, node.Column)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		end, err := scalarEnd(data, start, node, flow)
		if err != nil {
			return nil, fmt.Errorf("%s at line %d: %w", p, node.Line, err)
		}
		text, err := render(e, node.Style)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		splices = append(splices, splice{start: start, end: end, text: text, path: p})
	}
	sort.Slice(splices, func(i, j int) bool { return splices[i].start > splices[j].start })
	for i := 1; i < len(splices); i++ {
		if splices[i].end > splices[i-1].start || splices[i].start == splices[i-1].start {
			return nil, fmt.Errorf("%w: edits of %s and %s overlap", ErrInvalidChange, splices[i].path, splices[i-1].path)
		}
	}
	out := bytes.Clone(data)
	for _, s := range splices {
		out = append(out[:s.start:s.start], append([]byte(s.text), out[s.end:]...)...)
	}

	// Read the result back: each edited path must hold exactly the new value and type.
	check, err := parseDocument(out)
	if err != nil {
		return nil, fmt.Errorf("%w: edit produced invalid YAML: %v", ErrUnsupportedLayout, err)
	}
	for _, e := range edits {
		node, _, err := lookup(check, e.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s unreadable after edit: %v", ErrUnsupportedLayout, strings.Join(e.Path, "."), err)
		}
		if node.Kind != yaml.ScalarNode || node.Value != e.Value || node.ShortTag() != kindTag(e.Kind) {
			return nil, fmt.Errorf("%w: %s reads back as %s %q after edit", ErrUnsupportedLayout, strings.Join(e.Path, "."), node.ShortTag(), node.Value)
		}
	}
	return out, nil
}

func kindTag(k ScalarKind) string {
	switch k {
	case KindInt:
		return "!!int"
	case KindBool:
		return "!!bool"
	default:
		return "!!str"
	}
}

// parseDocument parses a single YAML document whose root is a mapping.
func parseDocument(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: the document root is not a mapping", ErrMalformed)
	}
	return doc.Content[0], nil
}

// lookup walks mapping keys from root. It reports whether the node sits inside a flow
// collection (where ',', ']' and '}' end a plain scalar) and refuses duplicate keys, aliases
// and merge keys, whose meaning a splice could silently change.
func lookup(root *yaml.Node, path []string) (*yaml.Node, bool, error) {
	node := root
	flow := false
	for i, key := range path {
		where := strings.Join(path[:i], ".")
		if where == "" {
			where = "the document root"
		}
		if node.Kind == yaml.AliasNode {
			return nil, false, fmt.Errorf("%w: %s is an alias", ErrUnsupportedLayout, where)
		}
		if node.Kind != yaml.MappingNode {
			return nil, false, fmt.Errorf("%w: %s is not a mapping", ErrMalformed, where)
		}
		if node.Style&yaml.FlowStyle != 0 {
			flow = true
		}
		var found *yaml.Node
		for j := 0; j+1 < len(node.Content); j += 2 {
			k := node.Content[j]
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				return nil, false, fmt.Errorf("%w: %s uses a merge key", ErrUnsupportedLayout, where)
			}
			if k.Kind == yaml.ScalarNode && k.Value == key {
				if found != nil {
					return nil, false, fmt.Errorf("%w: key %q appears twice in %s (lines %d and %d)", ErrMalformed, key, where, found.Line, node.Content[j+1].Line)
				}
				found = node.Content[j+1]
			}
		}
		if found == nil {
			return nil, false, fmt.Errorf("%w: %s is missing", ErrMalformed, strings.Join(path[:i+1], "."))
		}
		node = found
	}
	if node.Style&yaml.FlowStyle != 0 {
		flow = true
	}
	return node, flow, nil
}

// spliceable refuses scalars whose source text is not just the value.
func spliceable(n *yaml.Node, path string) error {
	switch {
	case n.Kind == yaml.AliasNode:
		return fmt.Errorf("%w: %s is an alias (*%s)", ErrUnsupportedLayout, path, n.Value)
	case n.Kind != yaml.ScalarNode:
		return fmt.Errorf("%w: %s is not a scalar", ErrMalformed, path)
	case n.Anchor != "":
		return fmt.Errorf("%w: %s has an anchor (&%s)", ErrUnsupportedLayout, path, n.Anchor)
	case n.Style&yaml.TaggedStyle != 0:
		return fmt.Errorf("%w: %s has an explicit tag (%s)", ErrUnsupportedLayout, path, n.Tag)
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return fmt.Errorf("%w: %s is a block scalar (| or >)", ErrUnsupportedLayout, path)
	}
	return nil
}

// lineStarts returns the byte offset of the start of each line (index 0 is line 1).
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offsetOf converts yaml.v3's 1-based line and column (counted in characters) to a byte offset.
func offsetOf(data []byte, lines []int, line, col int) (int, error) {
	if line < 1 || line > len(lines) || col < 1 {
		return 0, fmt.Errorf("%w: position %d:%d out of range", ErrUnsupportedLayout, line, col)
	}
	off := lines[line-1]
	for c := 1; c < col; c++ {
		if off >= len(data) || data[off] == '\n' {
			return 0, fmt.Errorf("%w: position %d:%d out of range", ErrUnsupportedLayout, line, col)
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, nil
}

// scalarEnd finds the end of the scalar's source text starting at start, and checks that the
// text found is exactly the scalar yaml.v3 parsed.
func scalarEnd(data []byte, start int, n *yaml.Node, flow bool) (int, error) {
	var end int
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if data[start] != '"' {
			return 0, fmt.Errorf("%w: expected '\"'", ErrUnsupportedLayout)
		}
		i := start + 1
		for ; i < len(data) && data[i] != '"'; i++ {
			if data[i] == '\\' {
				i++
			}
		}
		if i >= len(data) {
			return 0, fmt.Errorf("%w: unterminated string", ErrUnsupportedLayout)
		}
		end = i + 1
	case n.Style&yaml.SingleQuotedStyle != 0:
		if data[start] != '\'' {
			return 0, fmt.Errorf("%w: expected \"'\"", ErrUnsupportedLayout)
		}
		i := start + 1
		for ; i < len(data); i++ {
			if data[i] == '\'' {
				if i+1 < len(data) && data[i+1] == '\'' {
					i++
					continue
				}
				break
			}
		}
		if i >= len(data) {
			return 0, fmt.Errorf("%w: unterminated string", ErrUnsupportedLayout)
		}
		end = i + 1
	default:
		i := start
		for ; i < len(data); i++ {
			c := data[i]
			if c == '\n' || c == '\r' {
				break
			}
			if c == '#' && i > start && (data[i-1] == ' ' || data[i-1] == '\t') {
				break
			}
			if flow && (c == ',' || c == ']' || c == '}') {
				break
			}
		}
		end = i
		for end > start && (data[end-1] == ' ' || data[end-1] == '\t') {
			end--
		}
	}
	// The source text must read back as the parsed scalar; this catches multi-line plain
	// scalars and anything else the scan above does not model.
	var back yaml.Node
	if err := yaml.Unmarshal(data[start:end], &back); err != nil || len(back.Content) != 1 ||
		back.Content[0].Kind != yaml.ScalarNode || back.Content[0].Value != n.Value {
		return 0, fmt.Errorf("%w: could not isolate the scalar's text (multi-line value?)", ErrUnsupportedLayout)
	}
	return end, nil
}

var plainSafe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]*$`)

// render writes the new value, keeping the old quoting style where it fits.
func render(e ScalarEdit, old yaml.Style) (string, error) {
	switch e.Kind {
	case KindInt:
		if _, err := strconv.Atoi(e.Value); err != nil {
			return "", fmt.Errorf("%w: %q is not an integer", ErrInvalidChange, e.Value)
		}
		return e.Value, nil
	case KindBool:
		if e.Value != "true" && e.Value != "false" {
			return "", fmt.Errorf("%w: %q is not true or false", ErrInvalidChange, e.Value)
		}
		return e.Value, nil
	}
	for _, r := range e.Value {
		if r < 0x20 || r == 0x7f || !utf8.ValidRune(r) {
			return "", fmt.Errorf("%w: string contains a control character", ErrInvalidChange)
		}
	}
	switch {
	case old&yaml.SingleQuotedStyle != 0:
		return "'" + strings.ReplaceAll(e.Value, "'", "''") + "'", nil
	case old&yaml.DoubleQuotedStyle == 0 && plainSafe.MatchString(e.Value) && readsAsString(e.Value):
		return e.Value, nil
	default:
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
		return `"` + r.Replace(e.Value) + `"`, nil
	}
}

// readsAsString reports whether a plain scalar with this text resolves to a string (so "1.10",
// "true" or "0x1F" are quoted).
func readsAsString(s string) bool {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(s), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	return n.Content[0].ShortTag() == "!!str" && n.Content[0].Value == s
}
