// Package theme holds every lipgloss style of the TUI in one place, so views agree on what a
// healthy app, a failing gate or a selected row looks like.
package theme

import "github.com/charmbracelet/lipgloss"

// Palette colours (ANSI 256, readable on dark and light terminals).
var (
	Accent = lipgloss.AdaptiveColor{Light: "25", Dark: "39"}
	Muted  = lipgloss.AdaptiveColor{Light: "244", Dark: "245"}
	Good   = lipgloss.AdaptiveColor{Light: "28", Dark: "42"}
	Warn   = lipgloss.AdaptiveColor{Light: "130", Dark: "214"}
	Bad    = lipgloss.AdaptiveColor{Light: "124", Dark: "203"}
)

// Styles.
var (
	Header     = lipgloss.NewStyle().Bold(true).Foreground(Accent)
	HeaderKey  = lipgloss.NewStyle().Foreground(Muted)
	Badge      = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("231")).Background(lipgloss.Color("124")).Padding(0, 1)
	SimBadge   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("16")).Background(lipgloss.Color("214")).Padding(0, 1)
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
