package replay

import (
	"context"
	"fmt"
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
