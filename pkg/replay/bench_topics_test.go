package replay

import (
	"context"
	"flag"
	"testing"
)

// The cost of `dlt topics` on a large DLT: it reads the topic to count what a read_committed
// consumer sees. A benchmark, not a test: it prints figures and asserts nothing about time.
//
//	go test ./pkg/replay -run TestBenchTopics -v -args -bench.topics=200000
var benchTopicsN = flag.Int("bench.topics", 0, "time `dlt topics` (Engine.Topics) over this many small dead letters on a kfake in its own process")

func TestBenchTopics(t *testing.T) {
	n := *benchTopicsN
	if n == 0 {
		t.Skip("benchmark: pass -args -bench.topics=200000")
	}
	br := startBenchBroker(t, true)
	brokerPID = br.pid
	seedBenchAt(t, br.addrs, n)
	e, err := New(Config{NewClient: (&addrCluster{addrs: br.addrs}).newClient})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var runs []measured
	for range *benchRounds {
		runs = append(runs, timeIt(func() error {
			topics, err := e.Topics(context.Background())
			for _, ti := range topics {
				if ti.Topic == benchDLT && ti.Records != int64(n) {
					t.Errorf("%s: %d records, want %d", benchDLT, ti.Records, n)
				}
			}
			return err
		}))
	}
	report(t, "dlt topics", n, best(runs), 0)
	t.Logf("load average after: %s", loadAvg())
}
