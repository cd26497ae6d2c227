// Package termsafe makes text that came from outside the process (Kafka records, git output,
// server responses) safe to draw on a terminal. A DLT payload can carry ANSI/OSC escape
// sequences that would recolour, retitle or even rewrite the operator's terminal; everything
// shown to a user passes through here first.
//
// Dangerous characters are not dropped silently but replaced by a visible escape (`\x1b`,
// `\u202e`), so an operator can still see that a payload contained them.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// String sanitises s for display on one line: every control character (C0, DEL, C1), every
// bidirectional-override character and every invalid UTF-8 byte is replaced by a visible
// escape; newlines and tabs become `\n` and `\t`.
func String(s string) string { return sanitize(s, false) }

// Block sanitises s for display as a multi-line block: like String, but newlines and tabs are
// kept (a carriage return is still escaped, since it can overwrite a line already drawn).
func Block(s string) string { return sanitize(s, true) }

// Bytes sanitises raw bytes for one-line display; see String.
func Bytes(b []byte) string { return String(string(b)) }

// Truncate sanitises s for one line and cuts the result to at most max runes, the last being
// "…" when anything was cut. A max below 1 is treated as 1.
func Truncate(s string, max int) string {
	out := String(s)
	if max < 1 {
		max = 1
	}
	if utf8.RuneCountInString(out) <= max {
		return out
	}
	runes := []rune(out)
	return string(runes[:max-1]) + "…"
}

// Safe reports whether s would be shown unchanged by String.
func Safe(s string) bool { return String(s) == s }

func sanitize(s string, multiline bool) string {
	clean := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || needsEscape(r, multiline) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !needsEscape(r, multiline):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune, multiline bool) bool {
	switch {
	case r == '\n' || r == '\t':
		return !multiline
	case r < 0x20, r == 0x7f:
		return true
	case r >= 0x80 && r < 0xa0: // C1 controls, including the 8-bit CSI (0x9b) and OSC (0x9d)
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true // bidirectional controls can visually reorder text (trojan-source style)
	case r == 0xfeff:
		return true
	}
	return false
}
