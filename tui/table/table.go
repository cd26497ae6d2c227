// Package table is the TUI's virtualised table: it draws only the rows on screen and asks its
// owner for windows of rows it does not hold yet, so a view over a million dead letters stays as
// fast as one over ten. Every cell is sanitised for the terminal before it is drawn.
package table

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/come2us/opsctl/pkg/termsafe"
	"github.com/come2us/opsctl/tui/theme"
)

// Column is one column; Width 0 means "share the space left", in proportion to Grow (0 counts
// as 1), so a name column can take twice the room of a message column.
type Column struct {
	Title string
	Width int
	Grow  int
	// Hidden columns keep their cells but are not drawn (a narrow screen drops the least
	// useful ones).
	Hidden bool
	// Fit, when above 0, sizes the column to its content: as wide as its title and its widest
	// loaded cell, at most Fit cells. The room a short column does not take goes to the
	// flexible ones, so a column of empty codes never starves a column of long names.
	Fit int
}

// NeedFunc is called when rows [from, to) should be on screen but are not loaded. It returns the
// command that loads them (the owner later calls SetWindow).
type NeedFunc func(from, to int) tea.Cmd

// Model is the table state.
type Model struct {
	cols    []Column
	total   int
	rows    map[int][]string
	keys    map[int]string // row index → stable key, for selection
	sel     map[string]bool
	cursor  int
	offset  int
	width   int
	height  int
	need    NeedFunc
	pending map[int]bool // window starts already requested
	window  int
	Empty   string
	styler  Styler
	marked  func(i int, key string) bool
}

// Styler colours a cell by its column and (unsanitised) value; ok=false leaves it plain. The
// cell is sanitised and fitted before the style is applied, so a style can never carry bytes
// from the data.
type Styler func(col int, value string) (style lipgloss.Style, ok bool)

// SetStyler installs per-cell colours (sync and health words, verdicts).
func (m *Model) SetStyler(s Styler) { m.styler = s }

// SetMarked replaces the table's own selection set as the source of the ● marker, for views
// that keep their selection elsewhere (a DLT view selecting "everything matching the filter"
// cannot hold a million keys).
func (m *Model) SetMarked(fn func(i int, key string) bool) { m.marked = fn }

func (m Model) isMarked(i int) bool {
	if m.marked != nil {
		return m.marked(i, m.keys[i])
	}
	return m.sel[m.keys[i]]
}

// New returns a table with the given columns.
func New(cols ...Column) Model {
	return Model{cols: cols, rows: map[int][]string{}, keys: map[int]string{}, sel: map[string]bool{},
		pending: map[int]bool{}, window: 200, Empty: "(nothing here)"}
}

// SetHidden shows or hides column i without touching the loaded rows.
func (m *Model) SetHidden(i int, hidden bool) {
	if i >= 0 && i < len(m.cols) {
		m.cols[i].Hidden = hidden
	}
}

// SetWidth changes the fixed width of column i (0 makes it flexible).
func (m *Model) SetWidth(i, w int) {
	if i >= 0 && i < len(m.cols) {
		m.cols[i].Width = w
	}
}

// SetNeed installs the loader for virtualised tables, fetching windows of size rows.
func (m *Model) SetNeed(size int, fn NeedFunc) {
	if size > 0 {
		m.window = size
	}
	m.need = fn
}

// SetSize sets the drawing area; the header takes one line.
func (m *Model) SetSize(w, h int) {
	m.width, m.height = w, h
	m.clamp()
}

// SetAll replaces the whole content (small, in-memory tables). keys are optional stable ids.
func (m *Model) SetAll(rows [][]string, keys []string) {
	m.total = len(rows)
	m.rows = make(map[int][]string, len(rows))
	m.keys = make(map[int]string, len(rows))
	for i, r := range rows {
		m.rows[i] = r
		if i < len(keys) {
			m.keys[i] = keys[i]
		}
	}
	m.pending = map[int]bool{}
	m.clamp()
}

// SetTotal sets the row count of a virtualised table and forgets loaded windows.
func (m *Model) SetTotal(n int) {
	m.total = n
	m.rows = map[int][]string{}
	m.keys = map[int]string{}
	m.pending = map[int]bool{}
	m.clamp()
}

// Extend changes the row count of a virtualised table that grows as a scan finds rows, keeping
// the windows already loaded.
func (m *Model) Extend(n int) {
	for i := range m.rows {
		if i >= n {
			delete(m.rows, i)
			delete(m.keys, i)
		}
	}
	m.total = n
	m.clamp()
}

// Rewrite replaces the cells of every loaded row with what fn returns for them, e.g. to show a
// change that does not need the rows to be read again.
func (m *Model) Rewrite(fn func(i int, key string, row []string) []string) {
	for i, r := range m.rows {
		m.rows[i] = fn(i, m.keys[i], r)
	}
}

// Visible returns the index range [from, to) of the rows on screen.
func (m Model) Visible() (int, int) {
	return m.offset, min(m.offset+m.bodyHeight(), m.total)
}

// SetWindow stores loaded rows starting at index from.
func (m *Model) SetWindow(from int, rows [][]string, keys []string) {
	for i, r := range rows {
		m.rows[from+i] = r
		if i < len(keys) {
			m.keys[from+i] = keys[i]
		}
	}
	delete(m.pending, from)
	// Keep memory bounded: forget rows far from the cursor.
	if len(m.rows) > 8*m.window {
		for i := range m.rows {
			if i < m.cursor-4*m.window || i > m.cursor+4*m.window {
				delete(m.rows, i)
				delete(m.keys, i)
			}
		}
	}
}

// Total is the row count.
func (m Model) Total() int { return m.total }

// Cursor is the index of the highlighted row.
func (m Model) Cursor() int { return m.cursor }

// SetCursor moves the highlight.
func (m *Model) SetCursor(i int) { m.cursor = i; m.clamp() }

// Row returns the loaded row at i.
func (m Model) Row(i int) ([]string, bool) { r, ok := m.rows[i]; return r, ok }

// Key returns the stable key of row i.
func (m Model) Key(i int) string { return m.keys[i] }

// Toggle flips the selection of the row under the cursor.
func (m *Model) Toggle() {
	k, ok := m.keys[m.cursor]
	if !ok {
		return
	}
	if m.sel[k] {
		delete(m.sel, k)
	} else {
		m.sel[k] = true
	}
}

// Select marks keys selected.
func (m *Model) Select(keys ...string) {
	for _, k := range keys {
		m.sel[k] = true
	}
}

// ClearSelection unselects everything.
func (m *Model) ClearSelection() { m.sel = map[string]bool{} }

// Selected returns the selected keys.
func (m Model) Selected() []string {
	out := make([]string, 0, len(m.sel))
	for k := range m.sel {
		out = append(out, k)
	}
	return out
}

// IsSelected reports whether key is selected.
func (m Model) IsSelected(k string) bool { return m.sel[k] }

// Keys of the table, for help.
var (
	KeyUp   = key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up"))
	KeyDown = key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down"))
	KeyPgUp = key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up"))
	KeyPgDn = key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down"))
	KeyTop  = key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "top"))
	KeyEnd  = key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "bottom"))
)

// Update moves the cursor on keys and the mouse wheel and returns loads for missing rows.
func (m Model) Update(msg tea.Msg) (Model, tea.Cmd) {
	page := m.bodyHeight()
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, KeyUp):
			m.cursor--
		case key.Matches(msg, KeyDown):
			m.cursor++
		case key.Matches(msg, KeyPgUp):
			m.cursor -= page
		case key.Matches(msg, KeyPgDn):
			m.cursor += page
		case key.Matches(msg, KeyTop):
			m.cursor = 0
		case key.Matches(msg, KeyEnd):
			m.cursor = m.total - 1
		default:
			return m, nil
		}
	case tea.MouseMsg:
		switch msg.Button {
		case tea.MouseButtonWheelUp:
			m.cursor -= 3
		case tea.MouseButtonWheelDown:
			m.cursor += 3
		default:
			return m, nil
		}
	default:
		return m, nil
	}
	m.clamp()
	return m, m.Load()
}

// Load returns the command fetching rows that should be visible but are not loaded.
func (m *Model) Load() tea.Cmd {
	if m.need == nil || m.total == 0 {
		return nil
	}
	var cmds []tea.Cmd
	for i := m.offset; i < m.offset+m.bodyHeight() && i < m.total; i++ {
		if _, ok := m.rows[i]; ok {
			continue
		}
		start := i / m.window * m.window
		if m.pending[start] {
			continue
		}
		m.pending[start] = true
		end := min(start+m.window, m.total)
		cmds = append(cmds, m.need(start, end))
	}
	return tea.Batch(cmds...)
}

func (m *Model) bodyHeight() int { return max(m.height-1, 1) }

func (m *Model) clamp() {
	if m.cursor >= m.total {
		m.cursor = m.total - 1
	}
	if m.cursor < 0 {
		m.cursor = 0
	}
	h := m.bodyHeight()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+h {
		m.offset = m.cursor - h + 1
	}
	if m.offset > max(m.total-h, 0) {
		m.offset = max(m.total-h, 0)
	}
	if m.offset < 0 {
		m.offset = 0
	}
}

func (m Model) widths() []int {
	const mark = 2 // selection marker
	w := make([]int, len(m.cols))
	used, shares := mark, 0
	fitted := m.contentWidths()
	for i, c := range m.cols {
		if c.Hidden {
			continue
		}
		if c.Fit > 0 {
			c.Width = fitted[i]
		}
		w[i] = c.Width
		used += c.Width + 1
		if c.Width == 0 {
			shares += grow(c)
		}
	}
	// Content-sized columns give back room, widest first, until the flexible columns keep
	// minFlex cells each (or they are down to their titles).
	const minFlex = 12
	for used > m.width-shares*minFlex {
		widest := -1
		for i, c := range m.cols {
			if c.Fit > 0 && !c.Hidden && w[i] > ansi.StringWidth(c.Title) && (widest < 0 || w[i] > w[widest]) {
				widest = i
			}
		}
		if widest < 0 {
			break
		}
		w[widest]--
		used--
	}
	if shares > 0 {
		left := max(m.width-used, shares*4)
		given, last := 0, -1
		for i, c := range m.cols {
			if c.Width == 0 && c.Fit == 0 && !c.Hidden {
				w[i] = left * grow(c) / shares
				given += w[i]
				last = i
			}
		}
		w[last] += left - given // rounding goes to the last flexible column
	}
	return w
}

// contentWidths measures the Fit columns over the loaded rows, in cells.
func (m Model) contentWidths() []int {
	out := make([]int, len(m.cols))
	any := false
	for i, c := range m.cols {
		if c.Fit > 0 && !c.Hidden {
			out[i] = min(ansi.StringWidth(c.Title), c.Fit)
			any = true
		}
	}
	if !any {
		return out
	}
	for _, row := range m.rows {
		for i, c := range m.cols {
			if c.Fit > 0 && i < len(row) && out[i] < c.Fit {
				out[i] = min(max(out[i], ansi.StringWidth(termsafe.String(row[i]))), c.Fit)
			}
		}
	}
	return out
}

func grow(c Column) int {
	if c.Grow <= 0 {
		return 1
	}
	return c.Grow
}

// View draws the header and the visible rows, exactly height lines.
func (m Model) View() string {
	w := m.widths()
	var b strings.Builder
	cells := make([]string, 0, len(m.cols))
	for i, c := range m.cols {
		if !c.Hidden {
			cells = append(cells, fit(c.Title, w[i]))
		}
	}
	b.WriteString(theme.Column.Render(ansi.Truncate("  "+strings.Join(cells, " "), m.width, "")))
	lines := 1
	if m.total == 0 {
		b.WriteString("\n" + theme.Dim.Render(fit(m.Empty, m.width)))
		lines++
	}
	for i := m.offset; i < m.total && lines < m.height; i++ {
		b.WriteByte('\n')
		lines++
		row, ok := m.rows[i]
		if !ok {
			b.WriteString(theme.Dim.Render(fit("  loading…", m.width)))
			continue
		}
		marked := m.isMarked(i)
		marker := "  "
		if marked {
			marker = "● "
		}
		plain := i == m.cursor || marked || m.styler == nil
		cells = cells[:0]
		for j, c := range m.cols {
			if c.Hidden {
				continue
			}
			v := ""
			if j < len(row) {
				v = row[j]
			}
			cell := fit(v, w[j])
			if !plain {
				if st, ok := m.styler(j, v); ok {
					cell = st.Render(cell)
				}
			}
			cells = append(cells, cell)
		}
		line := ansi.Truncate(marker+strings.Join(cells, " "), m.width, "")
		switch {
		case i == m.cursor:
			line = theme.Cursor.Render(line)
		case marked:
			line = theme.Selected.Render(line)
		}
		b.WriteString(line)
	}
	for ; lines < m.height; lines++ {
		b.WriteByte('\n')
	}
	return b.String()
}

// fit sanitises s and pads or truncates it to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	s = termsafe.String(s)
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", max(w-ansi.StringWidth(s), 0))
}

// Fit exposes the cell fitting for views that draw their own lines.
func Fit(s string, w int) string { return fit(s, w) }

// Ago renders t relative to now for a cell ("45s", "12m", "3h", "4d"; "-" for nil; the time
// itself when it lies in the future, so clock skew shows instead of hiding).
func Ago(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := now.Sub(*t)
	switch {
	case d < 0:
		return t.UTC().Format("01-02 15:04")
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// SetTitle renames column i (a sort arrow on the sorted column).
func (m *Model) SetTitle(i int, title string) {
	if i >= 0 && i < len(m.cols) {
		m.cols[i].Title = title
	}
}

// Sort is a list's order as k9s users choose it: shift+letter sorts by a column, the same key
// again reverses it. Views sort their own data (numbers as numbers, times as times) and draw
// the arrow with Mark.
type Sort struct {
	// Keys maps a key ("N") to the column it sorts.
	Keys map[string]int
	// Desc reports whether column i starts descending (counts and times: the most and the
	// newest first).
	Desc func(col int) bool
	// Col is the sorted column, -1 for the view's natural order.
	Col int
	// Reverse is true when the order is the opposite of Desc(Col).
	Reverse bool
}

// Press applies a key; it reports whether the key was a sort key.
func (s *Sort) Press(k string) bool {
	col, ok := s.Keys[k]
	if !ok {
		return false
	}
	if s.Col == col {
		s.Reverse = !s.Reverse
	} else {
		s.Col, s.Reverse = col, false
	}
	return true
}

// Descending reports whether the sorted column runs from the largest down.
func (s Sort) Descending() bool {
	d := s.Desc != nil && s.Desc(s.Col)
	return d != s.Reverse
}

// Mark returns titles with an arrow on the sorted column.
func (s Sort) Mark(titles []string) []string {
	out := append([]string(nil), titles...)
	if s.Col >= 0 && s.Col < len(out) {
		if s.Descending() {
			out[s.Col] += "↓"
		} else {
			out[s.Col] += "↑"
		}
	}
	return out
}

// Help lists the sort keys for the help bar ("T/R/N sort").
func (s Sort) Help() key.Binding {
	var ks []string
	for k := range s.Keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return key.NewBinding(key.WithKeys(ks...), key.WithHelp(strings.Join(ks, "/"), "sort"))
}

// CursorTo moves the highlight to the row with key k, if one is loaded (the same item after a
// re-sort).
func (m *Model) CursorTo(k string) {
	for i, key := range m.keys {
		if key == k {
			m.SetCursor(i)
			return
		}
	}
}
