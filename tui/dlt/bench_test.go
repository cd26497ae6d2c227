package dlt_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/tui/dlt"
	"github.com/come2us/opsctl/tui/view"
)

// Benchmarks print figures and assert nothing about time:
//
//	go test ./tui/dlt -run TestBenchOpen -v -args -bench.open=1000000
//	go test ./tui/dlt -run '^$' -bench BenchmarkRecordsView -benchmem
//
// The whole program, keys and screens through a pseudo-terminal, is timed in cmd/opsctl:
//
//	go test ./cmd/opsctl -run TestBenchPTY -v -timeout 30m -args -bench.pty=1000000
var benchOpen = flag.Int("bench.open", 0, "open a DLT of this many records (kfake) in a child process: time to the first screen and peak memory")

const benchTopic = "bench.DLT"

// loop is the Bubble Tea loop without a terminal: it runs commands, feeds their messages to
// the view and queues what the view returns.
type loop struct {
	v     view.View
	queue []tea.Cmd
}

// run works through the queue until it is empty or stop says so.
func (l *loop) run(stop func() bool) {
	for len(l.queue) > 0 && !stop() {
		c := l.queue[0]
		l.queue = l.queue[1:]
		if c == nil {
			continue
		}
		switch m := c().(type) {
		case nil:
		case tea.BatchMsg:
			l.queue = append(l.queue, m...)
		case view.StatusMsg:
			if m.Err {
				panic(m.Text)
			}
		default:
			var next tea.Cmd
			l.v, next = l.v.Update(m)
			l.queue = append(l.queue, next)
		}
	}
}

func drive(v view.View, cmd tea.Cmd, stop func() bool) *loop {
	l := &loop{v: v, queue: []tea.Cmd{cmd}}
	l.run(stop)
	return l
}

// BenchmarkRecordsView measures View() of a records list whose filter matches 10,000 of 40,000
// dead letters, with its first window loaded.
func BenchmarkRecordsView(b *testing.B) {
	c := replaytest.NewCluster(b, kfake.SeedTopics(3, benchTopic))
	replaytest.SeedDLT(b, c, benchTopic, 40_000)
	e, err := replay.New(replay.Config{NewClient: replaytest.NewClientFunc(c)})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	o := dlt.Options{Ctx: context.Background(), Backend: e, Secrets: secret.NewFields(), Now: func() time.Time { return now }}
	v := dlt.NewRecords(o, benchTopic, dlt.Filter{Group: true, Source: "product-service", Code: "STOCK_ROW_MISSING"})
	v.SetSize(120, 38)
	drive(v, v.Init(), func() bool {
		return strings.Contains(v.View(), "10,000 matching of 40,000") && !strings.Contains(v.View(), "loading")
	})
	if !strings.Contains(v.View(), "10,000 matching") {
		b.Fatalf("index not built:\n%s", v.View())
	}
	b.ResetTimer()
	for b.Loop() {
		_ = v.View()
	}
}

// openResult is what the child reports.
type openResult struct {
	Records      int     `json:"records"`
	Filter       string  `json:"filter"`
	FirstScreen  float64 `json:"firstScreenMs"`
	IndexDone    float64 `json:"indexDoneMs,omitempty"`
	PeakHeapMiB  float64 `json:"peakHeapMiB"`
	MaxRSSMiB    float64 `json:"maxRssMiB"`
	ScrollToEnd  float64 `json:"scrollToEndMs"`
	Sort         string  `json:"sort,omitempty"`
	Sorted       float64 `json:"sortedMs,omitempty"`
	Reversed     float64 `json:"reversedMs,omitempty"`
	ScreenSample string  `json:"screen"`
}

// TestBenchOpen seeds a DLT of -bench.open records and opens it, unfiltered and then filtered
// by one error group, in a child process (so the figures are the TUI's, not kfake's): time to
// the first rendered screen with rows, time until the end of the list is on screen, and peak
// memory; then unfiltered and sorted by CODE (few values) and by KEY (a value a record): the
// time the sort scan takes once the first screen is drawn.
func TestBenchOpen(t *testing.T) {
	if addr := os.Getenv("OPSCTL_BENCH_KAFKA"); addr != "" {
		benchChild(t, addr, os.Getenv("OPSCTL_BENCH_FILTER") != "")
		return
	}
	n := *benchOpen
	if n == 0 {
		t.Skip("benchmark: pass -args -bench.open=1000000")
	}
	c := replaytest.NewCluster(t, kfake.SeedTopics(3, benchTopic))
	start := time.Now()
	replaytest.SeedDLT(t, c, benchTopic, n)
	t.Logf("seeded %d dead letters in %s", n, time.Since(start).Round(time.Millisecond))
	for _, run := range []struct {
		filter bool
		sort   string
	}{{false, ""}, {true, ""}, {false, "C"}, {false, "K"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchOpen$", "-test.v")
		cmd.Env = append(os.Environ(), "OPSCTL_BENCH_KAFKA="+c.ListenAddrs()[0], "OPSCTL_BENCH_SORT="+run.sort)
		if run.filter {
			cmd.Env = append(cmd.Env, "OPSCTL_BENCH_FILTER=1")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "RESULT "); ok {
				var r openResult
				if err := json.Unmarshal([]byte(rest), &r); err != nil {
					t.Fatal(err)
				}
				t.Logf("open %s (%d records, filter %q, sort %q): first screen %.0f ms, index done %.0f ms, sorted %.0f ms (reversed %.0f ms), scroll to end %.0f ms, peak heap %.1f MiB, max RSS %.1f MiB",
					benchTopic, r.Records, r.Filter, r.Sort, r.FirstScreen, r.IndexDone, r.Sorted, r.Reversed, r.ScrollToEnd, r.PeakHeapMiB, r.MaxRSSMiB)
				t.Logf("first screen:\n%s", r.ScreenSample)
			}
		}
	}
}

func benchChild(t *testing.T, addr string, filtered bool) {
	newClient := func(extra ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, extra...)...)
	}
	e, err := replay.New(replay.Config{NewClient: newClient})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	f := dlt.Filter{}
	if filtered {
		f = dlt.Filter{Group: true, Source: "product-service", Code: "STOCK_ROW_MISSING"}
	}
	o := dlt.Options{Ctx: context.Background(), Backend: e, Secrets: secret.NewFields(), Now: time.Now}
	start := time.Now()
	v := dlt.NewRecords(o, benchTopic, f)
	v.SetSize(120, 38)
	firstRow := func() bool {
		s := v.View()
		return strings.Contains(s, "0/") && !strings.Contains(s, "loading") && !strings.Contains(s, "reading offsets")
	}
	l := drive(v, v.Init(), firstRow)
	first := time.Since(start)
	screen := v.View()
	var indexDone time.Duration
	if filtered {
		l.run(func() bool { return strings.Contains(v.View(), "matching of") })
		indexDone = time.Since(start)
	}
	var sorted, reversed time.Duration
	if k := os.Getenv("OPSCTL_BENCH_SORT"); k != "" {
		s1 := time.Now()
		l.queue = append(l.queue, func() tea.Msg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)} })
		l.run(func() bool {
			s := v.View()
			return strings.Contains(s, "↑") && !strings.Contains(s, "sorting") && !strings.Contains(s, "loading")
		})
		sorted = time.Since(s1)
		screen = v.View()
		s2 := time.Now() // the same key again: the values are in the index
		l.queue = append(l.queue, func() tea.Msg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)} })
		l.run(func() bool {
			s := v.View()
			return strings.Contains(s, "↓") && !strings.Contains(s, "loading")
		})
		reversed = time.Since(s2)
	}
	s2 := time.Now()
	l.queue = append(l.queue, func() tea.Msg { return tea.KeyMsg{Type: tea.KeyEnd} })
	l.run(func() bool { return false })
	scroll := time.Since(s2)
	close(done)
	r := openResult{Filter: f.Describe(), FirstScreen: ms(first), IndexDone: ms(indexDone), ScrollToEnd: ms(scroll),
		Sort: os.Getenv("OPSCTL_BENCH_SORT"), Sorted: ms(sorted), Reversed: ms(reversed),
		PeakHeapMiB: float64(peak.Load()) / (1 << 20), MaxRSSMiB: float64(vmHWM()) / 1024, ScreenSample: screen}
	if spans, err := e.Spans(context.Background(), benchTopic); err == nil {
		for _, s := range spans {
			r.Records += int(s.End - s.Start)
		}
	}
	b, _ := json.Marshal(r)
	fmt.Println("RESULT " + string(b))
}

// vmHWM is this process's own peak resident set in KiB. getrusage's ru_maxrss would not do: it
// keeps the parent's peak from before the exec.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
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

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
