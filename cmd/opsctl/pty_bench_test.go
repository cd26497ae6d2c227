package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The pty benchmark drives the real opsctl, as an on-call engineer's terminal would, on a DLT of
// -bench.pty dead letters in an in-process Kafka (kfake). It prints figures and asserts nothing
// about time:
//
//	go test ./cmd/opsctl -run TestBenchPTY -v -timeout 30m -args -bench.pty=1000000
//
// Figures: time from start to the first screen showing the DLT's row, the latency of a few keys
// (each from writing the key to the terminal to the screen showing what it leads to), and the
// child's peak resident set (VmHWM). Bubble Tea draws at most 60 frames a second, so a key's
// latency includes up to one frame (16.7 ms) of waiting for the next one. With
// OPSCTL_BENCH_SCREEN=1 in the environment it also logs what each key brought on screen.
var benchPTY = flag.Int("bench.pty", 0, "run opsctl in a pseudo-terminal on a DLT of this many records (kfake) and print its latencies and peak memory")

const (
	ptyTopic = "bench.DLT"
	ptyCols  = 120
	ptyRows  = 35
	// ptyWait bounds the wait for one screen, so a screen that never comes fails the run
	// rather than hanging it.
	ptyWait = 2 * time.Minute
)

// TestMain lets the test binary act as opsctl in a child process (the helper-process pattern of
// os/exec's own tests), so the benchmark runs the same code main runs, in a terminal of its own.
func TestMain(m *testing.M) {
	if os.Getenv("OPSCTL_TEST_MAIN") == "1" {
		os.Args = append([]string{"opsctl"}, strings.Fields(os.Getenv("OPSCTL_TEST_ARGS"))...)
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// TestBenchPTY seeds a DLT of -bench.pty records, starts `opsctl tui dlt` on it in a 120x35
// pseudo-terminal and times the first screen and a few keys.
func TestBenchPTY(t *testing.T) {
	n := *benchPTY
	if n == 0 {
		t.Skip("benchmark: pass -args -bench.pty=1000000")
	}
	c := replaytest.NewCluster(t, kfake.SeedTopics(3, ptyTopic))
	start := time.Now()
	replaytest.SeedDLT(t, c, ptyTopic, n)
	t.Logf("seeded %d dead letters in %s", n, time.Since(start).Round(time.Millisecond))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	doc := fmt.Sprintf("current-context: bench\ncontexts:\n  bench:\n    kafka:\n      brokers: [%q]\n", c.ListenAddrs()[0])
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OPSCTL_TEST_MAIN=1", "OPSCTL_TEST_ARGS=tui dlt",
		"OPSCTL_CONFIG="+cfg, "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir, "XDG_STATE_HOME="+dir,
		"TERM=xterm-256color", "COLORTERM=truecolor")
	start = time.Now()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: ptyCols, Rows: ptyRows})
	if err != nil {
		t.Fatal(err)
	}
	s := newScreen(tty)
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = tty.Close()
	}()

	s.mark()
	// The DLT's row: its counts from the offsets at first (an outline), counted next.
	first := s.await(t, "first screen", start, has(ptyTopic))
	// The first screen may be the outline (counts from the offsets); the counted list follows.
	// (the seed's records are all of the last hour: the counted list's sparkline has bars)
	counted := s.await(t, "topics counted", start, has(ptyTopic, "█"))

	var figs []string
	// key writes keys and returns the time until the screen shows ok, and what it shows.
	key := func(what, keys string, ok func(string) bool) (time.Time, string) {
		t.Helper()
		s.mark()
		at := time.Now()
		if _, err := tty.Write([]byte(keys)); err != nil {
			t.Fatal(err)
		}
		d := s.await(t, what, at, ok)
		figs = append(figs, fmt.Sprintf("%-24s %s", what, d))
		return at, s.text()
	}
	// then also times, from the same key, a later screen (a scan that ends, say).
	then := func(what string, at time.Time, ok func(string) bool) {
		t.Helper()
		figs = append(figs, fmt.Sprintf("%-24s %s", what, s.await(t, what, at, ok)))
	}
	at, _ := key("enter: groups view", "\r", has("(all records)", "COUNT"))
	then("  groups counted", at, has("STOCK_ROW_MISSING", "COUPON_NOT_FOUND", "PG_TIMEOUT", "DB_LOCK_TIMEOUT"))
	key("esc: topics", "\x1b", has(ptyTopic, "LAST HOUR"))
	_, out := key("A: all records", "A", has("all records", group(n)+" records", "product-service"))
	rows := offsets(out)
	if len(rows) < 11 {
		t.Fatalf("the records view shows %d rows; want 11 or more:\n%s", len(rows), out)
	}
	for i := range 10 {
		// The cursor moves to the next row: the renderer redraws that line.
		key(fmt.Sprintf("j #%d", i+1), "j", has(rows[i+1]+" "))
	}
	key("G: end", "G", has("/0 ")) // the oldest records, offset 0 of a partition
	at, _ = key("/STOCK typed", "/STOCK", has("/STOCK"))
	then("  first matches", at, func(out string) bool {
		_, after, ok := strings.Cut(out, "/STOCK")
		return ok && strings.Contains(after, "STOCK_ROW_MISSING")
	})
	key("esc: filter cleared", "\x1b", has(group(n)+" records"))
	key("esc: topics", "\x1b", has(ptyTopic, "LAST HOUR"))

	rss := vmHWM(cmd.Process.Pid)
	t.Logf("%d records: first screen %s, topics counted %s, peak RSS %.1f MiB", n, first, counted, float64(rss)/1024)
	for _, f := range figs {
		t.Logf("  %s", f)
	}
	if os.Getenv("OPSCTL_BENCH_SCREEN") != "" {
		t.Logf("last output:\n%s", s.text())
	}
	_, _ = tty.Write([]byte("q"))
}

// screen collects what the program writes to its terminal and lets the test wait for a text to
// appear in what came after a mark, stripped of escape sequences. It answers the two status
// reports a terminal answers at once, as xterm does: the background colour (OSC 11) and the
// cursor position (DSR). Unanswered, the program would wait 5 s for them before its first
// screen (termenv's timeout), which no terminal makes an engineer wait.
type screen struct {
	mu       sync.Mutex
	cond     *sync.Cond
	raw      bytes.Buffer
	from     int // offset of the mark in raw
	answered int // offset in raw up to which status reports were answered
	done     bool
	rdErr    error
}

// The status reports the program may ask, and the answers of a terminal with a black
// background and its cursor top left.
var statusReports = [][2]string{
	{"\x1b]11;?", "\x1b]11;rgb:0000/0000/0000\x07"},
	{"\x1b[6n", "\x1b[1;1R"},
}

func newScreen(tty io.ReadWriter) *screen {
	s := &screen{}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := tty.Read(buf)
			s.mu.Lock()
			s.raw.Write(buf[:n])
			answers := s.reports()
			if err != nil {
				s.done, s.rdErr = true, err
			}
			s.cond.Broadcast()
			s.mu.Unlock()
			if len(answers) > 0 {
				_, _ = tty.Write(answers)
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// reports returns the answers to the status reports written since the last call, in order.
func (s *screen) reports() []byte {
	var out []byte
	for {
		rest := s.raw.Bytes()[s.answered:]
		at, which := -1, 0
		for i, r := range statusReports {
			if j := bytes.Index(rest, []byte(r[0])); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			// keep a tail that may be the start of a report split across reads
			s.answered = max(s.answered, s.raw.Len()-len(statusReports[0][0])+1)
			return out
		}
		out = append(out, statusReports[which][1]...)
		s.answered += at + len(statusReports[which][0])
	}
}

// mark starts a new wait: await looks only at output written after it.
func (s *screen) mark() {
	s.mu.Lock()
	s.from = s.raw.Len()
	s.mu.Unlock()
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.Strip(string(s.raw.Bytes()[s.from:]))
}

// has reports whether the output holds every one of want.
func has(want ...string) func(string) bool {
	return func(out string) bool {
		for _, w := range want {
			if !strings.Contains(out, w) {
				return false
			}
		}
		return true
	}
}

// await blocks until ok holds for the output since the mark, and returns the time since start.
// It fails the test when the program ends first or ok does not hold within ptyWait.
func (s *screen) await(t *testing.T, what string, start time.Time, ok func(string) bool) time.Duration {
	t.Helper()
	timer := time.AfterFunc(ptyWait, func() {
		s.mu.Lock()
		s.done, s.rdErr = true, errors.New("timed out")
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		out := ansi.Strip(string(s.raw.Bytes()[s.from:]))
		if ok(out) {
			if os.Getenv("OPSCTL_BENCH_SCREEN") != "" {
				t.Logf("%s:\n%s", what, out)
			}
			return time.Since(start).Round(100 * time.Microsecond)
		}
		if s.done {
			t.Fatalf("%s: %v before the screen showed it; output since the key:\n%s", what, s.rdErr, out)
		}
		s.cond.Wait()
	}
}

// offsets returns the P/OFFSET column of the records list in out, top to bottom.
func offsets(out string) []string {
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.Contains(l, "product-service") {
			rows = append(rows, f[0])
		}
	}
	return rows
}

// vmHWM is the peak resident set of process pid in KiB, from /proc (0 when unreadable).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// group writes n with thousands separators, as the views do.
func group(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
