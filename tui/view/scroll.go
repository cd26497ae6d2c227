package view

import (
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
)

// Keys every scrolling text view shares besides the viewport's own.
var (
	KeyTop    = key.NewBinding(key.WithKeys("home", "g"))
	KeyBottom = key.NewBinding(key.WithKeys("end", "G"))
)

// NewViewport returns a viewport with the scrolling keys of every text view (a record, a
// replay run, a resource's YAML or diff): ↑↓ and j/k, pgup/pgdn (b/f, space, ctrl+b/ctrl+f),
// ctrl+u/ctrl+d for half a page; Scroll adds g/G.
func NewViewport() viewport.Model {
	vp := viewport.New(0, 0)
	vp.KeyMap = viewport.KeyMap{
		PageDown:     key.NewBinding(key.WithKeys("pgdown", "ctrl+f", "f", " ")),
		PageUp:       key.NewBinding(key.WithKeys("pgup", "ctrl+b", "b")),
		HalfPageDown: key.NewBinding(key.WithKeys("ctrl+d")),
		HalfPageUp:   key.NewBinding(key.WithKeys("ctrl+u")),
		Down:         key.NewBinding(key.WithKeys("down", "j")),
		Up:           key.NewBinding(key.WithKeys("up", "k")),
	}
	return vp
}

// Scroll moves vp for a key or mouse message: home/g and end/G jump to the top and the bottom,
// the rest goes to the viewport.
func Scroll(vp *viewport.Model, msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case key.Matches(k, KeyTop):
			vp.GotoTop()
			return nil
		case key.Matches(k, KeyBottom):
			vp.GotoBottom()
			return nil
		}
	}
	var cmd tea.Cmd
	*vp, cmd = vp.Update(msg)
	return cmd
}
