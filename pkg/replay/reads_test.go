package replay

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// TestNoGoroutineLeaks runs every engine operation, cancels one replay midway, closes the engine
// and checks nothing it started is still running: a TUI keeps an engine for hours.
func TestNoGoroutineLeaks(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 40)
	time.Sleep(100 * time.Millisecond) // let the fixture producer's connections wind down
	ignore := goleak.IgnoreCurrent()
	e, err := New(Config{NewClient: replaytest.NewClientFunc(c), BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Topics(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Stats(ctx, ordersDLT, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.List(ctx, ordersDLT, &Selection{Limit: 3}, func(*dlt.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(ctx, ordersDLT, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Plan(ctx, Request{Topic: ordersDLT}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	var n int
	_, _ = e.Replay(cctx, Request{Topic: ordersDLT, Reason: "r", OnResult: func(Result) {
		if n++; n == 10 {
			cancel()
		}
	}})
	cancel()
	if _, err := e.Replay(ctx, Request{Topic: ordersDLT, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.History(ctx, ""); err != nil {
		t.Fatal(err)
	}
	e.Close()
	goleak.VerifyNone(t, ignore)
}

// TestScanMemoryIsBounded lists and groups 150k dead letters (about 150 MiB once decompressed
// and decoded) and checks the live heap never grows by more than a few fetches' worth: the scan
// streams, it does not collect.
func TestScanMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 150k records")
	}
	const n = 150_000
	c := benchCluster(t)
	seedBench(t, c, n)
	e := newEngine(t, c)
	live := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := live()
	var peak uint64
	var seen int
	sum, err := e.List(context.Background(), benchDLT, nil, func(*dlt.Record) error {
		if seen++; seen%10_000 == 0 {
			peak = max(peak, live())
		}
		return nil
	})
	if err != nil || sum.Selected != n {
		t.Fatalf("list: %d records, %v", sum.Selected, err)
	}
	const bound = 64 << 20
	if grown := peak - min(peak, base); grown > bound {
		t.Fatalf("live heap grew by %d MiB while listing %d records (bound %d MiB)", grown>>20, n, bound>>20)
	}
	st, err := e.Stats(context.Background(), benchDLT, nil)
	if err != nil || st.Selected != n || len(st.Groups) != 4 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	t.Logf("live heap %d MiB before, at most %d MiB while listing %d records", base>>20, peak>>20, n)
}

// TestTopicNamesCacheAgreesWithTopicName: whatever the order of values, the cache answers what
// dlt.TopicName does, including for values that are not legal topic names, past its size limit.
func TestTopicNamesCacheAgreesWithTopicName(t *testing.T) {
	values := []string{"", "orders", "orders", "payments-paid", "orders", "bad topic\x1b[2J", "", "orders", "a/b", "payments-paid"}
	for i := range maxTopicNames + 10 {
		values = append(values, fmt.Sprintf("t%d", i), "orders")
	}
	var tn topicNames
	for _, v := range values {
		if got, want := tn.name([]byte(v)), dlt.TopicName([]byte(v)); got != want {
			t.Fatalf("name(%q) = %q, want %q", v, got, want)
		}
	}
	if len(tn.names) != maxTopicNames {
		t.Fatalf("the cache holds %d names, want it to stop at %d", len(tn.names), maxTopicNames)
	}
	var none *topicNames
	if got := none.name([]byte("orders")); got != "orders" {
		t.Fatalf("nil cache: %q", got)
	}
}

// TestStatsProgress: a grouping scan hands out snapshots as it reads — counts so far, groups
// sorted as the result's — and ends with the same result Stats gives.
func TestStatsProgress(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 25)
	e := newEngine(t, c)
	ctx := context.Background()
	old := statsProgressEvery
	statsProgressEvery = 10
	t.Cleanup(func() { statsProgressEvery = old })

	var snaps []*Stats
	st, err := e.StatsProgress(ctx, ordersDLT, nil, func(p *Stats) { snaps = append(snaps, p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].Selected != 10 || snaps[1].Selected != 20 {
		t.Fatalf("snapshots %+v, want two, after 10 and 20 records", snaps)
	}
	for _, s := range snaps {
		var n int64
		for i, g := range s.Groups {
			n += g.Count
			if i > 0 && g.Count > s.Groups[i-1].Count {
				t.Errorf("snapshot after %d: groups not sorted by count: %+v", s.Selected, s.Groups)
			}
		}
		if n != s.Selected {
			t.Errorf("snapshot after %d counts %d records", s.Selected, n)
		}
	}
	want, err := e.Stats(ctx, ordersDLT, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Selected != 25 || !reflect.DeepEqual(st.Groups, want.Groups) {
		t.Fatalf("StatsProgress = %+v, Stats = %+v", st, want)
	}
}
