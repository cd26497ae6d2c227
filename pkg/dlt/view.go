package dlt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/come2us/opsctl/pkg/secret"
)

// Value kinds a ValueView can have.
const (
	ValueJSON   = "json"   // valid JSON, pretty-printed, secret fields masked
	ValueText   = "text"   // UTF-8 text that is not JSON
	ValueBinary = "binary" // anything else, shown as a hex dump with a text column
	ValueEmpty  = "empty"  // a zero-length value
	ValueNull   = "null"   // no value at all (a tombstone)
)

// DefaultViewLimit is how many bytes of a value a view shows before it cuts the rest off with a
// marker: enough for any real event, small enough that a 1 MiB payload does not flood a terminal.
const DefaultViewLimit = 64 << 10

// ValueView is a record value prepared for a human: pretty JSON, text, or a hex dump. Text is
// not yet sanitised for a terminal — callers pass it through termsafe.Block — because the CLI
// and the TUI draw it differently.
type ValueView struct {
	Kind string `json:"kind"`
	// Text is the rendered value, cut to the view limit.
	Text string `json:"text"`
	// Size is the value's length in bytes.
	Size int `json:"size"`
	// Truncated says Text stops before the end of the value; Marker then says so in words.
	Truncated bool   `json:"truncated,omitempty"`
	Marker    string `json:"marker,omitempty"`
	// Masked says secret fields were replaced by their masks.
	Masked bool `json:"masked,omitempty"`
}

// ViewValue renders value for display. JSON values have the fields named in mask replaced by
// their masks at any depth (pass nil to reveal them); limit caps the rendered bytes (0 means
// DefaultViewLimit). It never fails: whatever the bytes are, some view comes back.
func ViewValue(value []byte, mask secret.Fields, limit int) ValueView {
	if limit <= 0 {
		limit = DefaultViewLimit
	}
	v := ValueView{Size: len(value)}
	switch {
	case value == nil:
		v.Kind = ValueNull
		return v
	case len(value) == 0:
		v.Kind = ValueEmpty
		return v
	}
	if json.Valid(value) {
		doc := value
		if mask != nil {
			if m, changed, err := mask.MaskJSON(value); err == nil {
				doc, v.Masked = m, changed
			}
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err == nil {
			v.Kind = ValueJSON
			v.Text, v.Truncated = cutText(buf.String(), limit)
			v.mark(buf.Len())
			return v
		}
	}
	if utf8.Valid(value) && mostlyPrintable(value) {
		v.Kind = ValueText
		v.Text, v.Truncated = cutText(string(value), limit)
		v.mark(len(value))
		return v
	}
	v.Kind = ValueBinary
	shown := value
	if len(shown) > limit/4 { // a hex dump line is about four times its input
		shown, v.Truncated = shown[:limit/4], true
	}
	v.Text = HexDump(shown)
	if v.Truncated {
		v.Marker = fmt.Sprintf("[truncated: showing %d of %d bytes]", len(shown), len(value))
	}
	return v
}

func (v *ValueView) mark(total int) {
	if v.Truncated {
		v.Marker = fmt.Sprintf("[truncated: showing %d of %d bytes]", len(v.Text), total)
	}
}

// cutText cuts s to at most limit bytes on a rune boundary.
func cutText(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}

// mostlyPrintable reports whether text would read as text: at most one in twenty runes is a
// control character other than newline, carriage return or tab.
func mostlyPrintable(b []byte) bool {
	var runes, ctrl int
	for _, r := range string(b) {
		runes++
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			ctrl++
		}
	}
	return ctrl*20 <= runes
}

// HexDump renders b as lines of offset, sixteen hex bytes and their printable-ASCII column,
// like `hexdump -C`. Bytes outside printable ASCII show as '.', so the text column is always
// safe to draw.
func HexDump(b []byte) string {
	var sb strings.Builder
	for off := 0; off < len(b); off += 16 {
		line := b[off:min(off+16, len(b))]
		fmt.Fprintf(&sb, "%08x  ", off)
		for i := 0; i < 16; i++ {
			switch {
			case i < len(line):
				fmt.Fprintf(&sb, "%02x ", line[i])
			default:
				sb.WriteString("   ")
			}
			if i == 7 {
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(" |")
		for _, c := range line {
			if c >= 0x20 && c < 0x7f {
				sb.WriteByte(c)
			} else {
				sb.WriteByte('.')
			}
		}
		sb.WriteString("|\n")
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

// MaskHeaders returns a copy of headers with the values of secret-named headers (an
// "authorization" header, say) replaced by their masks; nil mask returns headers unchanged.
func MaskHeaders(headers []Header, mask secret.Fields) []Header {
	if mask == nil {
		return headers
	}
	out := make([]Header, len(headers))
	for i, h := range headers {
		if mask.Has(h.Key) {
			h.Text = secret.Mask(h.Text)
		}
		out[i] = h
	}
	return out
}
