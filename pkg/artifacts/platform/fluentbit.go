package platform

import (
	"bufio"
	"fmt"
	"strings"
)

// FluentBitSection is one [SECTION] of Fluent Bit's classic configuration format.
type FluentBitSection struct {
	// Kind is the upper-cased section name: SERVICE, INPUT, FILTER, OUTPUT, PARSER or
	// MULTILINE_PARSER.
	Kind string
	// Line is the 1-based line of the section header.
	Line int
	// Entries are the key/value pairs in order; keys may repeat (e.g. Systemd_Filter).
	Entries []FluentBitEntry
}

// FluentBitEntry is one "Key Value" line of a section.
type FluentBitEntry struct {
	// Key is the property name as written.
	Key string
	// Value is the rest of the line, trimmed.
	Value string
}

// Get returns the value of the first entry whose key matches case-insensitively, as Fluent Bit
// matches property names.
func (s FluentBitSection) Get(key string) (string, bool) {
	for _, e := range s.Entries {
		if strings.EqualFold(e.Key, key) {
			return e.Value, true
		}
	}
	return "", false
}

// All returns the values of every entry with the key, in order.
func (s FluentBitSection) All(key string) []string {
	var out []string
	for _, e := range s.Entries {
		if strings.EqualFold(e.Key, key) {
			out = append(out, e.Value)
		}
	}
	return out
}

// ParseFluentBitConfig parses Fluent Bit's classic configuration format: section headers in
// brackets, indented "Key Value" lines, # comments. Properties outside a section, unknown section
// names, unterminated headers, keys without values, @INCLUDE/@SET directives (which this parser
// cannot resolve) and plugin sections without a Name are errors naming the line.
func ParseFluentBitConfig(text string) ([]FluentBitSection, error) {
	var sections []FluentBitSection
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "@"):
			return nil, fmt.Errorf("fluent-bit config line %d: directive %q is not supported here", n, line)
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("fluent-bit config line %d: malformed section header %q", n, line)
			}
			kind := strings.ToUpper(strings.TrimSpace(line[1 : len(line)-1]))
			switch kind {
			case "SERVICE", "INPUT", "FILTER", "OUTPUT", "PARSER", "MULTILINE_PARSER":
			default:
				return nil, fmt.Errorf("fluent-bit config line %d: unknown section [%s]", n, kind)
			}
			sections = append(sections, FluentBitSection{Kind: kind, Line: n})
		default:
			if len(sections) == 0 {
				return nil, fmt.Errorf("fluent-bit config line %d: %q is outside any section", n, line)
			}
			key, value, ok := strings.Cut(line, " ")
			if !ok {
				key, value, ok = strings.Cut(line, "\t")
			}
			value = strings.TrimSpace(value)
			if !ok || value == "" {
				return nil, fmt.Errorf("fluent-bit config line %d: key %q has no value", n, line)
			}
			cur := &sections[len(sections)-1]
			cur.Entries = append(cur.Entries, FluentBitEntry{Key: key, Value: value})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read fluent-bit config: %w", err)
	}
	for _, s := range sections {
		if s.Kind == "SERVICE" {
			continue
		}
		if name, ok := s.Get("Name"); !ok || name == "" {
			return nil, fmt.Errorf("fluent-bit config line %d: [%s] has no Name", s.Line, s.Kind)
		}
	}
	return sections, nil
}
