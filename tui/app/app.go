// Package app is the TUI's root model: the header, the `:` command palette, the `/` filter (live
// as it is typed), the `?` help screen, the status line and a stack of views (esc goes back). It
// knows views only through tui/view, so each view lives in its own package and the root never
// blocks on I/O.
package app

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
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
	// Check, when set, runs before Open in a command, so it may do I/O (ask Kafka whether a
	// topic exists). Its error is shown and the current screen stays; a route whose arguments
	// are wrong never replaces the screen the operator was on.
	Check func(args []string) error
}

// Keys of the root, declared once: they feed the help bar and the ? screen.
var (
	KeyPalette = key.NewBinding(key.WithKeys(":"), key.WithHelp(":", "command"))
	KeyFilter  = key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter"))
	KeyHelp    = key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help"))
	KeyBack    = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back"))
	KeyQuit    = key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit"))
	KeyForce   = key.NewBinding(key.WithKeys("ctrl+c"))
	KeyRepaint = key.NewBinding(key.WithKeys("ctrl+l"), key.WithHelp("ctrl+l", "repaint the screen"))
)

// How long a status line stays: long enough to read, short enough that it never describes a
// state that has since changed. Errors stay longer than news.
const (
	InfoTTL  = 10 * time.Second
	ErrorTTL = 30 * time.Second
)

// Model is the root model.
type Model struct {
	header Header
	routes map[string]Route
	stack  []view.View
	input  textinput.Model
	mode   int // modeNormal, modePalette, modeFilter
	// filterWas is the top view's filter when `/` was pressed, kept while a --where expression
	// is being typed.
	filterWas string
	help      help.Model
	full      bool // ? screen
	// notes are the status lines, one per view that made one (the nil key: made with no view
	// open). Only the top view's is drawn, until it expires; a view's note goes with the view.
	notes   map[view.View]note
	seq     int
	now     func() time.Time
	after   func(time.Duration, tea.Msg) tea.Cmd
	ctx     context.Context
	cancel  context.CancelFunc
	width   int
	height  int
	initial string
	// switchCtx, when set, is called for `:ctx NAME`.
	switchCtx func(name string) (Switched, error)
	contexts  []string
}

const (
	modeNormal = iota
	modePalette
	modeFilter
)

// Switched is a context switch's outcome: what the header shows, the palette's routes, and the
// view to open (the new context may not serve the one that was open).
type Switched struct {
	Header Header
	Routes []Route
	Start  string
}

// Options configure New.
type Options struct {
	Header Header
	Routes []Route
	// Start is the route opened first (default "dlt").
	Start string
	// Contexts are offered by `:ctx`; SwitchContext performs the switch.
	Contexts      []string
	SwitchContext func(name string) (Switched, error)
	// Ctx ends the root's timers (default: they end when the program quits).
	Ctx context.Context
	// Now is the clock status lines expire by (default time.Now).
	Now func() time.Time
	// After returns the command that wakes the root when a status line is due to expire
	// (default: a timer that ends with Ctx or the program). Tests pass one that never fires and
	// move Now instead.
	After func(d time.Duration, msg tea.Msg) tea.Cmd
}

// note is one status line and who made it.
type note struct {
	text  string
	err   bool
	until time.Time
	seq   int
}

// expireMsg wakes the root when a note may have expired.
type expireMsg struct {
	owner view.View
	seq   int
}

// New builds the root model.
func New(o Options) Model {
	in := textinput.New()
	in.Cursor.SetMode(cursor.CursorStatic) // no blink timers outliving a frame
	in.Prompt = ":"
	in.CharLimit = 256
	m := Model{header: o.Header, input: in, help: help.New(), initial: o.Start, switchCtx: o.SwitchContext,
		contexts: o.Contexts, width: 80, height: 24, notes: map[view.View]note{}, now: o.Now, after: o.After}
	if m.initial == "" {
		m.initial = "dlt"
	}
	parent := o.Ctx
	if parent == nil {
		parent = context.Background()
	}
	m.ctx, m.cancel = context.WithCancel(parent)
	if m.now == nil {
		m.now = time.Now
	}
	if m.after == nil {
		ctx := m.ctx
		m.after = func(d time.Duration, msg tea.Msg) tea.Cmd { return view.After(ctx, d, msg) }
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

// checkedMsg is a route's Check outcome.
type checkedMsg struct {
	name string
	args []string
	err  error
}

// say makes text the status line of owner (the view on top when the root itself speaks) and
// returns the command that expires it.
func (m *Model) say(text string, isErr bool, owner view.View) tea.Cmd {
	if text == "" {
		delete(m.notes, owner)
		return nil
	}
	ttl := InfoTTL
	if isErr {
		ttl = ErrorTTL
	}
	m.seq++
	m.notes[owner] = note{text: text, err: isErr, until: m.now().Add(ttl), seq: m.seq}
	return m.after(ttl, expireMsg{owner: owner, seq: m.seq})
}

// own marks the status lines cmd produces as owner's, through batches.
func own(owner view.View, cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() tea.Msg {
		switch msg := cmd().(type) {
		case view.StatusMsg:
			if msg.From == nil {
				msg.From = owner
			}
			return msg
		case tea.BatchMsg:
			out := make(tea.BatchMsg, len(msg))
			for i, c := range msg {
				out[i] = own(owner, c)
			}
			return out
		default:
			return msg
		}
	}
}

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
	case checkedMsg:
		return m.checked(msg)
	case switchedMsg:
		return m.switched(msg)
	case view.StatusMsg:
		owner := msg.From
		if owner == nil {
			owner = m.top()
		}
		return m, m.say(msg.Text, msg.Err, owner)
	case expireMsg:
		if n, ok := m.notes[msg.owner]; ok && n.seq == msg.seq && !m.now().Before(n.until) {
			delete(m.notes, msg.owner)
		}
		return m, nil
	case view.PushMsg:
		return m.push(msg.View)
	case view.PopMsg:
		return m.pop()
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			// Keys typed faster than the screen reads them arrive as one message (":apps");
			// each is still a key press of its own.
			var model tea.Model = m
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				var cmd tea.Cmd
				model, cmd = model.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
				cmds = append(cmds, cmd)
			}
			return model, tea.Batch(cmds...)
		}
		if key.Matches(msg, KeyForce) {
			return m.quit()
		}
		if key.Matches(msg, KeyRepaint) {
			// Whatever reached the terminal behind Bubble Tea's back, the next frame redraws
			// every cell.
			return m, tea.ClearScreen
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
				return m.quit()
			case key.Matches(msg, KeyPalette):
				m.mode = modePalette
				m.input.Prompt = ":"
				m.input.SetValue("")
				return m, m.input.Focus()
			case key.Matches(msg, KeyFilter):
				if f, ok := top.(view.Filterable); ok {
					m.mode = modeFilter
					m.input.Prompt = "/"
					m.filterWas = f.Filter()
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
		return m, own(v, cmd)
	}
	var cmds []tea.Cmd
	for i, v := range m.stack {
		nv, cmd := v.Update(msg)
		m.stack[i] = nv
		cmds = append(cmds, own(nv, cmd))
	}
	return m, tea.Batch(cmds...)
}

func (m Model) updateInput(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		mode := m.mode
		m.mode = modeNormal
		m.input.Blur()
		if f, ok := m.top().(view.Filterable); ok && mode == modeFilter && f.Filter() != "" {
			return m, f.SetFilter("") // esc in the filter clears it
		}
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
	if m.mode == modeFilter {
		return m, tea.Batch(cmd, m.liveFilter())
	}
	return m, cmd
}

// liveFilter applies the text being typed after `/` to the view on every keystroke. A --where
// expression (`/=quantity > 1`) is only applied on enter, since its prefixes are seldom valid:
// while one is typed the view keeps the filter it had when `/` was pressed.
func (m Model) liveFilter() tea.Cmd {
	f, ok := m.top().(view.Filterable)
	if !ok {
		return nil
	}
	want := strings.TrimSpace(m.input.Value())
	if strings.HasPrefix(want, "=") {
		want = m.filterWas
	}
	if want == f.Filter() {
		return nil
	}
	return f.SetFilter(want)
}

func (m Model) complete(prefix string) string {
	if rest, ok := strings.CutPrefix(prefix, "ctx "); ok {
		var hits []string
		for _, c := range m.contexts {
			if strings.HasPrefix(c, rest) {
				hits = append(hits, c)
			}
		}
		if len(hits) == 1 {
			return "ctx " + hits[0]
		}
		return prefix
	}
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
		return m.quit()
	case "help":
		m.full = true
		return m, nil
	case "ctx":
		return m.switchContext(args)
	}
	r, ok := m.routes[name]
	if !ok {
		return m, m.say(fmt.Sprintf("unknown command :%s — try %s", termsafe.Truncate(name, 20), ":"+strings.Join(m.routeNames(), " :")), true, m.top())
	}
	if r.Check != nil {
		check := r.Check
		cmd := m.say(":"+termsafe.Truncate(line, 60)+"…", false, m.top())
		return m, tea.Batch(cmd, func() tea.Msg { return checkedMsg{name: name, args: args, err: check(args)} })
	}
	return m.open(r, args)
}

// checked opens a route whose Check passed, or leaves the screen as it is with the error.
func (m Model) checked(msg checkedMsg) (tea.Model, tea.Cmd) {
	if msg.err != nil {
		return m, m.say(msg.err.Error(), true, m.top())
	}
	r, ok := m.routes[msg.name]
	if !ok {
		return m, nil // the context changed meanwhile
	}
	cmd := m.say("", false, m.top())
	mm, open := m.open(r, msg.args)
	return mm, tea.Batch(cmd, open)
}

// open replaces the stack with the route's view: `:apps` from deep in the DLT view starts
// fresh. A route that cannot open leaves the screen as it was.
func (m Model) open(r Route, args []string) (tea.Model, tea.Cmd) {
	v, err := r.Open(args)
	if err != nil {
		return m, m.say(err.Error(), true, m.top())
	}
	m.closeAll()
	return m.push(v)
}

func (m Model) switchContext(args []string) (tea.Model, tea.Cmd) {
	if len(args) == 0 {
		return m, m.say("contexts: "+strings.Join(m.contexts, ", ")+" — :ctx NAME switches", false, m.top())
	}
	if m.switchCtx == nil {
		return m, m.say("switching contexts is not available here", true, m.top())
	}
	// The switch reads the configuration file: it runs in a command. The current screen stays
	// until the switch succeeds, so a context that does not exist changes nothing.
	cmd := m.say("switching to context "+termsafe.String(args[0])+"…", false, m.top())
	fn, name := m.switchCtx, args[0]
	return m, tea.Batch(cmd, func() tea.Msg {
		sw, err := fn(name)
		return switchedMsg{name: name, sw: sw, err: err}
	})
}

type switchedMsg struct {
	name string
	sw   Switched
	err  error
}

func (m Model) switched(msg switchedMsg) (tea.Model, tea.Cmd) {
	if msg.err != nil {
		return m, m.say("still on context "+m.header.Context+": "+msg.err.Error(), true, m.top())
	}
	// The old context's views close before the new one's open, so none of their work lands on
	// the new context's screen.
	m.closeAll()
	m.header = msg.sw.Header
	m.setRoutes(msg.sw.Routes)
	if msg.sw.Start != "" {
		m.initial = msg.sw.Start
	}
	mm, cmd := m.run(m.initial)
	m = mm.(Model)
	if n, ok := m.notes[m.top()]; ok && n.err {
		return m, cmd // the new context's first view could not open: that is the news
	}
	return m, tea.Batch(cmd, m.say("switched to context "+termsafe.String(msg.name), false, m.top()))
}

func (m Model) push(v view.View) (tea.Model, tea.Cmd) {
	v.SetSize(m.bodySize())
	m.stack = append(m.stack, v)
	return m, own(v, v.Init())
}

func (m Model) pop() (tea.Model, tea.Cmd) {
	if len(m.stack) <= 1 {
		return m, nil
	}
	m.closeView(m.stack[len(m.stack)-1])
	m.stack = m.stack[:len(m.stack)-1]
	return m, nil
}

// quit closes every view (ending their watches and listeners) and ends the program. The views
// stay on the stack so the last frame still shows them.
func (m Model) quit() (tea.Model, tea.Cmd) {
	for i := len(m.stack) - 1; i >= 0; i-- {
		closeWork(m.stack[i])
	}
	m.cancel()
	return m, tea.Quit
}

func (m *Model) closeAll() {
	for i := len(m.stack) - 1; i >= 0; i-- {
		m.closeView(m.stack[i])
	}
	m.stack = nil
	delete(m.notes, nil)
}

// closeView ends v's work; its status line goes with it.
func (m *Model) closeView(v view.View) {
	delete(m.notes, v)
	closeWork(v)
}

func closeWork(v view.View) {
	if c, ok := v.(view.Closer); ok {
		c.Close()
	}
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
	// A message longer than the width takes rows from the bottom of the body rather than being
	// cut: the part that says how long to wait or what to use is usually at its end.
	status := m.statusLines()
	bh = max(bh-(len(status)-1), 1)
	bl := strings.Split(body, "\n")
	for len(bl) < bh {
		bl = append(bl, "")
	}
	lines = append(lines, bl[:bh]...)
	lines = append(lines, m.helpLine())
	lines = append(lines, status...)
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
		parts = append(parts, termsafe.String(v.Title()))
	}
	filter := ""
	if f, ok := m.top().(view.Filterable); ok && f.Filter() != "" {
		filter = "  /" + termsafe.Truncate(f.Filter(), 30)
	}
	// A deep stack keeps its end: the screens nearest the current one matter most.
	t := strings.Join(parts, " › ")
	for len(parts) > 1 && lipgloss.Width(t+filter) > m.width {
		parts = parts[1:]
		t = "… › " + strings.Join(parts, " › ")
	}
	return theme.Title.Render(t) + theme.Dim.Render(filter)
}

func (m Model) helpLine() string {
	switch m.mode {
	case modePalette, modeFilter:
		return m.input.View()
	}
	var keys []key.Binding
	top := m.top()
	if top != nil {
		keys = append(keys, top.Keys()...)
	}
	if top != nil && top.Capturing() {
		// A dialog or a text field takes :, /, ?, q and esc itself: offering the root's keys
		// there would promise what those keys do not do.
		return footer(m.help, keys, false, false, m.width)
	}
	_, filterable := top.(view.Filterable)
	return footer(m.help, keys, true, filterable, m.width)
}

// footer draws the help bar in width cells: the view's keys (most important first), then the
// root's. When they do not all fit, the lowest-priority hints go first and a "…" says that ?
// lists them all; `? help` itself is always drawn, so no screen hides the way to its keys.
// Priority: ? help, then the view's keys in their order, then :, esc, /, q. `/ filter` is only
// offered on a screen that has something to filter; none of the root's keys are offered while
// the view captures the keyboard (root false).
func footer(h help.Model, viewKeys []key.Binding, root, filterable bool, width int) string {
	type item struct {
		b    key.Binding
		prio int
	}
	var items []item
	for i, b := range viewKeys {
		items = append(items, item{b, 10 + i})
	}
	n := 10 + len(viewKeys)
	if root {
		items = append(items, item{KeyPalette, n})
		if filterable {
			items = append(items, item{KeyFilter, n + 2})
		}
		items = append(items, item{KeyHelp, 0}, item{KeyBack, n + 1}, item{KeyQuit, n + 3})
	}
	sep := h.Styles.ShortSeparator.Inline(true).Render(h.ShortSeparator)
	render := func(b key.Binding) string {
		return h.Styles.ShortKey.Inline(true).Render(b.Help().Key) + " " +
			h.Styles.ShortDesc.Inline(true).Render(b.Help().Desc)
	}
	tail := " " + h.Styles.Ellipsis.Inline(true).Render(h.Ellipsis)
	// Choose by priority, then draw in display order.
	order := make([]int, 0, len(items))
	for i, it := range items {
		if it.b.Enabled() && it.b.Help().Key != "" {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return items[order[a]].prio < items[order[b]].prio })
	all := 0
	for k, i := range order {
		all += lipgloss.Width(render(items[i].b))
		if k > 0 {
			all += lipgloss.Width(sep)
		}
	}
	budget := width
	if all > width {
		budget -= lipgloss.Width(tail) // room for the "…" that says some are left out
	}
	keep := map[int]bool{}
	used, dropped := 0, false
	for _, i := range order {
		w := lipgloss.Width(render(items[i].b))
		if used > 0 {
			w += lipgloss.Width(sep)
		}
		if used+w > budget && len(keep) > 0 {
			dropped = true
			continue
		}
		keep[i] = true
		used += w
	}
	var b strings.Builder
	for i, it := range items {
		if !keep[i] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(render(it.b))
	}
	if dropped {
		b.WriteString(tail)
	}
	return b.String()
}

// MaxStatusLines is how many rows a long message may take at the bottom of the screen.
const MaxStatusLines = 3

// statusLines draws the top view's note while it lasts: status text often carries a server's or
// a broker's words, multi-line errors included, and is sanitised, its line breaks folded into
// spaces (one sentence), then wrapped at the width in cells over at most MaxStatusLines rows,
// the last cut with "…" if even that is not enough. No note is one empty row.
func (m Model) statusLines() []string {
	n, ok := m.notes[m.top()]
	if !ok || n.text == "" || !m.now().Before(n.until) {
		return []string{""}
	}
	text, style := termsafe.Line(n.text), theme.StatusLine
	if n.err {
		text, style = "✗ "+text, theme.Error
	}
	w := max(m.width, 10)
	lines := strings.Split(ansi.Wrap(text, w, ""), "\n")
	if len(lines) > MaxStatusLines {
		last := strings.Join(lines[MaxStatusLines-1:], " ")
		lines = append(lines[:MaxStatusLines-1], termsafe.Cut(last, w))
	}
	for i, l := range lines {
		lines[i] = style.Render(strings.TrimRight(l, " "))
	}
	return lines
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
	keys := []key.Binding{KeyPalette, KeyFilter, KeyHelp, KeyBack, KeyQuit, KeyRepaint}
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
