package replay

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// FieldMissing says how many of the records a --where expression was evaluated on lack one of
// the value fields it names (the field reads as nil there).
type FieldMissing struct {
	Field   string `json:"field"`
	Missing int64  `json:"missing"`
	Of      int64  `json:"of"`
}

// whereTally counts, during a scan, the records a --where expression is evaluated on and, for
// each value field it names, those that lack it.
type whereTally struct {
	fields    []string
	evaluated int64
	missing   []int64
}

// newWhereTally returns a tally for sel's expression, nil when it names no value field.
func newWhereTally(sel *Selection) *whereTally {
	if sel == nil || sel.Where == nil || len(sel.Where.fields) == 0 {
		return nil
	}
	return &whereTally{fields: sel.Where.fields, missing: make([]int64, len(sel.Where.fields))}
}

// record counts d, a fully decoded record the expression is about to be evaluated on.
func (t *whereTally) record(d *dlt.Record) {
	if t == nil {
		return
	}
	t.evaluated++
	for i, f := range t.fields {
		if _, ok := d.Fields[f]; !ok {
			t.missing[i]++
		}
	}
}

// report returns the fields some evaluated records lack, in the expression's order.
func (t *whereTally) report() []FieldMissing {
	if t == nil {
		return nil
	}
	var out []FieldMissing
	for i, f := range t.fields {
		if t.missing[i] > 0 {
			out = append(out, FieldMissing{Field: f, Missing: t.missing[i], Of: t.evaluated})
		}
	}
	return out
}

// whereFromValue evaluates s.Where on r from the value members it names alone, when they decide
// it: the value is one JSON object that has every name the expression uses which is neither a
// value field (a field it lacks is nil either way) nor metadata of the record itself (topic,
// partition, offset, timestamp, key, size) — a value member shadows metadata. The headers are
// then not decoded, nor the value beyond its check and the members named, into memory reused
// from record to record; decided is false when the record needs what dlt.DecodeFields reads.
// TestWhereFromValueMatchesDecode and FuzzWhereFromValue hold it to the generic path.
func (s *Selection) whereFromValue(r *kgo.Record, tally *whereTally) (decided, selected bool, err error) {
	w := s.Where
	sc := whereScratches.Get().(*whereScratch)
	defer func() { clear(sc.fields); sc.rec = dlt.Record{}; whereScratches.Put(sc) }()
	if !dlt.FieldsInto(sc.fields, r.Value, w.names) {
		return false, false, nil // not an object: every name reads metadata
	}
	for _, n := range w.names {
		if _, ok := sc.fields[n]; !ok && !slices.Contains(w.fields, n) && !recordMeta(n) {
			return false, false, nil
		}
	}
	d := &sc.rec
	*d = dlt.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Fields: sc.fields}
	tally.record(d)
	selected, err = w.Match(d)
	return true, selected, err
}

// recordMeta reports whether name is metadata a --where expression reads from the record
// itself rather than from its decoded headers or value (see metaValue).
func recordMeta(name string) bool {
	switch name {
	case "topic", "partition", "offset", "timestamp", "key", "size":
		return true
	}
	return false
}

// whereScratch is what whereFromValue decodes a record into. The expression keeps nothing of
// its environment after it ran, so the memory serves record after record.
type whereScratch struct {
	fields map[string]any
	rec    dlt.Record
}

var whereScratches = sync.Pool{New: func() any { return &whereScratch{fields: map[string]any{}} }}

// maxFieldNames bounds the distinct field names checkWhere keeps for its suggestions.
const maxFieldNames = 256

// checkWhere refuses a --where expression that names an identifier which is neither record
// metadata nor a value field of any record the selection reads: such a name reads as nil in
// every record, so `errorcode != "X"` (for errorCode) would select them all. The check reads
// the selection only until every field named has been seen, which for a well-formed
// expression is the first record; an expression with a misspelt name costs one full read, and
// is refused before anything is listed or replayed. A selection without records passes: it
// selects nothing anyway.
func (e *Engine) checkWhere(ctx context.Context, topic string, ranges []partRange, sel *Selection) error {
	if sel == nil || sel.Where == nil || len(sel.Where.fields) == 0 {
		return nil
	}
	unseen := map[string]bool{}
	for _, f := range sel.Where.fields {
		unseen[f] = true
	}
	names := map[string]bool{} // value fields of the records read, for suggestions
	var scanned int64
	err := e.scanAll(ctx, topic, ranges, fetchBrowse, func(r *kgo.Record) (bool, error) {
		if !sel.prefilter(r) {
			return true, nil
		}
		scanned++
		d := dlt.Decode(r)
		for f := range d.Fields {
			delete(unseen, f)
			if len(names) < maxFieldNames {
				names[f] = true
			}
		}
		return len(unseen) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("check the fields --where names: %w", err)
	}
	if len(unseen) == 0 || scanned == 0 {
		return nil
	}
	candidates := MetaNames()
	for n := range names {
		candidates = append(candidates, n)
	}
	var unknown []string
	for _, f := range sel.Where.fields { // in the expression's order
		if !unseen[f] {
			continue
		}
		u := fmt.Sprintf("%q", f)
		if s := suggest(f, candidates); s != "" {
			u += fmt.Sprintf(" (did you mean %s?)", s)
		}
		unknown = append(unknown, u)
	}
	return fmt.Errorf("%w: --where names %s, which is neither record metadata nor a value field of any of the %d records read; such a name is nil in every record, so the expression would not select what it says. Nothing was changed",
		ErrBadSelection, strings.Join(unknown, ", "), scanned)
}

// suggest returns the candidate closest to name: one that differs only in case, else one
// within a small edit distance; "" when none is close.
func suggest(name string, candidates []string) string {
	sort.Strings(candidates)
	for _, c := range candidates {
		if strings.EqualFold(c, name) {
			return c
		}
	}
	best, bestD := "", max(1, len(name)/3)+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
