package dlt

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	"slices"
	"sync"
)

// maxJSONDepth is the nesting the library's decoder accepts (jsontext's limit): a value nested
// deeper is not valid JSON for Decode, so it is not for FieldsInto either.
const maxJSONDepth = 10000

// FieldsInto puts the top-level members of a JSON object value named in names into into, each
// as Decode's Fields holds it (numbers as json.Number, a duplicate member counting last), and
// reports whether value is exactly one valid JSON object; when it is not, into holds nothing
// that counts and Decode's Fields would be nil. It reads what ObjectFields reads, but checks
// the value in one pass of its own over the bytes and decodes only the members named, into a
// map the caller reuses: `dlt list --where` runs it on every record of a DLT, and most of
// them it selects nothing from. FuzzFieldsInto holds it to the library's result.
func FieldsInto(into map[string]any, value []byte, names []string) bool {
	ms := memberScans.Get().(*memberScan)
	defer ms.release()
	found, ok := ms.scan(value, names)
	if !ok {
		return false
	}
	for j, raw := range found {
		if raw == nil {
			continue
		}
		v, ok := rawAny(jsontext.Value(raw))
		if !ok {
			return false
		}
		into[names[j]] = v
	}
	return true
}

// objectMembers returns every top-level member of a JSON object value as Decode's Fields holds
// it (what the library's decoder makes of it: numbers as json.Number, a duplicate member
// counting last), nil when the value is not exactly one valid JSON object. It checks the value
// with FieldsInto's scan, and leaves to the library only the members that are objects, arrays
// or strings with escapes: a listing decodes every record it shows. FuzzFieldsInto holds
// it to the library's result.
func objectMembers(value []byte) map[string]any {
	ms := memberScans.Get().(*memberScan)
	defer ms.release()
	ms.all = true
	if _, ok := ms.scan(value, nil); !ok {
		return nil
	}
	m := make(map[string]any, len(ms.members))
	for _, mb := range ms.members {
		name := string(mb.quoted[1 : len(mb.quoted)-1])
		if !mb.plain {
			if json.Unmarshal(mb.quoted, &name) != nil {
				return nil // cannot be: the text was checked
			}
		}
		v, ok := rawAny(jsontext.Value(mb.raw))
		if !ok {
			return nil
		}
		m[name] = v
	}
	return m
}

// member is a top-level member of an object as written: its quoted name and its value.
type member struct {
	quoted, raw []byte
	plain       bool // the name is ASCII without escapes
}

// memberScan is the memory of a scan of one value, lent from value to value: a scan over a
// million dead letters then allocates none of it per record.
type memberScan struct {
	found   [][]byte // per name looked for, its last value as written
	all     bool     // keep every top-level member in members
	members []member
	names   []string // room for scanObject's list of names
}

var memberScans = sync.Pool{New: func() any { return new(memberScan) }}

// release forgets what the scan read and gives its memory back.
func (ms *memberScan) release() {
	clear(ms.found)
	clear(ms.members)
	clear(ms.names)
	ms.found, ms.members, ms.names, ms.all = ms.found[:0], ms.members[:0], ms.names[:0], false
	memberScans.Put(ms)
}

// scan checks that value, trimmed as Decode trims it, is exactly one valid JSON object, and
// returns the last value as written of each member named (nil for a name it lacks).
func (ms *memberScan) scan(value []byte, names []string) ([][]byte, bool) {
	t := bytes.TrimSpace(value)
	ms.found = slices.Grow(ms.found[:0], len(names))[:len(names)]
	s := objectScan{src: t, names: names, found: ms.found}
	if ms.all {
		s.members = &ms.members
	}
	i, ok := s.object(0, 1, true)
	if !ok || skipSpace(t, i) != len(t) {
		return nil, false
	}
	return ms.found, true
}

// objectScan checks JSON text and keeps, for the top-level object, the last value of each
// member named in found and, when members is not nil, every member.
type objectScan struct {
	src     []byte
	names   []string
	found   [][]byte
	members *[]member
}

// object reads the object at src[i:] (after whitespace) at nesting depth depth, and returns
// the index after it. top says it is the value's own object, whose members are looked for.
func (s *objectScan) object(i, depth int, top bool) (int, bool) {
	b := s.src
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	if depth > maxJSONDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		start := i
		end, plain, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		name := -1
		if top && len(s.names) > 0 {
			name = s.nameIndex(b[start:end], plain)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		vstart := i
		if i, ok = s.value(i, depth); !ok {
			return 0, false
		}
		if name >= 0 {
			s.found[name] = b[vstart:i]
		}
		if top && s.members != nil {
			*s.members = append(*s.members, member{quoted: b[start:end], raw: b[vstart:i], plain: plain})
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// nameIndex returns which of the names a member name (quoted, as written) is, -1 for none.
// plain says the name has nothing to unescape and is ASCII: it is compared as written.
func (s *objectScan) nameIndex(quoted []byte, plain bool) int {
	inner := quoted[1 : len(quoted)-1]
	if !plain {
		var n string
		if json.Unmarshal(quoted, &n) != nil {
			return -1 // cannot be: the text was checked
		}
		inner = []byte(n)
	}
	for j, n := range s.names {
		if string(inner) == n {
			return j
		}
	}
	return -1
}

// value reads the value at src[i] (whitespace skipped already) and returns the index after it.
func (s *objectScan) value(i, depth int) (int, bool) {
	b := s.src
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{':
		return s.object(i, depth+1, false)
	case c == '[':
		return s.array(i, depth+1)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	}
	return 0, false
}

// array reads the array at src[i] at nesting depth depth.
func (s *objectScan) array(i, depth int) (int, bool) {
	b := s.src
	if depth > maxJSONDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = s.value(i, depth); !ok {
			return 0, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// stringSafe marks the bytes a JSON string holds as they are: not a quote, a backslash or a
// control character. Bytes of 0x80 and above are text (invalid UTF-8 is read as the library
// reads it, replaced when decoded).
var stringSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string whose opening quote is at b[i] and returns the index after its
// closing quote. plain reports ASCII text without escapes.
func scanString(b []byte, i int) (end int, plain, ok bool) {
	plain = true
	i++
	for {
		for i < len(b) && stringSafe[b[i]] {
			if b[i] >= 0x80 {
				plain = false
			}
			i++
		}
		if i >= len(b) {
			return 0, false, false
		}
		switch b[i] {
		case '"':
			return i + 1, plain, true
		case '\\':
			plain = false
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return 0, false, false
				}
				i += 6
			default:
				return 0, false, false
			}
		default: // a control character
			return 0, false, false
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanNumber reads the number at b[i]: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
