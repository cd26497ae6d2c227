package history_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/tui/app"
	"github.com/come2us/opsctl/tui/history"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(m.Run())
}

const ordersDLT = "orders-failed.DLT"

// clock is a settable clock, shared by the engine and the view.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// world is a cluster with two replay runs of orders-failed.DLT: the first (10 minutes after
// the fixtures' base time, with --group product-service) replayed 6 dead letters, two of
// which (ORDER_ALREADY_FAILED) failed again and came back, and product-service has read 4 of
// the 6; the second (20 minutes after) replayed the two that came back, and nothing has read
// them yet. The clock then stands at 30 minutes after.
type world struct {
	c           *kfake.Cluster
	e           *replay.Engine
	clock       *clock
	first, last string // run ids
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := replaytest.NewCluster(t)
	var recs []*kgo.Record
	for i := 1; i <= 6; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i <= 2 {
			code = "ORDER_ALREADY_FAILED"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), code, 1, replaytest.Base.Add(time.Duration(i)*time.Second)))
	}
	replaytest.Produce(t, c, recs...)
	clk := &clock{t: replaytest.Base.Add(10 * time.Minute)}
	e, err := replay.New(replay.Config{NewClient: replaytest.NewClientFunc(c), Actor: "oncall@laptop", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	w := &world{c: c, e: e, clock: clk}
	first, err := e.Replay(context.Background(), replay.Request{Topic: ordersDLT, Group: event.GroupProductService, Reason: "INC-42: stock lock fixed"})
	if err != nil || first.Replayed != 6 {
		t.Fatalf("first replay: %v %+v", err, first)
	}
	w.first = first.RunID
	consumeReplays(t, c)
	clk.Set(replaytest.Base.Add(20 * time.Minute))
	last, err := e.Replay(context.Background(), replay.Request{Topic: ordersDLT, Reason: "the two that came back"})
	if err != nil || last.Replayed != 2 {
		t.Fatalf("second replay: %v %+v", err, last)
	}
	w.last = last.RunID
	clk.Set(replaytest.Base.Add(30 * time.Minute))
	return w
}

// consumeReplays plays product-service on the replayed records: those of an order that has
// already failed fail again and go back to the DLT with the replay's headers; the group
// commits what it read on partitions 0 and 1, nothing on partition 2.
func consumeReplays(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	var again []*kgo.Record
	commits := kadm.Offsets{}
	for _, r := range replaytest.ReadCommitted(t, c, event.TopicOrdersFailed) {
		if strings.Contains(string(r.Value), `"errorCode":"ORDER_ALREADY_FAILED"`) {
			d := dlt.Build(r, dlt.Failure{Source: "product-service", Code: "ORDER_ALREADY_FAILED", Message: "order already failed",
				Group: event.GroupProductService, At: replaytest.Base.Add(15 * time.Minute)})
			d.Partition, d.Timestamp = r.Partition, replaytest.Base.Add(15*time.Minute)
			again = append(again, d)
		}
		if r.Partition != 2 {
			commits.AddOffset(r.Topic, r.Partition, r.Offset+1, -1)
		}
	}
	replaytest.Produce(t, c, again...)
	if err := kadm.NewClient(replaytest.Client(t, c)).CommitAllOffsets(context.Background(), event.GroupProductService, commits); err != nil {
		t.Fatal(err)
	}
}

func (w *world) options(ctx context.Context) history.Options {
	return history.Options{Ctx: ctx, Backend: w.e, Now: w.clock.Now, Tick: -1}
}

// root is the TUI with the history route, as `opsctl tui` builds it.
func root(o history.Options) app.Model {
	return app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098"},
		Routes: []app.Route{{Name: "history", Args: "[TOPIC]", Help: "replay runs", Open: func(args []string) (view.View, error) {
			if len(args) == 1 {
				return history.New(o, args[0]), nil
			}
			return history.New(o, ""), nil
		}}},
		Start: "history",
	})
}

// scrub replaces the run ids, random but for their time, with fixed ones of the same width.
func (w *world) scrub(s string) string {
	for id, as := range map[string]string{w.first: "00000000-0000-7000-8000-00000000000a", w.last: "00000000-0000-7000-8000-00000000000b"} {
		s = strings.ReplaceAll(s, id, as)
		s = strings.ReplaceAll(s, history.ShortID(id), history.ShortID(as)[:12]+as[35:])
	}
	return s
}

// row returns the screen line of the run whose short id is given.
func row(t *testing.T, screen, id string) string {
	t.Helper()
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, history.ShortID(id)) {
			return l
		}
	}
	t.Fatalf("no row for run %s on\n%s", id, screen)
	return ""
}

// TestHistory shows both runs, newest first, with who, why and what became of them: the
// first's two records came back as ORDER_ALREADY_FAILED and its --group has read 4 of 6.
func TestHistory(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, root(w.options(t.Context())), wd, ht)
		p.WaitFor("4/6 lag", "no lag")
		screen := p.Screen()
		if wd < 100 {
			tuitest.GoldenScreen(t, w.scrub(screen), wd, ht)
			return
		}
		first, last := row(t, screen, w.first), row(t, screen, w.last)
		if strings.Index(screen, history.ShortID(w.last)) > strings.Index(screen, history.ShortID(w.first)) {
			t.Errorf("the newest run is not first:\n%s", screen)
		}
		for _, want := range []string{"20m", "oncall@laptop", "6", "completed", "2 ORDER_ALREADY_FAILED", "4/6 lag"} {
			if !strings.Contains(first, want) {
				t.Errorf("first run's row lacks %q: %q", want, first)
			}
		}
		for _, want := range []string{"10m", " 0 ", "no lag"} {
			if !strings.Contains(last, want) {
				t.Errorf("last run's row lacks %q: %q", want, last)
			}
		}
		tuitest.GoldenScreen(t, w.scrub(screen), wd, ht)
	})
}

// TestHistoryDetail opens the first run: what came back by error code, with a sample, and
// product-service's progress on orders-failed.
func TestHistoryDetail(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, root(w.options(t.Context())), wd, ht)
		p.WaitFor("4/6 lag")
		p.Type("j")
		p.Key(tea.KeyEnter)
		p.WaitFor("Came back", "CONSUMER GROUP", "(--group)")
		screen := p.Screen()
		for _, want := range []string{"INC-42: stock lock fixed", "ORDER_ALREADY_FAILED", event.GroupProductService + " (--group)", "orders-failed.DLT/0/"} {
			if !strings.Contains(screen, want) {
				t.Errorf("the run's outcome lacks %q:\n%s", want, screen)
			}
		}
		tuitest.GoldenScreen(t, w.scrub(screen), wd, ht)
	})
}

// TestHistoryOneDLT: `:history TOPIC` shows that DLT's runs without the DLT column, and
// another DLT's history is empty.
func TestHistoryOneDLT(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, root(w.options(t.Context())), 120, 40)
	p.WaitFor("4/6 lag")
	p.Type(":history " + ordersDLT)
	p.Key(tea.KeyEnter)
	p.WaitFor("history › "+ordersDLT, "2 ORDER_ALREADY_FAILED")
	p.Type(":history payments-paid.DLT")
	p.Key(tea.KeyEnter)
	p.WaitFor("no replay of payments-paid.DLT in the ledger yet")
	p.Quit()
}

// TestHistoryAgesTick: the ages follow the clock without a reload, in the list and in a run.
func TestHistoryAgesTick(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	o := w.options(t.Context())
	o.Tick = 10 * time.Millisecond
	p := tuitest.Start(t, root(o), 120, 40)
	p.WaitFor("20m", "10m", "4/6 lag")
	w.clock.Set(replaytest.Base.Add(3 * time.Hour))
	p.WaitFor("2h")
	p.Type("j")
	p.Key(tea.KeyEnter)
	p.WaitFor("(2h ago)", "CONSUMER GROUP")
	w.clock.Set(replaytest.Base.Add(5 * time.Hour))
	p.WaitFor("(4h ago)")
	p.Key(tea.KeyEsc)
	p.WaitFor("4h")
	screen := p.Screen()
	if !strings.Contains(row(t, screen, w.first), "4h") || !strings.Contains(row(t, screen, w.last), "4h") {
		t.Errorf("ages did not follow the clock:\n%s", screen)
	}
}

// TestHistoryHungBroker: the broker never answers the consumer-group listing the outcomes
// need. The runs show at once with "…", then, at the deadline, the outcome cells say they are
// unknown, the status line says why, and the table still moves and opens runs.
func TestHistoryHungBroker(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	w.c.ControlKey(int16(kmsg.ListGroups), func(kmsg.Request) (kmsg.Response, error, bool) {
		w.c.KeepControl()
		w.c.SleepControl(func() { <-release })
		return nil, nil, false
	})
	o := w.options(t.Context())
	o.Timeout = 2 * time.Second
	p := tuitest.Start(t, root(o), 120, 40)
	p.WaitFor(history.ShortID(w.first), "…")
	p.WaitFor("what became of the replayed records is unknown")
	p.Type("j")
	p.Key(tea.KeyEnter)
	p.WaitFor("run "+history.ShortID(w.first), "INC-42: stock lock fixed")
	p.Key(tea.KeyEsc)
	p.WaitFor(history.ShortID(w.last))
	screen := p.Screen()
	for _, id := range []string{w.first, w.last} {
		r := row(t, screen, id)
		if n := strings.Count(" "+r+" ", " ? "); n != 2 {
			t.Errorf("the outcome cells of run %s do not say they are unknown: %q", id, r)
		}
	}
}

// TestHistoryFilter: `/` narrows the runs by their reason (or id, operator, DLT, state), not
// by a count that happens to hold the digits.
func TestHistoryFilter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := tuitest.Start(t, root(w.options(t.Context())), 120, 40)
	p.WaitFor("4/6 lag")
	p.Type("/came back")
	p.Key(tea.KeyEnter)
	p.WaitFor("the two that came back")
	screen := p.Screen()
	if strings.Contains(screen, history.ShortID(w.first)) || !strings.Contains(screen, history.ShortID(w.last)) {
		t.Errorf("the filter on the reason kept the wrong runs:\n%s", screen)
	}
}
