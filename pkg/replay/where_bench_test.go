package replay

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// benchDeadLetters returns n dead letters as seedBenchTopic writes them, read back as a scan
// hands them to a selection.
func benchDeadLetters(n int) []*kgo.Record {
	codes := []string{"DB_LOCK_TIMEOUT", "STOCK_ROW_MISSING", "COUPON_NOT_FOUND", "PG_TIMEOUT"}
	sources := []string{"order-service", "product-service"}
	at := replaytest.Base
	recs := make([]*kgo.Record, n)
	for i := range recs {
		orig := &kgo.Record{Topic: benchTarget, Partition: int32(i % 3), Offset: int64(i), Key: []byte(strconv.Itoa(i)), Timestamp: at,
			Value: fmt.Appendf(nil, `{"eventId":"e-%d","eventType":"OrderFailed","orderId":%d,"orderDetailId":%d,"optionValueId":3,"quantity":%d,"paymentKey":"tgen_%d"}`, i, i, i*10, 1+i%4, i)}
		d := dlt.Build(orig, dlt.Failure{Source: sources[i%2], Code: codes[i%4], Message: "failed", Group: "product-service-group", At: at.Add(time.Duration(i) * time.Millisecond)})
		d.Topic, d.Partition, d.Offset, d.Timestamp = benchDLT, int32(i%3), int64(i/3), at
		recs[i] = d
	}
	return recs
}

// BenchmarkWhereSelect is the per-record cost of `dlt list --where` once a scan has read the
// records: the cheap filters, the decoding --where needs, and the expression (ns per record).
func BenchmarkWhereSelect(b *testing.B) {
	recs := benchDeadLetters(4096)
	for _, tc := range []struct{ name, src string }{
		{"none", `errorCode == "PG_TIMEOUT" && quantity > 9`},
		{"quarter", `errorCode == "PG_TIMEOUT" && quantity > 2`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w, err := CompileWhere(tc.src)
			if err != nil {
				b.Fatal(err)
			}
			sel := &Selection{Where: w}
			d := new(dlt.Record)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := sel.decodeInto(recs[i%len(recs)], decodeFull, d, nil, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

var benchOld = flag.String("bench.old", "", "TestBenchDLTScanOldNew: a test binary of an older tree (go test -c -o FILE ./pkg/replay) whose stats and list children run beside this one's")

// TestBenchDLTScanOldNew times -bench.stats's modes (stats, list --where selecting a quarter,
// list --where selecting nothing) in children of this test binary and of -bench.old, on one
// seeded broker, round by round in turn, so that a machine whose load drifts treats them alike:
// go test ./pkg/replay -run TestBenchDLTScanOldNew -v -args -bench.stats=1000000 -bench.old=/tmp/replay-old.test
// It reports the median and best of -bench.rounds per binary and mode, and fails when the two
// select or scan different counts.
func TestBenchDLTScanOldNew(t *testing.T) {
	n := *benchStats
	if n == 0 || *benchOld == "" {
		t.Skip("benchmark: pass -args -bench.stats=1000000 -bench.old=FILE")
	}
	c := benchCluster(t)
	seedBench(t, c, n)
	bins := []struct{ name, path string }{{"old", *benchOld}, {"new", os.Args[0]}}
	type key struct{ bin, mode string }
	runs := map[key][]measured{}
	rss := map[key]int64{}
	counts := map[string]string{}
	modes := strings.Split(*benchStatsModes, ",")
	for round := range *benchRounds {
		for _, mode := range modes {
			for _, b := range bins {
				if round%2 == 1 { // the other order every other round
					b = bins[(slices.IndexFunc(bins, func(x struct{ name, path string }) bool { return x == b })+1)%len(bins)]
				}
				took, kib, out := runStatsChildOf(t, b.path, c.ListenAddrs(), mode)
				k := key{b.name, mode}
				runs[k] = append(runs[k], took)
				rss[k] = max(rss[k], kib)
				if prev, ok := counts[mode]; ok && prev != out {
					t.Fatalf("%s: %s found %s, the other %s", mode, b.name, out, prev)
				}
				counts[mode] = out
			}
		}
	}
	t.Logf("load average %s", loadAvg())
	for _, mode := range modes {
		for _, b := range bins {
			k := key{b.name, mode}
			ms := runs[k]
			cpus := make([]float64, len(ms))
			walls := make([]float64, len(ms))
			for i, m := range ms {
				cpus[i], walls[i] = m.cpu.Seconds(), m.wall.Seconds()
			}
			slices.Sort(cpus)
			slices.Sort(walls)
			t.Logf("%-10s %-4s CPU-s median %.2f best %.2f; wall-s median %.2f best %.2f; peak RSS %.0f MiB; %s",
				mode, b.name, cpus[len(cpus)/2], cpus[0], walls[len(walls)/2], walls[0], float64(rss[k])/1024, counts[mode])
			var each []string
			for _, m := range ms {
				each = append(each, fmt.Sprintf("%.2f/%.2f", m.cpu.Seconds(), m.wall.Seconds()))
			}
			t.Logf("%-15s each round, CPU-s/wall-s: %s", "", strings.Join(each, " "))
		}
	}
}

// runStatsChildOf is runStatsChild with the test binary at bin; it also returns what the child
// counted, for the comparison.
func runStatsChildOf(tb testing.TB, bin string, brokers []string, mode string) (measured, int64, string) {
	tb.Helper()
	cmd := exec.Command(bin, "-test.run=^TestBenchStatsChild$")
	cmd.Env = append(os.Environ(), statsChildEnv+"="+mode+"@"+strings.Join(brokers, ","))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s child of %s: %v\n%s", mode, bin, err, out.String())
	}
	took := measured{wall: time.Since(began), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	var res struct {
		PeakRSSKiB int64 `json:"peakRSSKiB"`
		Selected   int64 `json:"selected"`
		Scanned    int64 `json:"scanned"`
		Groups     int   `json:"groups"`
	}
	if err := json.Unmarshal([]byte(lastLine(out.String())), &res); err != nil {
		tb.Fatalf("%s child output: %v\n%s", mode, err, out.String())
	}
	return took, res.PeakRSSKiB, fmt.Sprintf("selected %d scanned %d groups %d", res.Selected, res.Scanned, res.Groups)
}

var benchWhereProfile = flag.String("bench.where.cpuprofile", "", "TestBenchWhereProfile: write a CPU profile of `list --where` (selecting nothing) over -bench.stats dead letters to FILE")

// TestBenchWhereProfile profiles `list --where` selecting nothing in this process (the broker
// too, in its own goroutines: look at the engine's part):
// go test ./pkg/replay -run TestBenchWhereProfile -args -bench.stats=300000 -bench.where.cpuprofile=FILE
func TestBenchWhereProfile(t *testing.T) {
	if *benchStats == 0 || *benchWhereProfile == "" {
		t.Skip("benchmark: pass -args -bench.stats=300000 -bench.where.cpuprofile=FILE")
	}
	c := benchCluster(t)
	seedBench(t, c, *benchStats)
	e := newEngine(t, c)
	where, err := CompileWhere(`errorCode == "PG_TIMEOUT" && quantity > 9`)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(*benchWhereProfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	sum, err := e.List(context.Background(), benchDLT, &Selection{Where: where}, func(*dlt.Record) error { return nil })
	pprof.StopCPUProfile()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scanned %d, selected %d", sum.Scanned, sum.Selected)
}
