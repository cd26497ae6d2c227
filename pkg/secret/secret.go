// Package secret masks sensitive values — payment keys, tokens, passwords — before they are
// logged or printed. Operators share terminals and paste logs into tickets; a secret that is
// never shown in full cannot leak that way.
package secret

import (
	"encoding/json"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// DefaultFields are the field and attribute names masked when nothing else is configured.
// Matching is case-insensitive and ignores '-' and '_', so "payment_key" matches "paymentKey".
var DefaultFields = []string{"paymentKey", "password", "secret", "secretKey", "token", "authToken",
	"apiKey", "authorization", "cardNumber", "accessKey"}

// Mask hides all but a short prefix of s: "tgen_20240101abcd" → "tgen_2***". Values of eight
// runes or fewer are hidden completely, since a prefix of them gives too much away.
func Mask(s string) string {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return ""
	case n <= 8:
		return "***"
	}
	keep := n / 4
	if keep > 6 {
		keep = 6
	}
	return string([]rune(s)[:keep]) + "***"
}

// Fields is a set of field names treated as secret.
type Fields map[string]struct{}

// NewFields builds a set from names; with none, DefaultFields is used.
func NewFields(names ...string) Fields {
	if len(names) == 0 {
		names = DefaultFields
	}
	f := make(Fields, len(names))
	for _, n := range names {
		f[normalize(n)] = struct{}{}
	}
	return f
}

// Has reports whether name is a secret field.
func (f Fields) Has(name string) bool {
	_, ok := f[normalize(name)]
	return ok
}

func normalize(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("-", "", "_", "", ".", "").Replace(s)
}

// MaskValue masks a decoded JSON value (as produced by encoding/json into any) in place and
// returns it.
func (f Fields) MaskValue(v any) any { return f.maskValue(v) }

func (f Fields) maskValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if f.Has(k) {
				switch s := val.(type) {
				case string:
					t[k] = Mask(s)
				case json.Number:
					t[k] = Mask(s.String())
				case float64, int, int64:
					t[k] = "***"
				default:
					t[k] = f.maskValue(val)
				}
				continue
			}
			t[k] = f.maskValue(val)
		}
	case []any:
		for i := range t {
			t[i] = f.maskValue(t[i])
		}
	}
	return v
}

// SlogReplacer returns a slog.HandlerOptions.ReplaceAttr function that masks string attributes
// whose key is a secret field, so a handler never writes one in full.
func (f Fields) SlogReplacer() func(groups []string, a slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		if f.Has(a.Key) {
			return slog.String(a.Key, Mask(a.Value.String()))
		}
		return a
	}
}
