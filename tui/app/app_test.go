package app

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii) // golden output without colour codes
	os.Exit(m.Run())
}

// listView is a minimal view for exercising the root; it records the filter it was given.
type listView struct {
	name   string
	filter string
	w, h   int
	keys   []string
}

func (v *listView) Init() tea.Cmd { return nil }
func (v *listView) Update(msg tea.Msg) (view.View, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		v.keys = append(v.keys, k.String())
	}
	return v, nil
}
func (v *listView) View() string {
	return strings.Repeat(v.name+" body line\n", v.h-1) + "filter=" + v.filter
}
func (v *listView) Title() string    { return v.name }
func (v *listView) SetSize(w, h int) { v.w, v.h = w, h }
func (v *listView) Keys() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "replay"))}
}
func (v *listView) Capturing() bool            { return false }
func (v *listView) SetFilter(s string) tea.Cmd { v.filter = s; return nil }
func (v *listView) Filter() string             { return v.filter }

func routes() []Route {
	return []Route{
		{Name: "dlt", Help: "dead-letter topics", Open: func([]string) (view.View, error) { return &listView{name: "dlt"}, nil }},
		{Name: "trace", Args: "ORDER_ID", Help: "one order's timeline", Open: func(a []string) (view.View, error) {
			if len(a) != 1 {
				return nil, errors.New("usage: :trace ORDER_ID")
			}
			return &listView{name: "trace " + a[0]}, nil
		}},
	}
}

func TestPaletteFilterAndBack(t *testing.T) {
	t.Parallel()
	m := New(Options{Header: Header{Context: "prod", Kafka: "b-1:9098", Readonly: true}, Routes: routes()})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("dlt body line")) },
		teatest.WithDuration(5*time.Second))
	tm.Type(":trace")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("usage: :trace ORDER_ID")) },
		teatest.WithDuration(5*time.Second))
	tm.Type(":trace 42")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("/PAID")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("filter=PAID")) },
		teatest.WithDuration(5*time.Second))
	tm.Type("x")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc}) // clears the filter first
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	top := fm.Top().(*listView)
	if top.name != "trace 42" || top.filter != "" {
		t.Fatalf("top view %q filter %q", top.name, top.filter)
	}
	if len(top.keys) != 1 || top.keys[0] != "x" {
		t.Fatalf("keys reaching the view: %v", top.keys)
	}
}

func TestLayout80x24(t *testing.T) {
	t.Parallel()
	m := New(Options{Header: Header{Context: "sandbox", Kafka: "127.0.0.1:9092", ArgoCD: "127.0.0.1:8080", Kube: "sandbox", Readonly: true, Simulated: true}, Routes: routes()})
	var mm tea.Model = m
	mm, _ = mm.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	mm, _ = mm.Update(openMsg{line: "dlt"})
	out := mm.View()
	lines := strings.Split(out, "\n")
	if len(lines) != 24 {
		t.Fatalf("%d lines, want 24:\n%s", len(lines), out)
	}
	for i, l := range lines {
		if w := lipgloss.Width(l); w > 80 {
			t.Fatalf("line %d is %d wide: %q", i, w, l)
		}
	}
	if !strings.Contains(lines[0], "READ-ONLY") || !strings.Contains(lines[0], "SIMULATED") {
		t.Fatalf("header lacks badges: %q", lines[0])
	}
	mm, _ = mm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("?")})
	if out := mm.View(); !strings.Contains(out, ":trace ORDER_ID") || !strings.Contains(out, "replay") {
		t.Fatalf("help screen:\n%s", out)
	}
}

// TestHelpScreen: ? lists the palette's commands and every key of the current view, from the
// same bindings the help bar shows.
func TestHelpScreen(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, w, h int) {
		m := New(Options{Header: Header{Context: "prod", Kafka: "b-1:9098", ArgoCD: "argocd:443", Kube: "eks"}, Routes: routes()})
		p := tuitest.Start(t, m, w, h)
		p.WaitFor("dlt body line")
		p.Type("?")
		p.WaitFor("Commands", "Keys")
		tuitest.GoldenScreen(t, p.Screen(), w, h)
	})
}

// TestPaletteCompletion: tab completes a unique command, and a context name after :ctx.
func TestPaletteCompletion(t *testing.T) {
	t.Parallel()
	var asked []string
	m := New(Options{Routes: routes(), Contexts: []string{"prod", "sandbox"},
		SwitchContext: func(name string) (Switched, error) {
			asked = append(asked, name)
			if name != "sandbox" {
				return Switched{}, errors.New("context \"" + name + "\" is not in the config")
			}
			return Switched{Header: Header{Context: "sandbox", Simulated: true}, Routes: routes(), Start: "trace 9"}, nil
		}})
	p := tuitest.Start(t, m, 80, 24)
	p.WaitFor("dlt body line")
	p.Type(":tr")
	p.Key(tea.KeyTab)
	p.Type("42")
	p.Key(tea.KeyEnter)
	p.WaitFor("trace 42 body line")
	p.Type(":ctx sa")
	p.Key(tea.KeyTab)
	p.Key(tea.KeyEnter)
	p.WaitFor("SIMULATED", "trace 9 body line", "switched to context sandbox")
	p.Type(":ctx nope")
	p.Key(tea.KeyEnter)
	p.WaitFor(`context "nope" is not in the config`)
	fm := p.Quit().(Model)
	if top := fm.Top().(*listView); top.name != "trace 9" {
		t.Fatalf("after a failed switch the view is %q", top.name)
	}
	if strings.Join(asked, ",") != "sandbox,nope" {
		t.Fatalf("switches asked: %v", asked)
	}
}

// TestFastTyping: runes read together (":trace 42" typed before the screen caught up) act as
// separate key presses.
func TestFastTyping(t *testing.T) {
	t.Parallel()
	p := tuitest.Start(t, New(Options{Routes: routes()}), 80, 24)
	p.WaitFor("dlt body line")
	p.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(":trace 42")})
	p.Key(tea.KeyEnter)
	p.WaitFor("trace 42 body line")
	p.Quit()
}

// TestRepaint: ctrl+l asks Bubble Tea to clear the screen and draw every cell again, whatever
// the view and even while the palette is open.
func TestRepaint(t *testing.T) {
	t.Parallel()
	clear := fmt.Sprintf("%T", tea.ClearScreen())
	var mm tea.Model = New(Options{Routes: routes()})
	mm, _ = mm.Update(openMsg{line: "dlt"})
	for _, mode := range []string{"normal", "palette"} {
		_, cmd := mm.Update(tea.KeyMsg{Type: tea.KeyCtrlL})
		if cmd == nil || fmt.Sprintf("%T", cmd()) != clear {
			t.Fatalf("ctrl+l (%s) does not clear the screen", mode)
		}
		mm, _ = mm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(":")})
	}
}
