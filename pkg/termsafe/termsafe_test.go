package termsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "order 42 failed", "order 42 failed"},
		{"unicode kept", "주문 실패 ✓", "주문 실패 ✓"},
		{"csi colour", "\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"osc title", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"8-bit csi", "a\u009b2Jb", `a\x9b2Jb`},
		{"newline tab cr", "a\nb\tc\rd", `a\nb\tc\rd`},
		{"invalid utf8", "a\xff\xfeb", `a\xff\xfeb`},
		{"bidi override", "abc\u202edef", `abc\u202edef`},
		{"del", "a\x7fb", `a\x7fb`},
		{"nul", "a\x00b", `a\x00b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestBlockKeepsLines(t *testing.T) {
	t.Parallel()
	got := Block("line1\n\tline2\r\n\x1b[2J")
	want := "line1\n\tline2\\r\n\\x1b[2J"
	if got != want {
		t.Fatalf("Block = %q, want %q", got, want)
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	if got := Truncate("short", 10); got != "short" {
		t.Fatalf("got %q", got)
	}
	got := Truncate(strings.Repeat("x", 100), 10)
	if utf8.RuneCountInString(got) != 10 || !strings.HasSuffix(got, "…") {
		t.Fatalf("Truncate = %q", got)
	}
	if got := Truncate("\x1b[31m", 3); strings.ContainsRune(got, 0x1b) {
		t.Fatalf("escape survived truncation: %q", got)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b]8;;http://x\x07link\x1b]8;;\x07", "\xff", "\u202e", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{String(s), Truncate(s, 12)} {
			if !utf8.ValidString(out) {
				t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
			}
			for _, r := range out {
				if needsEscape(r, false) {
					t.Fatalf("unsafe rune %U survived in %q (from %q)", r, out, s)
				}
			}
		}
		for _, r := range Block(s) {
			if needsEscape(r, true) {
				t.Fatalf("unsafe rune %U survived Block(%q)", r, s)
			}
		}
	})
}

func TestLines(t *testing.T) {
	t.Parallel()
	got := Lines("a\tb\r\n主\tc\rd\n\x1b[2J")
	want := []string{"a       b", "主      c\\rd", "\\x1b[2J"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
}

func TestLineAndFit(t *testing.T) {
	t.Parallel()
	if got := Line("bad selection: EOF (1:10)\n | orderId ==\r\n |\t.........^"); got != "bad selection: EOF (1:10) | orderId == | .........^" {
		t.Fatalf("Line = %q", got)
	}
	if got := Line("a\x1b[31m\u202e"); got != `a\x1b[31m\u202e` {
		t.Fatalf("Line kept a control character: %q", got)
	}
	// Wide characters count two cells: 10 cells hold four of them and the marker.
	if got := Fit("주문주문주문주문", 10); got != "주문주문…" {
		t.Fatalf("Fit = %q", got)
	}
	if got := Fit("short", 10); got != "short" {
		t.Fatalf("Fit = %q", got)
	}
}
