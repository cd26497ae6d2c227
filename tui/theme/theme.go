// Package theme holds every lipgloss style of the TUI in one place, so views agree on what a
// healthy app, a failing gate or a selected row looks like.
package theme

import "github.com/charmbracelet/lipgloss"

// Palette colours: the terminal's own 16 ANSI colours, which its theme already tunes for its
// background. Adaptive colours would make lipgloss ask the terminal for its background colour,
// a query that stalls for seconds on terminals that do not answer and races Bubble Tea for the
// reply on those that do.
var (
	Accent = lipgloss.Color("6")
	Muted  = lipgloss.Color("8")
	Good   = lipgloss.Color("2")
	Warn   = lipgloss.Color("3")
	Bad    = lipgloss.Color("1")
)

// Styles.
var (
	Header     = lipgloss.NewStyle().Bold(true).Foreground(Accent)
	HeaderKey  = lipgloss.NewStyle().Foreground(Muted)
	Badge      = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("1")).Padding(0, 1)
	SimBadge   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("0")).Background(lipgloss.Color("3")).Padding(0, 1)
	Title      = lipgloss.NewStyle().Bold(true)
	Column     = lipgloss.NewStyle().Bold(true).Foreground(Muted)
	Cursor     = lipgloss.NewStyle().Reverse(true)
	Selected   = lipgloss.NewStyle().Foreground(Accent).Bold(true)
	Dim        = lipgloss.NewStyle().Foreground(Muted)
	OK         = lipgloss.NewStyle().Foreground(Good)
	Warning    = lipgloss.NewStyle().Foreground(Warn)
	Error      = lipgloss.NewStyle().Foreground(Bad)
	StatusLine = lipgloss.NewStyle().Foreground(Muted)
	Modal      = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(Accent).Padding(0, 1)
)

// Verdict styles a state word: good states green, bad red, in-between amber, unknown muted.
func Verdict(s string) string {
	switch s {
	case "Synced", "Healthy", "pass", "PASS", "in sync", "ok", "Succeeded", "ready":
		return OK.Render(s)
	case "OutOfSync", "Degraded", "fail", "FAIL", "drift", "Failed", "Error", "Missing", "not ready":
		return Error.Render(s)
	case "Progressing", "Running", "sync pending", "Suspended", "warn":
		return Warning.Render(s)
	}
	return Dim.Render(s)
}
