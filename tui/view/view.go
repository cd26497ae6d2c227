// Package view is the contract between the TUI's root model and its views (DLT, canary, apps,
// trace): what a view must implement and the messages views send to the root.
package view

import (
	"context"
	"errors"
	"time"

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

// StatusMsg puts a line on the status bar; Err lines are drawn red. A message belongs to the
// view that sent it: the root shows it only while that view is on top, and only for a while.
type StatusMsg struct {
	Text string
	Err  bool
	// From is the view whose command sent the message; the root fills it in.
	From View
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

// Closer is implemented by views that hold background work (a watch, a running replay's
// listener). The root calls Close when the view leaves the stack or the program quits, so no
// goroutine outlives its screen.
type Closer interface {
	Close()
}

// Listen returns a command that waits for the next message on ch. A view that runs a
// long-lived producer (an Argo CD watch, a replay's progress) re-issues Listen after each
// message it receives; when ch is closed, or ctx ends, the command returns nil and the loop
// stops. Listen never blocks Update: it runs as a tea.Cmd.
func Listen(ctx context.Context, ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			return m
		}
	}
}

// After returns a command that delivers msg after d unless ctx ends first. Unlike tea.Tick it
// leaves no goroutine behind once the view or the program is gone.
func After(ctx context.Context, d time.Duration, msg tea.Msg) tea.Cmd {
	return func() tea.Msg {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			return msg
		}
	}
}

// Do runs fn in a command and turns its error into a status line; the result, when fn
// succeeds, is the message fn returns. Work cancelled because its view closed reports nothing.
func Do(fn func() (tea.Msg, error)) tea.Cmd {
	return func() tea.Msg {
		m, err := fn()
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return StatusMsg{Text: err.Error(), Err: true}
		}
		return m
	}
}
