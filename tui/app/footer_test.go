package app

import (
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/come2us/opsctl/tui/view"
)

// busyView has more keys than an 80-column footer holds (the DLT records screen has ten).
type busyView struct{ listView }

func (v *busyView) Keys() []key.Binding {
	var ks []key.Binding
	for _, k := range []string{"enter record", "space select", "a select all matching", "c clear selection",
		"r replay", "d dry run", "ctrl+r reload", "x mark", "T/O/P sort"} {
		name, desc, _ := strings.Cut(k, " ")
		ks = append(ks, key.NewBinding(key.WithKeys(name), key.WithHelp(name, desc)))
	}
	return ks
}

// TestFooterKeepsHelp: at 80 columns a screen with many keys drops its lowest-priority hints
// (the root's q, /, and its own last keys), never `? help`, and says with "…" that some are
// left out; at 200 columns every hint shows, in the usual order.
func TestFooterKeepsHelp(t *testing.T) {
	t.Parallel()
	rs := []Route{{Name: "dlt", Open: func([]string) (view.View, error) { return &busyView{listView{name: "dlt"}}, nil }}}
	for _, w := range []int{40, 80, 200} {
		d, _ := drive(t, Options{Routes: rs})
		d.Send(sizeMsg(w, 24))
		lines := strings.Split(d.Screen(), "\n")
		foot := lines[len(lines)-2]
		if !strings.Contains(foot, "? help") {
			t.Errorf("at %d columns the footer hides ? help: %q", w, foot)
		}
		if lipgloss.Width(foot) > w {
			t.Errorf("at %d columns the footer is %d wide: %q", w, lipgloss.Width(foot), foot)
		}
		if w == 80 && (!strings.HasPrefix(foot, "enter record • space select") || !strings.HasSuffix(foot, " …")) {
			t.Errorf("at 80 columns the footer does not keep the view's first keys and end in …: %q", foot)
		}
		if w == 200 && foot != "enter record • space select • a select all matching • c clear selection • r replay • d dry run • ctrl+r reload • x mark • T/O/P sort • : command • / filter • ? help • esc back • q quit" {
			t.Errorf("at 200 columns the footer is %q", foot)
		}
	}
}

func sizeMsg(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

// TestFilterAsYouType: `/` narrows the view on every keystroke, backspace widens it again,
// enter keeps the filter and esc (in the filter or after it) clears it; a `/=expr` --where
// expression is applied only on enter, the view keeping its filter while it is typed.
func TestFilterAsYouType(t *testing.T) {
	t.Parallel()
	d, _ := drive(t, Options{Routes: routes()})
	top := func() *listView { return d.Model.(Model).Top().(*listView) }
	typ := func(s string) {
		for _, r := range s {
			d.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		}
	}
	typ("/")
	for i, want := range []string{"P", "PA", "PAI"} {
		typ(want[i : i+1])
		if got := top().filter; got != want {
			t.Fatalf("after typing %q the filter is %q", want, got)
		}
	}
	d.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	if got := top().filter; got != "PA" {
		t.Fatalf("after backspace the filter is %q, want PA", got)
	}
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
	if got := top().filter; got != "PA" || !strings.Contains(d.Screen(), "/PA") {
		t.Fatalf("enter did not keep the filter: %q\n%s", got, d.Screen())
	}
	if len(top().keys) != 0 {
		t.Fatalf("keys typed into the filter reached the view: %v", top().keys)
	}
	// Reopened, the filter is edited from where it was; esc inside it clears it.
	typ("/X")
	if got := top().filter; got != "PAX" {
		t.Fatalf("reopened filter is %q, want PAX", got)
	}
	d.Send(tea.KeyMsg{Type: tea.KeyEsc})
	if got := top().filter; got != "" {
		t.Fatalf("esc in the filter left %q", got)
	}
	// A --where expression waits for enter.
	typ("/PA")
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
	typ("/")
	for range 2 {
		d.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	typ("=qty > 1")
	if got := top().filter; got != "PA" {
		t.Fatalf("while a --where expression is typed the filter is %q, want the one before (PA)", got)
	}
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
	if got := top().filter; got != "=qty > 1" {
		t.Fatalf("enter applied %q, want =qty > 1", got)
	}
	// esc after the filter clears it before going back.
	d.Send(tea.KeyMsg{Type: tea.KeyEsc})
	if got := top().filter; got != "" {
		t.Fatalf("esc left %q", got)
	}
}

// plainView has nothing to filter.
type plainView struct{ listView }

func (v *plainView) Filter() {} // not view.Filterable

// TestFooterFilterOnlyWhereFilterable: `/ filter` is offered on a list, not on a screen with
// nothing to filter (a record, a dialog), where `/` does nothing.
func TestFooterFilterOnlyWhereFilterable(t *testing.T) {
	t.Parallel()
	rs := []Route{
		{Name: "dlt", Open: func([]string) (view.View, error) { return &listView{name: "dlt"}, nil }},
		{Name: "rec", Open: func([]string) (view.View, error) { return &plainView{listView{name: "rec"}}, nil }},
	}
	d, _ := drive(t, Options{Routes: rs})
	foot := func() string { l := strings.Split(d.Screen(), "\n"); return l[len(l)-2] }
	if f := foot(); !strings.Contains(f, "/ filter") {
		t.Fatalf("a filterable list's footer lacks / filter: %q", f)
	}
	pd := paletteDriver{d}
	pd.palette("rec")
	if f := foot(); strings.Contains(f, "/ filter") || !strings.Contains(f, "? help") {
		t.Fatalf("a screen with nothing to filter offers / filter: %q", f)
	}
}

// dialogView is a view with a dialog open: it takes every key itself.
type dialogView struct{ listView }

func (v *dialogView) Capturing() bool { return true }
func (v *dialogView) Keys() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "confirm")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))}
}

// TestFooterInDialog: while a dialog has the keyboard the footer lists the dialog's keys only;
// `? help`, `q quit` and `esc back` would be typed into it, not obeyed.
func TestFooterInDialog(t *testing.T) {
	t.Parallel()
	rs := []Route{{Name: "dlt", Open: func([]string) (view.View, error) { return &dialogView{listView{name: "dlt"}}, nil }}}
	d, _ := drive(t, Options{Routes: rs})
	l := strings.Split(d.Screen(), "\n")
	if f := l[len(l)-2]; f != "enter confirm • esc cancel" {
		t.Fatalf("the footer under a dialog is %q", f)
	}
}
