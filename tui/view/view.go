// Package view is the contract between the TUI's root model and its views (DLT, canary, apps,
// trace): what a view must implement and the messages views send to the root.
package view

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// View is one screen. Views never block in Update: all I/O runs in tea.Cmds and comes back as
// messages.
type View interface {
	// Init starts the view's first loads.
	Init() tea.Cmd
	// Update handles a message and returns the (possibly new) view.
	Update(tea.Msg) (View, tea.Cmd)
	// View renders the body, exactly Size() big.
	View() string
	// Title names the view in the breadcrumb, e.g. "dlt › orders-failed.DLT".
	Title() string
	// SetSize gives the view its body size.
	SetSize(width, height int)
	// Keys lists the view's bindings for the help bar and the ? screen.
	Keys() []key.Binding
	// Capturing reports whether the view is taking raw keystrokes (a text input or a modal), in
	// which case the root leaves :, /, ?, q and esc to it.
	Capturing() bool
}

// Filterable views accept the `/` filter.
type Filterable interface {
	SetFilter(string) tea.Cmd
	Filter() string
}

// StatusMsg puts a line on the status bar; Err lines are drawn red.
type StatusMsg struct {
	Text string
	Err  bool
}

// PushMsg opens a view on top of the current one (esc returns).
type PushMsg struct{ View View }

// PopMsg closes the current view, like esc.
type PopMsg struct{}

// Status returns a command that shows text on the status line.
func Status(text string) tea.Cmd { return func() tea.Msg { return StatusMsg{Text: text} } }

// Error returns a command that shows err on the status line.
func Error(err error) tea.Cmd {
	return func() tea.Msg { return StatusMsg{Text: err.Error(), Err: true} }
}

// Push returns a command that opens v.
func Push(v View) tea.Cmd { return func() tea.Msg { return PushMsg{View: v} } }

// Pop returns a command that closes the current view.
func Pop() tea.Cmd { return func() tea.Msg { return PopMsg{} } }
