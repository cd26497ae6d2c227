package dlt

import (
	"strconv"
	"strings"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
)

// Filter narrows a DLT's records: to one error group, and by text. The same filter drives the
// list (Match, on briefly decoded records) and a replay of "everything matching" (Where, the
// equivalent --where expression), so what the operator saw selected is what gets replayed.
type Filter struct {
	// Group restricts the records to one errorSource × errorCode when set.
	Group  bool
	Source string
	Code   string
	// Text is looked for, ignoring case, in the key, error source, code and message and the
	// original topic. Text starting with "=" is a --where expression instead (`=quantity > 1`).
	Text string
}

// IsWhere reports whether the text is a --where expression.
func (f Filter) IsWhere() bool { return strings.HasPrefix(strings.TrimSpace(f.Text), "=") }

// Empty reports whether the filter selects every record.
func (f Filter) Empty() bool { return !f.Group && strings.TrimSpace(f.Text) == "" }

// Match reports whether a (briefly decoded) record passes the group and text parts; a --where
// text is left to the engine.
func (f Filter) Match(d *dlt.Record) bool {
	if f.Group && (d.ErrorSource != f.Source || d.ErrorCode != f.Code) {
		return false
	}
	t := strings.ToLower(strings.TrimSpace(f.Text))
	if t == "" || f.IsWhere() {
		return true
	}
	for _, s := range []string{string(d.Key), d.ErrorSource, d.ErrorCode, d.ErrorMessage, d.Origin.Topic} {
		if strings.Contains(strings.ToLower(s), t) {
			return true
		}
	}
	return false
}

// Where returns the --where expression selecting exactly what Match (and a --where text)
// selects, or "" for a filter that selects everything. It reads the record's metadata under
// meta.*, which a value field of the same name cannot shadow.
func (f Filter) Where() string {
	var parts []string
	if f.Group {
		parts = append(parts, "meta.errorSource == "+strconv.Quote(f.Source)+" && meta.errorCode == "+strconv.Quote(f.Code))
	}
	t := strings.TrimSpace(f.Text)
	switch {
	case t == "":
	case f.IsWhere():
		parts = append(parts, "("+strings.TrimSpace(strings.TrimPrefix(t, "="))+")")
	default:
		q := strconv.Quote(strings.ToLower(t))
		var ors []string
		for _, field := range []string{"meta.key", "meta.errorSource", "meta.errorCode", "meta.errorMessage", "meta.originalTopic"} {
			ors = append(ors, "lower("+field+") contains "+q)
		}
		parts = append(parts, "("+strings.Join(ors, " || ")+")")
	}
	if len(parts) == 0 {
		return ""
	}
	if len(parts) == 1 && !f.Group {
		return parts[0]
	}
	return "(" + strings.Join(parts, ") && (") + ")"
}

// Selection returns the engine selection of the filter for an index scan: a --where text
// compiled (an error says what is wrong with it); group and plain text are matched by Match.
func (f Filter) Selection() (*replay.Selection, error) {
	sel := &replay.Selection{}
	if f.IsWhere() {
		w, err := replay.CompileWhere(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(f.Text), "=")))
		if err != nil {
			return nil, err
		}
		sel.Where = w
	}
	return sel, nil
}

// Describe names the filter for titles ("product-service · STOCK_SHORT /lock").
func (f Filter) Describe() string {
	var parts []string
	if f.Group {
		parts = append(parts, f.Source+" · "+f.Code)
	}
	if t := strings.TrimSpace(f.Text); t != "" {
		parts = append(parts, "/"+t)
	}
	return strings.Join(parts, " ")
}
