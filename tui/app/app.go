// Package app is the TUI's root model: the header, the `:` command palette, the `/` filter, the
// `?` help screen, the status line and a stack of views (esc goes back). It knows views only
// through tui/view, so each view lives in its own package and the root never blocks on I/O.
package app

import (
	"fmt"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/theme"
	"github.com/come2us/opsctl/tui/view"
)

// Header is what the top line shows about where opsctl is pointed.
type Header struct {
	Context   string
	Kafka     string
	ArgoCD    string
	Kube      string
	Readonly  bool
	Simulated bool
}

// Route is a palette command such as `:dlt` or `:trace ORDER_ID`.
type Route struct {
	Name string
	Args string // usage of the arguments, for help ("ORDER_ID")
	Help string
	Open func(args []string) (view.View, error)
}

// Keys of the root, declared once: they feed the help bar and the ? screen.
var (
	KeyPalette = key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command"))
	KeyFilter  = key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter"))
	KeyHelp    = key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help"))
	KeyBack    = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back"))
	KeyQuit    = key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit"))
	KeyForce   = key.NewBinding(key.WithKeys("ctrl+c"))
)

// Model is the root model.
type Model struct {
	header  Header
	routes  map[string]Route
	stack   []view.View
	input   textinput.Model
	mode    int // modeNormal, modePalette, modeFilter
	help    help.Model
	full    bool // ? screen
	status  string
	statErr bool
	width   int
	height  int
	initial string
	// SwitchContext, when set, is called for `:ctx NAME`; it returns the new header and routes.
	switchCtx func(name string) (Header, []Route, error)
	contexts  []string
}

const (
	modeNormal = iota
	modePalette
	modeFilter
)

// Options configure New.
type Options struct {
	Header Header
	Routes []Route
	// Start is the route opened first (default "dlt").
	Start string
	// Contexts are offered by `:ctx`; SwitchContext performs the switch.
	Contexts      []string
	SwitchContext func(name string) (Header, []Route, error)
}

// New builds the root model.
func New(o Options) Model {
	in := textinput.New()
	in.Prompt = ":"
	in.CharLimit = 256
	m := Model{header: o.Header, input: in, help: help.New(), initial: o.Start, switchCtx: o.SwitchContext,
		contexts: o.Contexts, width: 80, height: 24}
	if m.initial == "" {
		m.initial = "dlt"
	}
	m.setRoutes(o.Routes)
	return m
}

func (m *Model) setRoutes(rs []Route) {
	m.routes = map[string]Route{}
	for _, r := range rs {
		m.routes[r.Name] = r
	}
}

// Init opens the start view.
func (m Model) Init() tea.Cmd {
	return func() tea.Msg { return openMsg{line: m.initial} }
}

type openMsg struct{ line string }

// Update routes messages: root keys first (unless a view captures input), then the top view.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		for _, v := range m.stack {
			v.SetSize(m.bodySize())
		}
		return m, nil
	case openMsg:
		return m.run(msg.line)
	case view.StatusMsg:
		m.status, m.statErr = msg.Text, msg.Err
		return m, nil
	case view.PushMsg:
		return m.push(msg.View)
	case view.PopMsg:
		return m.pop()
	case tea.KeyMsg:
		if key.Matches(msg, KeyForce) {
			return m, tea.Quit
		}
		switch m.mode {
		case modePalette, modeFilter:
			return m.updateInput(msg)
		}
		if m.full {
			if key.Matches(msg, KeyHelp, KeyBack, KeyQuit) {
				m.full = false
			}
			return m, nil
		}
		if top := m.top(); top == nil || !top.Capturing() {
			switch {
			case key.Matches(msg, KeyQuit):
				return m, tea.Quit
			case key.Matches(msg, KeyPalette):
				m.mode = modePalette
				m.input.Prompt = ":"
				m.input.SetValue("")
				return m, m.input.Focus()
			case key.Matches(msg, KeyFilter):
				if f, ok := top.(view.Filterable); ok {
					m.mode = modeFilter
					m.input.Prompt = "/"
					m.input.SetValue(f.Filter())
					return m, m.input.Focus()
				}
				return m, nil
			case key.Matches(msg, KeyHelp):
				m.full = true
				return m, nil
			case key.Matches(msg, KeyBack):
				if f, ok := top.(view.Filterable); ok && f.Filter() != "" {
					return m, f.SetFilter("")
				}
				return m.pop()
			}
		}
	}
	return m.forward(msg)
}

func (m Model) forward(msg tea.Msg) (tea.Model, tea.Cmd) {
	if len(m.stack) == 0 {
		return m, nil
	}
	// Results of background loads may belong to any view in the stack; deliver non-input
	// messages to all of them, input only to the top.
	switch msg.(type) {
	case tea.KeyMsg, tea.MouseMsg:
		i := len(m.stack) - 1
		v, cmd := m.stack[i].Update(msg)
		m.stack[i] = v
		return m, cmd
	}
	var cmds []tea.Cmd
	for i, v := range m.stack {
		nv, cmd := v.Update(msg)
		m.stack[i] = nv
		cmds = append(cmds, cmd)
	}
	return m, tea.Batch(cmds...)
}

func (m Model) updateInput(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		m.mode = modeNormal
		m.input.Blur()
		return m, nil
	case tea.KeyEnter:
		line := strings.TrimSpace(m.input.Value())
		mode := m.mode
		m.mode = modeNormal
		m.input.Blur()
		if mode == modeFilter {
			if f, ok := m.top().(view.Filterable); ok {
				return m, f.SetFilter(line)
			}
			return m, nil
		}
		return m.run(line)
	case tea.KeyTab:
		if m.mode == modePalette {
			m.input.SetValue(m.complete(m.input.Value()))
			m.input.CursorEnd()
		}
		return m, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func (m Model) complete(prefix string) string {
	var hits []string
	for _, n := range m.routeNames() {
		if strings.HasPrefix(n, prefix) {
			hits = append(hits, n)
		}
	}
	if len(hits) == 1 {
		return hits[0] + " "
	}
	return prefix
}

func (m Model) routeNames() []string {
	names := []string{"ctx", "help", "quit"}
	for n := range m.routes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// run executes a palette line such as "trace 42".
func (m Model) run(line string) (tea.Model, tea.Cmd) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return m, nil
	}
	name, args := fields[0], fields[1:]
	switch name {
	case "q", "quit":
		return m, tea.Quit
	case "help":
		m.full = true
		return m, nil
	case "ctx":
		return m.switchContext(args)
	}
	r, ok := m.routes[name]
	if !ok {
		m.status, m.statErr = fmt.Sprintf("unknown command :%s — try %s", termsafe.Truncate(name, 20), ":"+strings.Join(m.routeNames(), " :")), true
		return m, nil
	}
	v, err := r.Open(args)
	if err != nil {
		m.status, m.statErr = termsafe.String(err.Error()), true
		return m, nil
	}
	// A palette jump replaces the stack: `:apps` from deep in the DLT view starts fresh.
	m.stack = nil
	return m.push(v)
}

func (m Model) switchContext(args []string) (tea.Model, tea.Cmd) {
	if len(args) == 0 {
		m.status, m.statErr = "contexts: "+strings.Join(m.contexts, ", ")+" — :ctx NAME switches", false
		return m, nil
	}
	if m.switchCtx == nil {
		m.status, m.statErr = "switching contexts is not available here", true
		return m, nil
	}
	h, routes, err := m.switchCtx(args[0])
	if err != nil {
		m.status, m.statErr = termsafe.String(err.Error()), true
		return m, nil
	}
	m.header = h
	m.setRoutes(routes)
	m.stack = nil
	m.status, m.statErr = "switched to context "+termsafe.String(args[0]), false
	return m.run(m.initial)
}

func (m Model) push(v view.View) (tea.Model, tea.Cmd) {
	v.SetSize(m.bodySize())
	m.stack = append(m.stack, v)
	return m, v.Init()
}

func (m Model) pop() (tea.Model, tea.Cmd) {
	if len(m.stack) <= 1 {
		return m, nil
	}
	m.stack = m.stack[:len(m.stack)-1]
	return m, nil
}

func (m Model) top() view.View {
	if len(m.stack) == 0 {
		return nil
	}
	return m.stack[len(m.stack)-1]
}

// Top returns the view on top of the stack (for tests).
func (m Model) Top() view.View { return m.top() }

func (m Model) bodySize() (int, int) { return m.width, max(m.height-4, 1) }

// View draws header, title, body, key help and status line: exactly the terminal's size.
func (m Model) View() string {
	w := m.width
	lines := []string{m.headerLine(), m.titleLine()}
	body := ""
	if m.full {
		body = m.helpScreen()
	} else if top := m.top(); top != nil {
		body = top.View()
	}
	_, bh := m.bodySize()
	bl := strings.Split(body, "\n")
	for len(bl) < bh {
		bl = append(bl, "")
	}
	lines = append(lines, bl[:bh]...)
	lines = append(lines, m.helpLine(), m.statusLine())
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "")
	}
	return strings.Join(lines, "\n")
}

func (m Model) headerLine() string {
	part := func(k, v string) string {
		if v == "" {
			v = "—"
		}
		return theme.HeaderKey.Render(k+":") + theme.Header.Render(termsafe.Truncate(v, 28))
	}
	s := strings.Join([]string{part("ctx", m.header.Context), part("kafka", m.header.Kafka), part("argocd", m.header.ArgoCD), part("kube", m.header.Kube)}, "  ")
	var badges []string
	if m.header.Simulated {
		badges = append(badges, theme.SimBadge.Render("SIMULATED"))
	}
	if m.header.Readonly {
		badges = append(badges, theme.Badge.Render("READ-ONLY"))
	}
	if len(badges) > 0 {
		b := strings.Join(badges, " ")
		room := m.width - lipgloss.Width(b) - 1
		s = ansi.Truncate(s, max(room, 0), "…")
		s += strings.Repeat(" ", max(room-lipgloss.Width(s), 0)+1) + b
	}
	return s
}

func (m Model) titleLine() string {
	var parts []string
	for _, v := range m.stack {
		parts = append(parts, v.Title())
	}
	t := strings.Join(parts, " › ")
	if f, ok := m.top().(view.Filterable); ok && f.Filter() != "" {
		t += theme.Dim.Render("  /" + termsafe.Truncate(f.Filter(), 30))
	}
	return theme.Title.Render(t)
}

func (m Model) helpLine() string {
	switch m.mode {
	case modePalette, modeFilter:
		return m.input.View()
	}
	keys := []key.Binding{}
	if top := m.top(); top != nil {
		keys = append(keys, top.Keys()...)
	}
	keys = append(keys, KeyPalette, KeyFilter, KeyHelp, KeyBack, KeyQuit)
	return m.help.ShortHelpView(keys)
}

func (m Model) statusLine() string {
	if m.status == "" {
		return ""
	}
	if m.statErr {
		return theme.Error.Render("✗ " + m.status)
	}
	return theme.StatusLine.Render(m.status)
}

func (m Model) helpScreen() string {
	var b strings.Builder
	b.WriteString(theme.Title.Render("Commands") + "\n")
	for _, n := range m.routeNames() {
		r, ok := m.routes[n]
		switch {
		case ok:
			fmt.Fprintf(&b, "  :%-16s %s\n", strings.TrimSpace(n+" "+r.Args), r.Help)
		case n == "ctx":
			fmt.Fprintf(&b, "  :%-16s %s\n", "ctx NAME", "switch context")
		case n == "quit":
			fmt.Fprintf(&b, "  :%-16s %s\n", "quit", "leave opsctl")
		}
	}
	b.WriteString("\n" + theme.Title.Render("Keys") + "\n")
	keys := []key.Binding{KeyPalette, KeyFilter, KeyHelp, KeyBack, KeyQuit}
	if top := m.top(); top != nil {
		keys = append(top.Keys(), keys...)
	}
	for _, k := range keys {
		h := k.Help()
		if h.Key == "" {
			continue
		}
		fmt.Fprintf(&b, "  %-10s %s\n", h.Key, h.Desc)
	}
	return b.String()
}
