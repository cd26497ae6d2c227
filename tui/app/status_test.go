package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

// clock is a test clock the root's status lines expire by.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// never is an expiry timer that never fires: the tests move the clock instead.
func never(time.Duration, tea.Msg) tea.Cmd { return nil }

func drive(t *testing.T, o Options) (*tuitest.Driver, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	o.Now, o.After = c.now, never
	return tuitest.Drive(t, New(o), 80, 24), c
}

func (d *paletteDriver) palette(line string) {
	d.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(":" + line)})
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
}

type paletteDriver struct{ *tuitest.Driver }

func statusOf(screen string) string {
	lines := strings.Split(screen, "\n")
	return lines[len(lines)-1]
}

func withCanary() []Route {
	return append(routes(), Route{Name: "canary", Open: func([]string) (view.View, error) { return &listView{name: "canary"}, nil }})
}

// TestStatusBelongsToItsScreen: the error of a failed `:trace abc` is shown where it was typed
// and is gone once the canary board is open.
func TestStatusBelongsToItsScreen(t *testing.T) {
	t.Parallel()
	dr, _ := drive(t, Options{Routes: withCanary()})
	d := paletteDriver{dr}
	d.palette("trace")
	if s := statusOf(d.Screen()); !strings.Contains(s, "usage: :trace ORDER_ID") {
		t.Fatalf("status after :trace is %q", s)
	}
	d.palette("canary")
	if s := d.Screen(); !strings.Contains(s, "canary body line") || strings.Contains(s, "usage: :trace") {
		t.Fatalf("the canary board shows the trace's error:\n%s", s)
	}
}

// TestStatusExpires: a note goes when its time is up, by the injected clock.
func TestStatusExpires(t *testing.T) {
	t.Parallel()
	dr, c := drive(t, Options{Routes: routes()})
	d := paletteDriver{dr}
	d.palette("nope")
	if s := statusOf(d.Screen()); !strings.Contains(s, "unknown command :nope") {
		t.Fatalf("status %q", s)
	}
	c.t = c.t.Add(ErrorTTL - time.Second)
	if s := statusOf(d.Screen()); !strings.Contains(s, "unknown command :nope") {
		t.Fatalf("the error went early: %q", s)
	}
	c.t = c.t.Add(time.Second)
	d.Send(expireMsg{owner: d.Model.(Model).Top(), seq: d.Model.(Model).seq})
	if s := statusOf(d.Screen()); s != "" {
		t.Fatalf("the error outlived its time: %q", s)
	}
}

// TestStatusOneLine: an error spanning lines (an expression error with its caret lines) is
// shown as one sanitised line, no literal \n, no raw control character.
func TestStatusOneLine(t *testing.T) {
	t.Parallel()
	rs := append(routes(), Route{Name: "where", Open: func([]string) (view.View, error) {
		return nil, errors.New("unexpected token EOF (1:10)\n | orderId ==\r\n | .........^\x1b[2J")
	}})
	dr, _ := drive(t, Options{Routes: rs})
	d := paletteDriver{dr}
	d.palette("where")
	raw := d.Model.View()
	tuitest.CheckDrawn(t, raw, 80, 24)
	if s := statusOf(tuitest.Plain(raw)); s != `✗ unexpected token EOF (1:10) | orderId == | .........^\x1b[2J` {
		t.Fatalf("status %q", s)
	}
}

// TestStatusOfAView: a view's note shows while it is on top and goes with it.
func TestStatusOfAView(t *testing.T) {
	t.Parallel()
	dr, _ := drive(t, Options{Routes: routes()})
	d := paletteDriver{dr}
	d.palette("trace 42")
	top := d.Model.(Model).Top()
	d.Send(view.StatusMsg{Text: "secrets revealed", From: top})
	if s := statusOf(d.Screen()); s != "secrets revealed" {
		t.Fatalf("status %q", s)
	}
	d.palette("dlt")
	if s := statusOf(d.Screen()); s != "" {
		t.Fatalf("the closed view's note stayed: %q", s)
	}
}

// TestUnknownContextStays: `:ctx prod` naming a context that does not exist shows the error and
// leaves the current screen as it was.
func TestUnknownContextStays(t *testing.T) {
	t.Parallel()
	dr, _ := drive(t, Options{Routes: routes(), Contexts: []string{"sandbox"},
		SwitchContext: func(name string) (Switched, error) {
			return Switched{}, errors.New(`context "` + name + `" is not in the config`)
		}})
	d := paletteDriver{dr}
	d.palette("trace 42")
	d.palette("ctx prod")
	m := d.Model.(Model)
	if top := m.Top().(*listView); top.name != "trace 42" || len(m.stack) != 1 {
		t.Fatalf("after a failed switch the screen is %q (%d deep)", top.name, len(m.stack))
	}
	if s := statusOf(d.Screen()); !strings.Contains(s, `context "prod" is not in the config`) {
		t.Fatalf("status %q", s)
	}
}

// TestRouteCheck: a route whose Check fails leaves the screen as it was with the error; one that
// passes opens.
func TestRouteCheck(t *testing.T) {
	t.Parallel()
	rs := append(routes(), Route{Name: "topic",
		Check: func(args []string) error {
			if len(args) == 1 && args[0] == "orders-failed.DLT" {
				return nil
			}
			return errors.New("no dead-letter topic " + strings.Join(args, " "))
		},
		Open: func(args []string) (view.View, error) { return &listView{name: "topic " + args[0]}, nil }})
	dr, _ := drive(t, Options{Routes: rs})
	d := paletteDriver{dr}
	d.palette("trace 42")
	d.palette("topic nope.DLT")
	if top := d.Model.(Model).Top().(*listView); top.name != "trace 42" {
		t.Fatalf("a failed check replaced the screen with %q", top.name)
	}
	if s := statusOf(d.Screen()); !strings.Contains(s, "no dead-letter topic nope.DLT") {
		t.Fatalf("status %q", s)
	}
	d.palette("topic orders-failed.DLT")
	if top := d.Model.(Model).Top().(*listView); top.name != "topic orders-failed.DLT" {
		t.Fatalf("a passed check opened %q", top.name)
	}
}

// TestStatusLongMessageWraps: a message wider than the screen is wrapped over the bottom rows,
// taking them from the body, so its end (how long to wait, which flag to use) is read, not cut;
// the header stays on row 1, the key help stays, and the screen keeps its size.
func TestStatusLongMessageWraps(t *testing.T) {
	t.Parallel()
	const msg = "canary gate bake refused the step: 30% was committed 41s ago (a1b2c3d, alice), " +
		"and a weight bakes for 1m0s before the next step: 19s remain (try again after 03:01:19; " +
		"a rollback is never held back)"
	rs := append(routes(), Route{Name: "step", Open: func([]string) (view.View, error) { return nil, errors.New(msg) }})
	dr, _ := drive(t, Options{Routes: rs})
	d := paletteDriver{dr}
	d.palette("step")
	raw := d.Model.View()
	tuitest.CheckDrawn(t, raw, 80, 24)
	lines := strings.Split(tuitest.Plain(raw), "\n")
	if len(lines) != 24 {
		t.Fatalf("%d rows, want 24", len(lines))
	}
	var got []string
	for _, l := range lines[len(lines)-3:] {
		got = append(got, strings.TrimSpace(l))
	}
	if joined := strings.Join(got, " "); joined != "✗ "+msg {
		t.Fatalf("the bottom rows read\n%q\nwant the whole message\n%q", joined, "✗ "+msg)
	}
	if help := lines[len(lines)-4]; !strings.Contains(help, "? help") {
		t.Fatalf("the key help is gone: %q", help)
	}
	if !strings.Contains(lines[0], "ctx:") {
		t.Fatalf("row 1 is not the header: %q", lines[0])
	}

	// Longer than three rows: the third ends in "…".
	long := strings.Repeat("word ", 80)
	d.Send(view.StatusMsg{Text: long, From: d.Model.(Model).Top()})
	lines = strings.Split(d.Screen(), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); !strings.HasSuffix(last, "…") || len(lines) != 24 {
		t.Fatalf("an overlong message is not cut on its third row: %q (%d rows)", last, len(lines))
	}
}
