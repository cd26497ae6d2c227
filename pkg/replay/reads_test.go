package replay

import (
	"context"
	"runtime"
	"testing"

	"github.com/come2us/opsctl/pkg/dlt"
)

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
