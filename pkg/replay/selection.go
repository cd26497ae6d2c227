package replay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/come2us/opsctl/pkg/dlt"
)

// Selection says which dead letters of a topic a command works on. The zero value selects every
// record. The same selection drives list, stats, a dry run and a replay, so what an operator
// listed is what gets replayed.
type Selection struct {
	// Since and Until bound the record timestamp (Since inclusive, Until exclusive); zero means
	// unbounded.
	Since, Until time.Time
	// Partitions limits the scan to these partitions; empty means all.
	Partitions []int32
	// Offsets limits the scan to an offset range in every scanned partition.
	Offsets OffsetRange
	// Key, when not nil, selects records whose key is exactly this.
	Key *string
	// Headers selects records carrying every one of these header values.
	Headers []HeaderMatch
	// Where is a compiled --where expression; nil matches everything.
	Where *Where
	// Limit stops a listing after this many selected records; 0 means no limit. A replay has its
	// own limit (Request.Limit) that counts replayed records instead.
	Limit int
}

// OffsetRange is an inclusive range of offsets; a zero value means every offset.
type OffsetRange struct {
	From int64 `json:"from"`
	// To is the last offset included, or -1 for no upper bound.
	To  int64 `json:"to"`
	Set bool  `json:"-"`
}

// Contains reports whether offset o is in the range.
func (r OffsetRange) Contains(o int64) bool {
	if !r.Set {
		return true
	}
	return o >= r.From && (r.To < 0 || o <= r.To)
}

// String renders the range as ParseOffsets reads it.
func (r OffsetRange) String() string {
	switch {
	case !r.Set:
		return ""
	case r.To < 0:
		return fmt.Sprintf("%d-", r.From)
	case r.To == r.From:
		return strconv.FormatInt(r.From, 10)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// HeaderMatch selects records with a header Key whose value is exactly Value.
type HeaderMatch struct {
	Key, Value string
}

// ErrBadSelection is wrapped by every error about a selection flag, so callers can tell a bad
// flag (a usage error) from a broker failure.
var ErrBadSelection = errors.New("bad selection")

// ParseTime reads a --since/--until value: a duration back from now ("90m", "2h", "7d"), an
// RFC 3339 time ("2026-11-25T03:00:00Z") or a date ("2026-11-25", midnight UTC).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: empty time: want a duration like 2h or 7d, or an RFC 3339 time", ErrBadSelection)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is neither a duration (2h, 30m, 7d) nor an RFC 3339 time (2026-11-25T03:00:00Z)", ErrBadSelection, s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("%w: %q: a duration counts back from now and must not be negative", ErrBadSelection, s)
	}
	return now.Add(-d), nil
}

// parseDuration is time.ParseDuration plus a day unit ("7d", "1d12h").
func parseDuration(s string) (time.Duration, error) {
	var days float64
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || n > 1e5 {
			return 0, fmt.Errorf("bad day count %q", s[:i])
		}
		days, s = n, s[i+1:]
		if s == "" {
			return time.Duration(days * float64(24*time.Hour)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d + time.Duration(days*float64(24*time.Hour)), nil
}

// ParseOffsets reads an --offset value: one offset ("1234"), a range ("100-200", inclusive) or an
// open range ("100-").
func ParseOffsets(s string) (OffsetRange, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) (OffsetRange, error) {
		return OffsetRange{}, fmt.Errorf("%w: offset %q: %s (want N, FROM-TO or FROM-)", ErrBadSelection, s, why)
	}
	from, to, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseInt(from, 10, 64)
	if err != nil || a < 0 {
		return bad("not a non-negative offset")
	}
	if !isRange {
		return OffsetRange{From: a, To: a, Set: true}, nil
	}
	if to == "" {
		return OffsetRange{From: a, To: -1, Set: true}, nil
	}
	b, err := strconv.ParseInt(to, 10, 64)
	if err != nil || b < 0 {
		return bad("end is not a non-negative offset")
	}
	if b < a {
		return bad("end is before start")
	}
	return OffsetRange{From: a, To: b, Set: true}, nil
}

// ParseHeaderMatch reads a --header value "key=value" (the value may be empty, the key not).
func ParseHeaderMatch(s string) (HeaderMatch, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return HeaderMatch{}, fmt.Errorf("%w: header %q: want key=value", ErrBadSelection, s)
	}
	return HeaderMatch{Key: k, Value: v}, nil
}

// Match reports whether a decoded record is selected. An error means the --where expression
// could not be evaluated for this record (the record is then not selected).
func (s *Selection) Match(r *dlt.Record) (bool, error) {
	if !s.Offsets.Contains(r.Offset) {
		return false, nil
	}
	if len(s.Partitions) > 0 && !containsPartition(s.Partitions, r.Partition) {
		return false, nil
	}
	if !s.Since.IsZero() && r.Timestamp.Before(s.Since) {
		return false, nil
	}
	if !s.Until.IsZero() && !r.Timestamp.Before(s.Until) {
		return false, nil
	}
	if s.Key != nil && string(r.Key) != *s.Key {
		return false, nil
	}
	for _, m := range s.Headers {
		if !hasHeader(r, m) {
			return false, nil
		}
	}
	if s.Where != nil {
		return s.Where.Match(r)
	}
	return true, nil
}

// Describe renders the selection as the flags that would produce it, for plans and the ledger.
func (s *Selection) Describe() string {
	var parts []string
	if !s.Since.IsZero() {
		parts = append(parts, "--since "+s.Since.UTC().Format(time.RFC3339))
	}
	if !s.Until.IsZero() {
		parts = append(parts, "--until "+s.Until.UTC().Format(time.RFC3339))
	}
	for _, p := range s.Partitions {
		parts = append(parts, fmt.Sprintf("--partition %d", p))
	}
	if s.Offsets.Set {
		parts = append(parts, "--offset "+s.Offsets.String())
	}
	if s.Key != nil {
		parts = append(parts, "--key "+strconv.Quote(*s.Key))
	}
	for _, h := range s.Headers {
		parts = append(parts, "--header "+strconv.Quote(h.Key+"="+h.Value))
	}
	if s.Where != nil {
		parts = append(parts, "--where "+strconv.Quote(s.Where.Source()))
	}
	if s.Limit > 0 {
		parts = append(parts, fmt.Sprintf("--limit %d", s.Limit))
	}
	if len(parts) == 0 {
		return "all records"
	}
	return strings.Join(parts, " ")
}

func containsPartition(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func hasHeader(r *dlt.Record, m HeaderMatch) bool {
	for _, h := range r.Raw {
		if h.Key == m.Key && string(h.Value) == m.Value {
			return true
		}
	}
	return false
}

// Where is a compiled --where expression (expr-lang/expr), evaluated against each record.
//
// The environment has the record's JSON value fields at the top level (errorCode, quantity,
// orderId, …, numbers as int or float), and its metadata both under meta.* and, where no value
// field of the same name shadows it, at the top level: topic, partition, offset, timestamp
// (time), key, headers (map), errorSource, errorCode, errorMessage, format, originalTopic,
// originalPartition, originalOffset, group, exception, replayCount, size. A field the record
// lacks is nil, so `quantity > 1` is simply not met by a record without a quantity.
type Where struct {
	src  string
	prog *vm.Program
	// names are the identifiers the expression uses: only those are put in its environment,
	// so a record is not turned into two dozen map entries for an expression that reads two.
	names []string
	// fields are the identifiers that are not record metadata: each must be a value field of
	// some record, or the expression names something no record has (see Engine.checkWhere).
	fields []string
}

// CompileWhere compiles a --where expression once, so a scan over a million records does not
// parse it a million times. A syntax error is reported with its position and nothing runs.
func CompileWhere(src string) (w *Where, err error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%w: --where is empty", ErrBadSelection)
	}
	defer func() { // expr is well tested, but a crash on an operator's typo is not acceptable
		if r := recover(); r != nil {
			w, err = nil, fmt.Errorf("%w: --where %q: %v", ErrBadSelection, src, r)
		}
	}()
	prog, err := expr.Compile(src, expr.Env(map[string]any{}), expr.AllowUndefinedVariables(), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("%w: --where is not a valid expression: %v", ErrBadSelection, err)
	}
	w = &Where{src: src, prog: prog, names: []string{}}
	seen := map[string]bool{}
	declared := map[string]bool{} // let x = …: x is the expression's own
	ast.Walk(ptr(prog.Node()), identifiers{
		id: func(name string) {
			if !seen[name] {
				seen[name] = true
				w.names = append(w.names, name)
			}
		},
		let: func(name string) { declared[name] = true },
	})
	if seen["$env"] { // the expression reads the environment as a whole
		w.names = nil
		return w, nil
	}
	meta := map[string]bool{"meta": true}
	for _, n := range MetaNames() {
		meta[n] = true
	}
	for _, n := range w.names {
		if !meta[n] && !declared[n] {
			w.fields = append(w.fields, n)
		}
	}
	return w, nil
}

func ptr(n ast.Node) *ast.Node { return &n }

// identifiers is an ast.Visitor that reports every identifier, and every variable the
// expression declares itself.
type identifiers struct{ id, let func(string) }

// Visit reports identifier and variable declaration nodes.
func (f identifiers) Visit(n *ast.Node) {
	switch t := (*n).(type) {
	case *ast.IdentifierNode:
		f.id(t.Value)
	case *ast.VariableDeclaratorNode:
		f.let(t.Name)
	}
}

// Fields returns the identifiers of the expression that are not record metadata: value fields
// it expects records to have.
func (w *Where) Fields() []string { return w.fields }

// Source returns the expression as written.
func (w *Where) Source() string { return w.src }

// Match evaluates the expression for r.
func (w *Where) Match(r *dlt.Record) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("--where on %s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, p)
		}
	}()
	var vars map[string]any
	if w.names != nil {
		// The environment of a record is made in a map reused from record to record: expr
		// keeps nothing of it after Run.
		m := envMaps.Get().(*map[string]any)
		defer func() { clear(*m); envMaps.Put(m) }()
		vars = fillEnv(*m, r, w.names)
	} else {
		vars = env(r, nil)
	}
	out, err := expr.Run(w.prog, vars)
	if err != nil {
		return false, fmt.Errorf("--where on %s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	b, isBool := out.(bool)
	if !isBool {
		return false, fmt.Errorf("--where on %s[%d]@%d: result %T is not true or false", r.Topic, r.Partition, r.Offset, out)
	}
	return b, nil
}

// Env is the environment a --where expression sees for r; exported so a TUI filter box can show
// what is available.
func Env(r *dlt.Record) map[string]any { return env(r, nil) }

var envMaps = sync.Pool{New: func() any { m := map[string]any{}; return &m }}

// fillEnv puts the given names of r's environment in out and returns it.
func fillEnv(out map[string]any, r *dlt.Record, names []string) map[string]any {
	for _, n := range names {
		if v, ok := r.Fields[n]; ok {
			out[n] = exprValue(v)
		} else if n == "meta" {
			out[n] = metaOf(r)
		} else if v, ok := metaValue(r, n); ok {
			out[n] = v
		}
	}
	return out
}

// env builds the environment with only the given names (all when names is nil).
func env(r *dlt.Record, names []string) map[string]any {
	if names != nil {
		return fillEnv(make(map[string]any, len(names)), r, names)
	}
	meta := metaOf(r)
	env := make(map[string]any, len(r.Fields)+len(meta)+1)
	for k, v := range r.Fields {
		env[k] = exprValue(v)
	}
	for k, v := range meta {
		if _, shadowed := env[k]; !shadowed {
			env[k] = v
		}
	}
	env["meta"] = meta
	return env
}

// MetaNames returns the record metadata a --where expression can name (under meta.*, and at
// the top level where no value field shadows them).
func MetaNames() []string {
	return []string{"topic", "partition", "offset", "timestamp", "key", "headers", "errorSource", "errorCode",
		"errorMessage", "format", "originalTopic", "originalPartition", "originalOffset", "group", "exception", "replayCount", "size"}
}

func metaOf(r *dlt.Record) map[string]any {
	names := MetaNames()
	m := make(map[string]any, len(names))
	for _, n := range names {
		m[n], _ = metaValue(r, n)
	}
	return m
}

func metaValue(r *dlt.Record, name string) (any, bool) {
	switch name {
	case "topic":
		return r.Topic, true
	case "partition":
		return int(r.Partition), true
	case "offset":
		return int(r.Offset), true
	case "timestamp":
		return r.Timestamp, true
	case "key":
		return string(r.Key), true
	case "headers":
		return headerMap(r), true
	case "errorSource":
		return r.ErrorSource, true
	case "errorCode":
		return r.ErrorCode, true
	case "errorMessage":
		return r.ErrorMessage, true
	case "format":
		return string(r.Format), true
	case "originalTopic":
		return r.Origin.Topic, true
	case "originalPartition":
		return int(r.Origin.Partition), true
	case "originalOffset":
		return int(r.Origin.Offset), true
	case "group":
		return r.Group, true
	case "exception":
		return r.Exception, true
	case "replayCount":
		return r.ReplayCount, true
	case "size":
		return len(r.Value), true
	}
	return nil, false
}

func headerMap(r *dlt.Record) map[string]string {
	m := make(map[string]string, len(r.Raw))
	for _, h := range r.Raw {
		if utf8.Valid(h.Value) {
			m[h.Key] = string(h.Value)
		} else {
			m[h.Key] = dlt.DecodeHeader(h.Key, h.Value).Text
		}
	}
	return m
}

// exprValue turns json.Number into int or float64 (expr compares numbers, not strings), at any
// depth.
func exprValue(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return int(i)
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = exprValue(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = exprValue(e)
		}
		return out
	}
	return v
}

// keyBytes is the key filter as bytes, for quick comparison before a record is decoded.
func (s *Selection) keyMatches(key []byte) bool {
	return s.Key == nil || bytes.Equal(key, []byte(*s.Key))
}
