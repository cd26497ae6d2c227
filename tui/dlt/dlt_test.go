package dlt_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	pdlt "github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/pkg/secret"
	"github.com/come2us/opsctl/tui/app"
	"github.com/come2us/opsctl/tui/dlt"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

// now is the clock of every test: half an hour after the fixtures' base time.
var now = replaytest.Base.Add(30 * time.Minute)

const ordersDLT = "orders-failed.DLT"

type world struct {
	c *kfake.Cluster
	e *replay.Engine
}

// newWorld starts kfake with the SAGA topics and 30 dead letters on orders-failed.DLT: order ids
// 1..30 over the three partitions, DB_LOCK_TIMEOUT for odd ids and STOCK_ROW_MISSING for even.
func newWorld(t *testing.T) *world {
	t.Helper()
	c := replaytest.NewCluster(t)
	var recs []*kgo.Record
	for i := 1; i <= 30; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i%2 == 0 {
			code = "STOCK_ROW_MISSING"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), code, 1+i%4, replaytest.Base.Add(time.Duration(i)*time.Second)))
	}
	recs = append(recs, replaytest.Spring(0, 99, replaytest.Base.Add(2*time.Minute)))
	replaytest.Produce(t, c, recs...)
	return &world{c: c, e: newEngine(t, c)}
}

func newEngine(t *testing.T, c *kfake.Cluster) *replay.Engine {
	t.Helper()
	e, err := replay.New(replay.Config{NewClient: replaytest.NewClientFunc(c), Actor: "oncall@laptop", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func (w *world) options(ctx context.Context, readonly bool) dlt.Options {
	return dlt.Options{Ctx: ctx, Backend: w.e, Readonly: readonly, Secrets: secret.NewFields(), Now: func() time.Time { return now }, Refresh: -1}
}

// root is the TUI with the dlt route, as `opsctl tui` builds it.
func (w *world) root(ctx context.Context, readonly bool) app.Model {
	return app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098", ArgoCD: "argocd.example:443", Kube: "prod-eks", Readonly: readonly},
		Routes: []app.Route{{Name: "dlt", Help: "dead letters", Open: func([]string) (view.View, error) {
			return dlt.New(w.options(ctx, readonly)), nil
		}}},
		Start: "dlt",
	})
}

// openRecords goes topics → orders-failed.DLT → its STOCK_ROW_MISSING group.
func openRecords(t *testing.T, p *tuitest.Program) {
	t.Helper()
	p.WaitFor(ordersDLT, "30")
	p.Type("j") // topics sort by name: connect-orders-dlt, then orders-failed.DLT
	p.Key(tea.KeyEnter)
	p.WaitFor("STOCK_ROW_MISSING", "DB_LOCK_TIMEOUT")
	p.Type("jj") // (all records), DB_LOCK_TIMEOUT 15, STOCK_ROW_MISSING 15
	p.Key(tea.KeyEnter)
	p.WaitFor("15 matching of 30 scanned", "03:00:06") // the index is built and the first window drawn
}

func TestDLTTopics(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		withOriginLag(t, w.c)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor(ordersDLT, "payments-failed-dlt", "30", originLag)
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

func TestDLTGroups(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor(ordersDLT, "30")
		p.Type("j")
		p.Key(tea.KeyEnter)
		p.WaitFor("STOCK_ROW_MISSING", "DB_LOCK_TIMEOUT")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

func TestDLTRecords(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		openRecords(t, p)
		p.Type("  ")
		p.WaitFor("2 selected")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

// TestDLTDetail opens one record: its payment key is masked until v.
func TestDLTDetail(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		openRecords(t, p)
		p.Key(tea.KeyEnter)
		p.WaitFor("VALUE (json", "secrets masked")
		screen := p.Screen()
		if strings.Contains(screen, "ABCDEFGH") {
			t.Errorf("payment key shown unmasked:\n%s", screen)
		}
		tuitest.GoldenScreen(t, screen, wd, ht)
	})
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	openRecords(t, p)
	p.Key(tea.KeyEnter)
	p.WaitFor("VALUE (json")
	p.Type("v")
	p.WaitFor("ABCDEFGH")
	p.Quit()
}

// TestDLTHostile opens dead letters built to attack a terminal: nothing reaches the screen raw,
// and the 1 MiB value is cut with a marker.
func TestDLTHostile(t *testing.T) {
	t.Parallel()
	c := replaytest.NewCluster(t)
	replaytest.Produce(t, c, replaytest.Hostile(0, replaytest.Base)...)
	w := &world{c: c, e: newEngine(t, c)}
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor(ordersDLT)
	p.Type("jA") // orders-failed.DLT, all records, no grouping scan
	p.WaitFor("5 records")
	raw := p.Quit().View()
	if strings.ContainsAny(raw, "\x1b\x07\u009b\u202e") {
		t.Fatalf("raw control characters on the records screen: %q", raw)
	}
	for i, wantIn := range []string{`\x1b`, "truncated"} {
		p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
		p.WaitFor(ordersDLT)
		p.Type("jA")
		p.WaitFor("5 records")
		if i == 0 {
			p.Type("G") // newest first: the escape-laden record at offset 0 is last
		}
		p.Key(tea.KeyEnter)
		p.WaitFor("VALUE (")
		raw := p.Quit().View()
		if strings.ContainsAny(raw, "\x1b\x07\u009b\u202e") {
			t.Fatalf("raw control characters in the record view: %q", raw)
		}
		if !strings.Contains(raw, wantIn) {
			t.Errorf("record view lacks %q:\n%s", wantIn, raw)
		}
	}
}

// replayedFrom counts, per x-opsctl-replayed-from value, the committed records on topic.
func replayedFrom(t *testing.T, c *kfake.Cluster, topic string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range replaytest.ReadCommitted(t, c, topic) {
		for _, h := range r.Headers {
			if h.Key == pdlt.HeaderReplayedFrom {
				out[string(h.Value)]++
			}
		}
	}
	return out
}

// ledgerReplays counts the replay entries of the ledger.
func ledgerReplays(t *testing.T, e *replay.Engine) int {
	t.Helper()
	rs, err := e.Replayed(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return rs.Count(ordersDLT)
}

func TestDLTReplayModal(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		openRecords(t, p)
		p.Type("   ")
		p.WaitFor("3 selected")
		p.Type("r")
		p.WaitFor("Replay 3 dead letters?", "Reason")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

// TestDLTReplay is the key-driven flow: select 3 dead letters, r, a reason, enter. The ledger
// then holds exactly 3 replays and orders-failed received exactly those 3 records.
func TestDLTReplay(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		openRecords(t, p)
		p.Type("   ")
		p.WaitFor("3 selected")
		p.Type("r")
		p.WaitFor("Replay 3 dead letters?")
		p.Key(tea.KeyTab)
		p.Type("stock table fixed")
		p.Key(tea.KeyEnter)
		p.WaitFor("replayed 3 · already replayed 0 · refused 0 · failed 0", "✓1")
		tuitest.GoldenScreen(t, scrubRunID(p.Screen()), wd, ht)

		if n := ledgerReplays(t, w.e); n != 3 {
			t.Fatalf("ledger holds %d replays, want 3", n)
		}
		got := replayedFrom(t, w.c, event.TopicOrdersFailed)
		// The first three STOCK_ROW_MISSING dead letters in list order, newest first: order ids
		// 30, 28 and 26, dead-lettered at 03:00:30, :28 and :26 on partitions 0, 1 and 2.
		want := map[string]int{ordersDLT + "/0/9": 1, ordersDLT + "/1/9": 1, ordersDLT + "/2/8": 1}
		if len(got) != len(want) {
			t.Fatalf("orders-failed received %v, want %v", got, want)
		}
		for k, n := range want {
			if got[k] != n {
				t.Fatalf("orders-failed received %v, want %v", got, want)
			}
		}
	})
}

// TestDLTReplayAllMatching: a selects everything the filter matches; the replay takes exactly
// those records.
func TestDLTReplayAllMatching(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	openRecords(t, p)
	p.Type("/")
	p.Type("00000000-0000-4000-8000") // no key or error field contains it: nothing matches
	p.Key(tea.KeyEnter)
	p.WaitFor("0 matching of 30 scanned")
	p.Type("/")
	for range 30 {
		p.Key(tea.KeyBackspace)
	}
	p.Type("1")
	p.Key(tea.KeyEnter) // keys 10, 12, 14, 16, 18 in this group
	p.WaitFor("5 matching of 30 scanned")
	p.Type("a")
	p.WaitFor("5 selected (all matching)")
	p.Type("r")
	p.WaitFor("Replay 5 dead letters?")
	p.Key(tea.KeyTab)
	p.Type("replay the 1x orders")
	p.Key(tea.KeyEnter)
	p.WaitFor("replayed 5 ·")
	p.Quit()
	got := replayedFrom(t, w.c, event.TopicOrdersFailed)
	if len(got) != 5 {
		t.Fatalf("orders-failed received %v, want the 5 matching", got)
	}
	for _, r := range replaytest.ReadCommitted(t, w.c, ordersDLT) {
		d := pdlt.Decode(r)
		k := ordersDLT + "/" + strconv.FormatInt(int64(d.Partition), 10) + "/" + strconv.FormatInt(d.Offset, 10)
		want := d.ErrorCode == "STOCK_ROW_MISSING" && strings.Contains(string(d.Key), "1")
		if (got[k] == 1) != want {
			t.Errorf("%s (key %s, %s): replayed %d", k, d.Key, d.ErrorCode, got[k])
		}
	}
}

func TestDLTDryRun(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), true), wd, ht)
		openRecords(t, p)
		p.Type("  ")
		p.Type("R")
		p.WaitFor("Dry run: replay 2 selected dead letters", "nothing was replayed")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
		if n := ledgerReplays(t, w.e); n != 0 {
			t.Fatalf("a dry run wrote %d ledger entries", n)
		}
	})
}

// TestDLTReadonly: r is neither offered nor honoured; nothing reaches the ledger or the target.
func TestDLTReadonly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), true), 120, 40)
	openRecords(t, p)
	p.Type("   r")
	p.WaitFor("read-only: replay is disabled")
	p.Type("reason")
	p.Key(tea.KeyEnter)
	screen := p.Screen()
	if strings.Contains(screen, "Replay 3 dead letters?") || strings.Contains(screen, "r replay") {
		t.Errorf("readonly screen offers a replay:\n%s", screen)
	}
	if n := ledgerReplays(t, w.e); n != 0 {
		t.Fatalf("readonly: %d ledger entries", n)
	}
	if got := replayedFrom(t, w.c, event.TopicOrdersFailed); len(got) != 0 {
		t.Fatalf("readonly: orders-failed received %v", got)
	}
}

// TestDLTNoLeak: after quitting, no scan, window read or listener is left running.
func TestDLTNoLeak(t *testing.T) {
	w := newWorld(t)
	time.Sleep(100 * time.Millisecond) // the fixture producer's connections wind down
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	p := tuitest.Start(t, w.root(ctx, false), 80, 24)
	openRecords(t, p)
	p.Type(" r")
	p.WaitFor("Replay 1 dead letter?")
	p.Quit()
	cancel()
	w.e.Close()
	goleak.VerifyNone(t, ignore, goleak.IgnoreTopFunction("github.com/charmbracelet/x/exp/teatest.NewTestModel.func2"))
}

func scrubRunID(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if j := strings.Index(l, "run "); j >= 0 && strings.Contains(l, " completed") {
			k := strings.Index(l[j:], " completed")
			lines[i] = l[:j] + "run <id>" + strings.Repeat(" ", max(k-len("run <id>"), 0)) + l[j+k:]
		}
	}
	return strings.Join(lines, "\n")
}

// TestDLTSort: shift+letter sorts the topics and the error groups by a column, as in k9s; the
// same key again reverses the order, and the sorted column carries an arrow.
func TestDLTSort(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor(ordersDLT, "30")
	p.Type("R") // records, most first
	p.WaitFor("RECORDS↓")
	p.Type("R") // records, fewest first
	p.WaitFor("RECORDS↑")
	screen := p.Screen()
	if strings.Index(screen, ordersDLT) < strings.Index(screen, "payments-failed-dlt") {
		t.Errorf("fewest first, orders-failed.DLT (30 records) comes before payments-failed-dlt (1):\n%s", screen)
	}

	p = tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor(ordersDLT, "30")
	p.Type("R") // orders-failed.DLT on top
	p.WaitFor("RECORDS↓")
	p.Key(tea.KeyHome) // the cursor stayed on its topic; the top row is now the largest
	p.Key(tea.KeyEnter)
	p.WaitFor("STOCK_ROW_MISSING", "DB_LOCK_TIMEOUT")
	p.Type("CC") // code, Z to A
	p.WaitFor("CODE↓")
	screen = p.Screen()
	if !strings.Contains(screen, "orders-failed.DLT") || strings.Index(screen, "STOCK_ROW_MISSING") > strings.Index(screen, "DB_LOCK_TIMEOUT") {
		t.Errorf("codes Z to A:\n%s", screen)
	}
}

// steppedStats is the engine with a grouping scan the test moves along: it hands the view a
// snapshot of the first records' groups, then waits for the test before it finishes.
type steppedStats struct {
	*replay.Engine
	release chan struct{}
}

func (s steppedStats) StatsProgress(ctx context.Context, topic string, sel *replay.Selection, progress func(*replay.Stats)) (*replay.Stats, error) {
	progress(&replay.Stats{Topic: topic, ScanSummary: replay.ScanSummary{Selected: 12},
		Groups: []replay.Group{{ErrorSource: "order-service", ErrorCode: "DB_LOCK_TIMEOUT", Count: 7}, {ErrorSource: "order-service", ErrorCode: "STOCK_ROW_MISSING", Count: 5}}})
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Engine.StatsProgress(ctx, topic, sel, nil)
}

// TestDLTGroupsStream: the groups of a large DLT show as the scan counts them, with how far it
// is, instead of a blank screen until the end; the final counts replace them.
func TestDLTGroupsStream(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	st := steppedStats{Engine: w.e, release: make(chan struct{})}
	o := w.options(t.Context(), false)
	o.Backend = st
	root := app.New(app.Options{Header: app.Header{Context: "prod"}, Start: "dlt",
		Routes: []app.Route{{Name: "dlt", Open: func([]string) (view.View, error) { return dlt.New(o), nil }}}})
	p := tuitest.Start(t, root, 120, 40)
	p.WaitFor(ordersDLT, "30")
	p.Type("j")
	p.Key(tea.KeyEnter)
	p.WaitFor("12 of 30 records read", "DB_LOCK_TIMEOUT", "grouping orders-failed.DLT: 12 of 30 records so far")
	close(st.release)
	p.WaitFor("STOCK_ROW_MISSING", "15")
	if s := p.Screen(); strings.Contains(s, "grouping") || !regexp.MustCompile(`DB_LOCK_TIMEOUT\s+15`).MatchString(s) {
		t.Fatalf("the final groups did not replace the snapshot:\n%s", s)
	}
}

// TestDLTRecordSort: shift+K/S/C/M sort the records by KEY, SOURCE, CODE and MESSAGE, in the
// unfiltered list (after a sort scan, the list keeping its order meanwhile) and in a group's
// list; the same key again reverses the order, at once.
func TestDLTRecordSort(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	d := tuitest.Drive(t, w.root(t.Context(), false), 120, 40)
	typ := func(s string) {
		t.Helper()
		for _, r := range s {
			d.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		}
	}
	typ("j")
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
	d.Send(tea.KeyMsg{Type: tea.KeyEnter}) // (all records)
	if s := d.Screen(); !strings.Contains(s, "30 records") {
		t.Fatalf("all records:\n%s", s)
	}
	typ("C") // code, A to Z: a scan reads the codes
	screen := d.Screen()
	if !strings.Contains(screen, "CODE↑") || strings.Contains(screen, "sorting") {
		t.Errorf("sorted by code once the scan has ended:\n%s", screen)
	}
	if i, j := strings.LastIndex(screen, "DB_LOCK_TIMEOUT"), strings.Index(screen, "STOCK_ROW_MISSING"); i < 0 || j < 0 || i > j {
		t.Errorf("codes A to Z, DB_LOCK_TIMEOUT before STOCK_ROW_MISSING:\n%s", screen)
	}
	tuitest.GoldenScreen(t, screen, 120, 40)
	typ("C") // Z to A
	screen = d.Screen()
	if i, j := strings.Index(screen, "DB_LOCK_TIMEOUT"), strings.LastIndex(screen, "STOCK_ROW_MISSING"); !strings.Contains(screen, "CODE↓") || i < 0 || j < 0 || j > i {
		t.Errorf("codes Z to A, STOCK_ROW_MISSING before DB_LOCK_TIMEOUT:\n%s", screen)
	}
	typ("K") // keys as strings, A to Z: "1", "10", "11"…
	screen = d.Screen()
	if !strings.Contains(screen, "KEY↑") || !regexp.MustCompile(`(?m)^.*\b1 .*\n.*\b10 .*\n.*\b11 `).MatchString(screen) {
		t.Errorf("keys A to Z:\n%s", screen)
	}
	typ("T") // back to newest first, from the index at hand
	screen = d.Screen()
	if !strings.Contains(screen, "TIME (UTC)↓") || !strings.Contains(strings.Split(screen, "\n")[3], "03:00:30") {
		t.Errorf("newest first:\n%s", screen)
	}

	// A group's list: its scan holds the sorted column's values from the start.
	d.Send(tea.KeyMsg{Type: tea.KeyEsc})
	typ("jj") // (all records), DB_LOCK_TIMEOUT, STOCK_ROW_MISSING
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
	typ("MM") // message, Z to A: one message in the group, so partition/offset from the last
	screen = d.Screen()
	if !strings.Contains(screen, "MESSAGE↓") || !strings.Contains(screen, "15 matching of 30 scanned") || !strings.Contains(strings.Split(screen, "\n")[3], "2/8") {
		t.Errorf("group sorted by message, Z to A:\n%s", screen)
	}

	// A new filter's scan reads the sorted column as it goes: keys 10, 12, 14, 16, 18 in this
	// group, A to Z (partition and offset order would be 12, 18, 10, 16, 14).
	typ("K/1")
	d.Send(tea.KeyMsg{Type: tea.KeyEnter})
	screen = d.Screen()
	if !strings.Contains(screen, "KEY↑") || !strings.Contains(screen, "5 matching of 30 scanned") ||
		!regexp.MustCompile(`(?m)^.*\b10 .*\n.*\b12 .*\n.*\b14 .*\n.*\b16 .*\n.*\b18 `).MatchString(screen) {
		t.Errorf("filtered by 1, keys A to Z:\n%s", screen)
	}
}

// gatedIndex holds every Index call until gate is closed: a scan that is still running.
type gatedIndex struct {
	*replay.Engine
	gate chan struct{}
}

func (g gatedIndex) Index(ctx context.Context, topic string, sel *replay.Selection, keep func(*pdlt.Record) bool,
	progress func(replay.IndexProgress), fn func(replay.Coord) error) (map[int32]int64, replay.ScanSummary, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, replay.ScanSummary{}, ctx.Err()
	}
	return g.Engine.Index(ctx, topic, sel, keep, progress, fn)
}

// TestDLTRecordSortScanning: while the sort scan of an unfiltered list runs, the list keeps its
// order and rows, and the info line says it is sorting.
func TestDLTRecordSortScanning(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	o := w.options(t.Context(), false)
	o.Backend = gatedIndex{Engine: w.e, gate: make(chan struct{})}
	root := app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098", ArgoCD: "argocd.example:443", Kube: "prod-eks"},
		Routes: []app.Route{{Name: "dlt", Help: "dead letters", Open: func([]string) (view.View, error) { return dlt.New(o), nil }}},
		Start:  "dlt",
	})
	sortByCode := func() *tuitest.Program {
		p := tuitest.Start(t, root, 120, 40)
		p.WaitFor(ordersDLT, "30")
		p.Type("j")
		p.Key(tea.KeyEnter)
		p.WaitFor("STOCK_ROW_MISSING", "DB_LOCK_TIMEOUT")
		p.Key(tea.KeyEnter) // (all records)
		p.WaitFor("30 records", "03:00:30")
		p.Type("C")
		p.WaitFor("CODE↑", "sorting by code… 0 scanned")
		return p
	}
	screen := sortByCode().Screen()
	lines := strings.Split(screen, "\n")
	if !strings.Contains(lines[3], "0/9") || !strings.Contains(lines[4], "0/8") || !strings.Contains(screen, "30 records  sorting by code…") {
		t.Errorf("the list keeps its order (newest first, partition by partition) while it sorts:\n%s", screen)
	}

	// Back to time while it sorts: the scan stops, and the line no longer says it is sorting.
	p := sortByCode()
	p.Type("T")
	p.WaitFor("TIME (UTC)↓")
	if screen := p.Screen(); strings.Contains(screen, "sorting") || !strings.Contains(strings.Split(screen, "\n")[3], "0/9") {
		t.Errorf("sorted by time, not sorting:\n%s", screen)
	}
}

// slowTopics is the engine with a topic count the test releases.
type slowTopics struct {
	*replay.Engine
	release chan struct{}
}

func (s slowTopics) Topics(ctx context.Context) ([]replay.TopicInfo, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Engine.Topics(ctx)
}

// TestDLTTopicsOutline: on a DLT whose records take long to count, the list shows at once from
// the offsets (an upper bound, the other columns pending) and says it is counting; the counted
// list replaces it.
func TestDLTTopicsOutline(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	st := slowTopics{Engine: w.e, release: make(chan struct{})}
	o := w.options(t.Context(), false)
	o.Backend, o.Outline = st, true
	root := app.New(app.Options{Header: app.Header{Context: "prod"}, Start: "dlt",
		Routes: []app.Route{{Name: "dlt", Open: func([]string) (view.View, error) { return dlt.New(o), nil }}}})
	p := tuitest.Start(t, root, 120, 40)
	p.WaitFor(ordersDLT, "≤30", "counting the records of each dead-letter topic")
	close(st.release)
	p.WaitFor("······█·····") // the sparkline: only the counted list has it
	if s := p.Screen(); strings.Contains(s, "≤") || strings.Contains(s, "counting") {
		t.Fatalf("the outline stayed:\n%s", s)
	}
}
