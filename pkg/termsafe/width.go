package termsafe

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// TabWidth is the tab stop used when tabs are expanded: what a terminal does by default.
const TabWidth = 8

// Lines sanitises a multi-line block for a screen that draws it line by line: CRLF and LF end
// lines, tabs are expanded to spaces at TabWidth stops (a raw tab moves the terminal's cursor
// past whatever width was computed for the line), and every other control character is escaped
// as String does, a lone carriage return included.
func Lines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(Block(s), "\n")
	for i, l := range lines {
		lines[i] = ExpandTabs(l)
	}
	return lines
}

// Line sanitises s for a one-line message such as a status line: line breaks and tabs become
// single spaces (runs of white space collapse), so an error that spans lines reads as one
// sentence instead of showing a literal `\n`; other control characters are escaped as String
// does.
func Line(s string) string {
	return String(strings.Join(strings.Fields(strings.ReplaceAll(s, "\r\n", "\n")), " "))
}

// Fit is Line cut to at most width terminal cells, the last being "…" when anything was cut.
// Unlike Truncate it counts cells, so wide (CJK, emoji) characters never overflow the width.
func Fit(s string, width int) string {
	return Cut(Line(s), width)
}

// Cut shortens an already sanitised line (it may hold styling escapes) to at most width cells,
// ending in "…" when anything was cut. A width below 1 is treated as 1.
func Cut(s string, width int) string {
	width = max(width, 1)
	if ansi.StringWidth(s) <= width {
		return s
	}
	return ansi.Truncate(s, width, "…")
}

// ExpandTabs replaces each tab of a single line with the spaces that reach the next TabWidth
// stop, measuring what precedes it in terminal cells.
func ExpandTabs(s string) string {
	if !strings.Contains(s, "\t") {
		return s
	}
	var b strings.Builder
	col := 0
	for i, part := range strings.Split(s, "\t") {
		if i > 0 {
			n := TabWidth - col%TabWidth
			b.WriteString(strings.Repeat(" ", n))
			col += n
		}
		b.WriteString(part)
		col += ansi.StringWidth(part)
	}
	return b.String()
}

// Dash is s, or "-" when s is empty: how a table or a line shows a value that is not there.
// It does not sanitise s.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
