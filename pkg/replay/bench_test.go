package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The measurements here are benchmarks, not tests: they only run when asked, print figures and
// assert nothing about time.
//
//	go test ./pkg/replay -run TestBenchReplayThroughput -v -args -bench.replay=200000
//	go test ./pkg/replay -run TestBenchStatsScale -v -args -bench.stats=1000000
var (
	benchReplay = flag.Int("bench.replay", 0, "replay this many small dead letters on a TCP kfake beside a bare franz-go loop and kcat")
	benchStats  = flag.Int("bench.stats", 0, "run stats and list over this many dead letters in a child process and report time and peak memory")
	benchBatch  = flag.Int("bench.batch", DefaultBatchSize, "records per replay transaction in -bench.replay")
	// The broker runs in its own process unless asked: in this one, its heap (every record of
	// the run) and its garbage collection would be charged to the client being measured.
	benchProfile   = flag.String("bench.cpuprofile", "", "write CPU profiles of -bench.replay's opsctl replays to FILE.1, FILE.2, … (one per round)")
	benchRounds    = flag.Int("bench.rounds", 3, "rounds of -bench.replay; the best is reported")
	benchBaselines = flag.Bool("bench.baselines", true, "run -bench.replay's baselines (franz-go loop, kcat) beside opsctl")
	benchInProcess = flag.Bool("bench.inprocess", false, "run -bench.replay's kfake in the test process")
	// The CLI pays what the engine in this process does not: its own start (package
	// initialisation of a binary that also links the Kubernetes and Argo CD clients) and a
	// heap that grows from nothing.
	benchCLI = flag.String("bench.opsctl", "", "also time `opsctl dlt replay --yes` in its own process, with the opsctl binary at PATH (go build -o PATH ./cmd/opsctl)")
)

// benchCLIDLT holds a second copy of the dead letters for the CLI to replay.
const benchCLIDLT = "bench-cli.DLT"

// brokerPID is the broker process of the running benchmark round, whose CPU time counts.
var brokerPID int

const benchDLT, benchTarget = "bench.DLT", "bench"

// seedBench writes n small dead letters (about 200 bytes of JSON value plus Spring headers) to
// bench.DLT, spread over its partitions.
func seedBench(tb testing.TB, c *kfake.Cluster, n int) {
	tb.Helper()
	seedBenchAt(tb, c.ListenAddrs(), n)
}

func seedBenchAt(tb testing.TB, addrs []string, n int) {
	tb.Helper()
	seedBenchTopic(tb, addrs, benchDLT, n)
}

// seedBenchTopic writes n small dead letters of bench to dltTopic.
func seedBenchTopic(tb testing.TB, addrs []string, dltTopic string, n int) {
	tb.Helper()
	const chunk = 50_000
	codes := []string{"DB_LOCK_TIMEOUT", "STOCK_ROW_MISSING", "COUPON_NOT_FOUND", "PG_TIMEOUT"}
	sources := []string{"order-service", "product-service"}
	at := replaytest.Base
	for start := 0; start < n; start += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			orig := &kgo.Record{Topic: benchTarget, Partition: int32(i % 3), Offset: int64(i), Key: []byte(strconv.Itoa(i)), Timestamp: at,
				Value: fmt.Appendf(nil, `{"eventId":"e-%d","eventType":"OrderFailed","orderId":%d,"orderDetailId":%d,"optionValueId":3,"quantity":%d,"paymentKey":"tgen_%d"}`, i, i, i*10, 1+i%4, i)}
			d := dlt.Build(orig, dlt.Failure{Source: sources[i%2], Code: codes[i%4], Message: "failed", Group: "product-service-group", At: at.Add(time.Duration(i) * time.Millisecond)})
			d.Topic, d.Partition = dltTopic, int32(i%3)
			recs = append(recs, d)
		}
		if err := replaytest.ProduceAll(context.Background(), addrs, recs...); err != nil {
			tb.Fatal(err)
		}
	}
}

var benchTopics = kfake.SeedTopics(3, benchDLT, benchTarget, "bench-bare", "bench-kcat", benchCLIDLT)

func benchCluster(tb testing.TB) *kfake.Cluster {
	return replaytest.NewCluster(tb, benchTopics, kfake.NumBrokers(*benchBrokers))
}

const (
	brokerChildEnv   = "OPSCTL_BENCH_BROKER_CHILD"
	brokerLatencyEnv = "OPSCTL_BENCH_BROKER_LATENCY"
	brokerCountEnv   = "OPSCTL_BENCH_BROKER_COUNT"
)

var benchBrokers = flag.Int("bench.brokers", 1, "brokers of the benchmark's kfake cluster (3 is an MSK cluster's shape: each partition's leader on its own broker)")

var benchLatency = flag.Duration("bench.latency", 0, "delay every request the benchmark's broker (in its own process) handles by this much, as a network round trip would")

// TestBenchBrokerChild is not a test: it is the broker process of TestBenchReplayThroughput, a
// kfake cluster that prints its address and serves until its standard input closes.
func TestBenchBrokerChild(t *testing.T) {
	if os.Getenv(brokerChildEnv) == "" {
		t.Skip("helper process for the replay benchmark")
	}
	brokers, _ := strconv.Atoi(os.Getenv(brokerCountEnv))
	c, err := replaytest.Start(benchTopics, kfake.NumBrokers(max(1, brokers)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if lat, _ := time.ParseDuration(os.Getenv(brokerLatencyEnv)); lat > 0 {
		// Every request waits lat before the broker handles it: a network round trip. Other
		// connections run meanwhile; requests on one connection wait in turn.
		c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
			c.SleepControl(func() { time.Sleep(lat) })
			return nil, nil, false
		})
	}
	fmt.Printf("brokers=%s\n", strings.Join(c.ListenAddrs(), ","))
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	os.Exit(0)
}

// benchBroker is a kfake cluster: in its own process (as a real broker is, so its heap and
// garbage collection are not charged to the client measured), or in this one.
type benchBroker struct {
	addrs []string
	pid   int // 0 when in-process
}

func startBenchBroker(t *testing.T, ownProcess bool) *benchBroker {
	t.Helper()
	if !ownProcess {
		return &benchBroker{addrs: benchCluster(t).ListenAddrs()}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchBrokerChild$")
	cmd.Env = append(os.Environ(), brokerChildEnv+"=1", fmt.Sprintf("%s=%s", brokerLatencyEnv, *benchLatency),
		fmt.Sprintf("%s=%d", brokerCountEnv, *benchBrokers))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "brokers="); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return &benchBroker{addrs: strings.Split(v, ","), pid: cmd.Process.Pid}
		}
	}
	t.Fatalf("the broker process did not start: %v", sc.Err())
	return nil
}

func TestBenchReplayThroughput(t *testing.T) {
	n := *benchReplay
	if n == 0 {
		t.Skip("benchmark: pass -args -bench.replay=200000")
	}
	kcat, kcatErr := exec.LookPath("kcat")
	if kcatErr != nil {
		t.Log("kcat not installed: apt-get install -y kcat for the kcat baseline")
	}
	// The process runs with the collector settings of the CLI's dlt commands.
	defer TuneGCForBatch()()
	// Each contender runs -bench.rounds times, interleaved, each time on a fresh cluster seeded
	// the same way; the best round is reported, which damps the noise of a machine shared with
	// other work.
	var bare, kc, eo, rerun, cli []measured
	for round := range *benchRounds {
		br := startBenchBroker(t, !*benchInProcess)
		brokerPID = br.pid
		seedBenchAt(t, br.addrs, n)
		addr := br.addrs[0]
		if round == 0 {
			where := "in its own process"
			if br.pid == 0 {
				where = "in this process"
			}
			t.Logf("kfake with %d broker(s) on %s (TCP, %s), %d dead letters on %s, GOMAXPROCS %d, GOGC %d, load average %s", *benchBrokers, addr, where, n, benchDLT, runtime.GOMAXPROCS(0), gcPercent(), loadAvg())
		}
		// 1. A bare franz-go consume→produce loop: the practical limit (no decoding, no
		// transactions, no dedupe, no audit).
		if *benchBaselines {
			bare = append(bare, timeIt(func() error { return bareLoop(br.addrs, n) }))
		}
		// 2. kcat -C | kcat -P, when installed.
		if kcatErr == nil && *benchBaselines {
			kc = append(kc, timeIt(func() error { return kcatPipe(kcat, addr, n) }))
			if got := countRecordsAt(t, br.addrs, "bench-kcat"); got != n {
				t.Errorf("kcat moved %d of %d records", got, n)
			}
		}
		// 3. opsctl: select, plan, exactly-once transactions with the ledger; then a rerun,
		// which reads everything and skips everything.
		e, err := New(Config{NewClient: (&addrCluster{addrs: br.addrs}).newClient, Actor: "bench", BatchSize: *benchBatch})
		if err != nil {
			t.Fatal(err)
		}
		var sum *Summary
		eo = append(eo, timeIt(func() error {
			defer profileCPU(t)()
			defer profileAllocs(t)()
			var err error
			sum, err = e.Replay(context.Background(), Request{Topic: benchDLT, Reason: "bench"})
			return err
		}))
		if sum.Replayed != n {
			t.Fatalf("replayed %d of %d: %+v", sum.Replayed, n, sum)
		}
		rerun = append(rerun, timeIt(func() error {
			var err error
			sum, err = e.Replay(context.Background(), Request{Topic: benchDLT, Reason: "bench rerun"})
			return err
		}))
		if sum.Skipped != n {
			t.Fatalf("rerun skipped %d of %d", sum.Skipped, n)
		}
		if got, err := replaytest.ReadAll(context.Background(), br.addrs, benchTarget); err != nil || len(got) != n {
			t.Fatalf("%s holds %d records after the replay and the rerun (%v), want %d", benchTarget, len(got), err, n)
		}
		e.Close()
		// 4. The CLI, in its own process, on a second copy of the dead letters.
		if *benchCLI != "" {
			seedBenchTopic(t, br.addrs, benchCLIDLT, n)
			cli = append(cli, timeIt(func() error { return cliReplay(t, *benchCLI, br.addrs) }))
			if got, err := replaytest.ReadAll(context.Background(), br.addrs, benchTarget); err != nil || len(got) != 2*n {
				t.Fatalf("%s holds %d records after the CLI's replay (%v), want %d", benchTarget, len(got), err, 2*n)
			}
		}
	}
	b, k, o := best(bare), best(kc), best(eo)
	reportCLI := func() {
		if len(cli) == 0 {
			return
		}
		c := best(cli)
		report(t, "opsctl dlt replay --yes (the CLI, own process)", n, c, 0)
		if len(kc) > 0 {
			t.Logf("                                        the CLI vs kcat %.2f by wall time, %.2f by CPU", k.wall.Seconds()/c.wall.Seconds(), k.cpu.Seconds()/c.cpu.Seconds())
		}
	}
	if !*benchBaselines {
		report(t, fmt.Sprintf("opsctl replay, exactly once (batch %d)", *benchBatch), n, o, 0)
		report(t, "opsctl rerun (all skipped)", n, best(rerun), 0)
		reportCLI()
		return
	}
	report(t, "franz-go consume→produce loop", n, b, 0)
	if kcatErr == nil {
		report(t, "kcat -C | kcat -P", n, k, 0)
	}
	report(t, fmt.Sprintf("opsctl replay, exactly once (batch %d)", *benchBatch), n, o, 0)
	report(t, "opsctl rerun (all skipped)", n, best(rerun), 0)
	t.Logf("ratios, above 1 when opsctl is faster: vs the franz-go loop %.2f by wall time, %.2f by CPU", b.wall.Seconds()/o.wall.Seconds(), b.cpu.Seconds()/o.cpu.Seconds())
	if kcatErr == nil {
		t.Logf("                                        vs kcat %.2f by wall time, %.2f by CPU", k.wall.Seconds()/o.wall.Seconds(), k.cpu.Seconds()/o.cpu.Seconds())
	}
	reportCLI()
	t.Logf("load average after: %s", loadAvg())
}

var benchAllocs = flag.String("bench.memprofile", "", "write the allocations of -bench.replay's opsctl replays to FILE.N, with the process's allocations before each in FILE.N.base (go tool pprof -sample_index=alloc_space -base FILE.1.base FILE.1)")

// profileAllocs writes the allocation profile before the replay and after it, when
// -bench.memprofile asks; the difference is the replay's.
func profileAllocs(t *testing.T) func() {
	if *benchAllocs == "" {
		return func() {}
	}
	write := func(name string) {
		runtime.GC()
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
	}
	profiledAllocs++
	name := fmt.Sprintf("%s.%d", *benchAllocs, profiledAllocs)
	write(name + ".base")
	return func() { write(name) }
}

var profiledAllocs int

// profileCPU profiles until the returned function is called, when -bench.cpuprofile asks, into
// FILE.1, FILE.2, … one per round (go tool pprof merges them: go tool pprof FILE.*).
func profileCPU(t *testing.T) func() {
	if *benchProfile == "" {
		return func() {}
	}
	profiled++
	f, err := os.Create(fmt.Sprintf("%s.%d", *benchProfile, profiled))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
}

var profiled int

// measured is one benchmark phase: wall time, and the CPU it cost this process (the client when
// it runs in-process), the broker (in its process or this one) and any child processes (kcat). On a machine shared with
// other work, wall time swings with the load; CPU time per record is the steadier figure.
type measured struct {
	wall, cpu, broker time.Duration // broker: the part of cpu spent by a broker in its own process
}

func best(ms []measured) measured {
	if len(ms) == 0 {
		return measured{}
	}
	b := ms[0]
	for _, m := range ms[1:] {
		if m.wall < b.wall {
			b.wall = m.wall
		}
		if m.cpu < b.cpu {
			b.cpu, b.broker = m.cpu, m.broker
		}
	}
	return b
}

func timeIt(fn func() error) measured {
	cpu0, broker0 := cpuTime(), procCPU(brokerPID)
	start := time.Now()
	if err := fn(); err != nil {
		panic(err)
	}
	return measured{wall: time.Since(start), cpu: cpuTime() - cpu0, broker: procCPU(brokerPID) - broker0}
}

func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime) + procCPU(brokerPID)
}

// procCPU is the user+system CPU time of a running process (0 for pid 0 or when unknown), from
// /proc/PID/stat in clock ticks of 10 ms.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: fields count from after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func report(t *testing.T, what string, n int, m measured, rssKiB int64) {
	t.Helper()
	line := fmt.Sprintf("%-40s %7d records in %6.2fs = %7.0f records/s", what, n, m.wall.Seconds(), float64(n)/m.wall.Seconds())
	if m.cpu > 0 {
		line += fmt.Sprintf("; %5.2f CPU-s = %7.0f records/CPU-s", m.cpu.Seconds(), float64(n)/m.cpu.Seconds())
		if m.broker > 0 {
			line += fmt.Sprintf(" (broker %.2f, client %.2f)", m.broker.Seconds(), (m.cpu - m.broker).Seconds())
		}
	}
	if rssKiB > 0 {
		line += fmt.Sprintf(", peak RSS %.0f MiB", float64(rssKiB)/1024)
	}
	t.Log(line)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func bareLoop(addrs []string, n int) error {
	ctx := context.Background()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(benchDLT), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer prod.Close()
	var seen int
	for seen < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			prod.Produce(ctx, &kgo.Record{Topic: "bench-bare", Key: r.Key, Value: r.Value, Headers: r.Headers}, func(_ *kgo.Record, perr error) {
				if perr != nil && err == nil {
					err = perr
				}
			})
		})
	}
	if ferr := prod.Flush(ctx); ferr != nil {
		return ferr
	}
	return err
}

// cliReplay runs `opsctl dlt replay bench-cli.DLT --yes` as an on-call engineer's script
// would, with no config file and the brokers on the command line.
func cliReplay(t *testing.T, opsctl string, addrs []string) error {
	cmd := exec.Command(opsctl, "dlt", "replay", benchCLIDLT, "--brokers", strings.Join(addrs, ","), "--reason", "bench", "--yes")
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "OPSCTL_CONFIG="+home+"/config.yaml")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("opsctl dlt replay: %w: %s", err, out.String())
	}
	return nil
}

func kcatPipe(kcat, addr string, n int) error {
	cons := exec.Command(kcat, "-C", "-b", addr, "-t", benchDLT, "-o", "beginning", "-e", "-q", "-K", "\t", "-c", strconv.Itoa(n))
	prod := exec.Command(kcat, "-P", "-b", addr, "-t", "bench-kcat", "-K", "\t")
	pipe, err := cons.StdoutPipe()
	if err != nil {
		return err
	}
	prod.Stdin = pipe
	var errs strings.Builder
	cons.Stderr, prod.Stderr = &errs, &errs
	if err := prod.Start(); err != nil {
		return err
	}
	if err := cons.Run(); err != nil {
		return fmt.Errorf("kcat -C: %w: %s", err, errs.String())
	}
	if err := prod.Wait(); err != nil {
		return fmt.Errorf("kcat -P: %w: %s", err, errs.String())
	}
	return nil
}

func countRecordsAt(t *testing.T, addrs []string, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return int(n)
}

const statsChildEnv = "OPSCTL_BENCH_STATS_CHILD"

// TestBenchStatsChild is not a test: it is the process TestBenchStatsScale measures, running
// stats or list against the parent's kfake and printing what it found.
func TestBenchStatsChild(t *testing.T) {
	spec := os.Getenv(statsChildEnv)
	if spec == "" {
		t.Skip("helper process for the stats benchmark")
	}
	mode, brokers, _ := strings.Cut(spec, "@")
	restoreGC := TuneGCForBatch() // as the CLI's dlt commands run
	c := &addrCluster{addrs: strings.Split(brokers, ",")}
	e, err := New(Config{NewClient: c.newClient})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	switch mode {
	case "stats":
		st, err := e.Stats(ctx, benchDLT, nil)
		if err != nil {
			panic(err)
		}
		_ = json.NewEncoder(out).Encode(map[string]any{"selected": st.Selected, "groups": len(st.Groups), "peakRSSKiB": peakRSS()})
	case "list", "list-none":
		src := `errorCode == "PG_TIMEOUT" && quantity > 2` // a quarter of the records
		if mode == "list-none" {
			src = `errorCode == "PG_TIMEOUT" && quantity > 9` // none: a full scan that lists nothing
		}
		where, _ := CompileWhere(src)
		var n int64
		sum, err := e.List(ctx, benchDLT, &Selection{Where: where}, func(*dlt.Record) error { n++; return nil })
		if err != nil {
			panic(err)
		}
		_ = json.NewEncoder(out).Encode(map[string]any{"selected": sum.Selected, "scanned": sum.Scanned, "peakRSSKiB": peakRSS()})
	}
	out.Flush()
	restoreGC()
	os.Exit(0)
}

var benchStatsModes = flag.String("bench.stats.modes", "stats,list,list-none", "what -bench.stats times: stats, list (--where selecting a quarter), list-none (--where selecting nothing)")

// statsModeName is what each -bench.stats mode does, as reported.
var statsModeName = map[string]string{
	"stats":     "stats (group by errorSource × errorCode)",
	"list":      "list --where (a quarter selected)",
	"list-none": "list --where (nothing selected)",
}

// runStatsChild runs one mode of the stats benchmark in a child process against brokers and
// returns its wall and CPU time and its peak RSS in KiB.
func runStatsChild(tb testing.TB, brokers []string, mode string) (measured, int64) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchStatsChild$")
	cmd.Env = append(os.Environ(), statsChildEnv+"="+mode+"@"+strings.Join(brokers, ","))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s child: %v\n%s", mode, err, out.String())
	}
	took := measured{wall: time.Since(began), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	// The child reports its own peak RSS (VmHWM): wait4's ru_maxrss would count this
	// process's memory too, since the child starts as a vfork of it.
	var res struct {
		PeakRSSKiB int64 `json:"peakRSSKiB"`
	}
	if err := json.Unmarshal([]byte(lastLine(out.String())), &res); err != nil {
		tb.Fatalf("%s child output: %v\n%s", mode, err, out.String())
	}
	return took, res.PeakRSSKiB
}

func TestBenchStatsScale(t *testing.T) {
	n := *benchStats
	if n == 0 {
		t.Skip("benchmark: pass -args -bench.stats=1000000")
	}
	c := benchCluster(t)
	start := time.Now()
	seedBench(t, c, n)
	t.Logf("seeded %d dead letters in %.1fs; load average %s", n, time.Since(start).Seconds(), loadAvg())
	for _, mode := range strings.Split(*benchStatsModes, ",") {
		took, rss := runStatsChild(t, c.ListenAddrs(), mode)
		report(t, statsModeName[mode], n, took, rss)
	}
}

// BenchmarkDLTScan times `dlt stats` and `dlt list --where` over -bench.stats small dead
// letters, each in a process of its own as the CLI runs: go test ./pkg/replay -run XXX
// -bench DLTScan -benchtime 3x -args -bench.stats=1000000. It reports wall seconds, CPU
// seconds and peak RSS per scan.
func BenchmarkDLTScan(b *testing.B) {
	n := *benchStats
	if n == 0 {
		b.Skip("pass -args -bench.stats=1000000")
	}
	c := benchCluster(b)
	seedBench(b, c, n)
	for _, mode := range strings.Split(*benchStatsModes, ",") {
		b.Run(mode, func(b *testing.B) {
			var wall, cpu time.Duration
			var rss int64
			for b.Loop() {
				took, kib := runStatsChild(b, c.ListenAddrs(), mode)
				wall, cpu, rss = wall+took.wall, cpu+took.cpu, max(rss, kib)
			}
			b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/scan")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/scan")
			b.ReportMetric(float64(rss)/1024, "peak-MiB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// peakRSS returns this process's peak resident set size in KiB (VmHWM), 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func BenchmarkDecode(b *testing.B) {
	r := replaytest.Saga(1, 42, "DB_LOCK_TIMEOUT", 2, replaytest.Base)
	b.ReportAllocs()
	for b.Loop() {
		_ = dlt.Decode(r)
	}
}

func BenchmarkDecodeBrief(b *testing.B) {
	r := replaytest.Saga(1, 42, "DB_LOCK_TIMEOUT", 2, replaytest.Base)
	b.ReportAllocs()
	for b.Loop() {
		_ = dlt.DecodeBrief(r)
	}
}

func BenchmarkWhere(b *testing.B) {
	d := dlt.Decode(replaytest.Saga(1, 42, "DB_LOCK_TIMEOUT", 2, replaytest.Base))
	w, err := CompileWhere(`errorCode == "DB_LOCK_TIMEOUT" && quantity > 1`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := w.Match(&d); !ok {
			b.Fatal("no match")
		}
	}
}

var benchVariants = flag.String("bench.variants", "", "compare replay variants, interleaved round by round on fresh brokers: a comma-separated list of lanes=N, optionally followed by +nostream (each batch collected before it is produced) and +fixed (batches do not grow), e.g. lanes=2,lanes=2+fixed")

// TestBenchReplayVariants measures what the replay's lanes, streaming and growing batches gain: each round runs
// every variant once, each on a fresh broker in its own process, so a machine whose speed
// drifts treats them alike.
func TestBenchReplayVariants(t *testing.T) {
	if *benchVariants == "" || *benchReplay == 0 {
		t.Skip("benchmark: pass -args -bench.replay=200000 -bench.variants=lanes=1,lanes=2")
	}
	n := *benchReplay
	defer TuneGCForBatch()()
	type variant struct {
		name     string
		lanes    int
		noStream bool
		fixed    bool
		runs     []measured
	}
	var vs []*variant
	for _, v := range strings.Split(*benchVariants, ",") {
		name, _ := strings.CutPrefix(v, "lanes=")
		num, mods, _ := strings.Cut(name, "+")
		lanes, err := strconv.Atoi(num)
		if err != nil || lanes < 1 {
			t.Fatalf("variant %q: want lanes=N[+nostream][+fixed]", v)
		}
		vr := &variant{name: v, lanes: lanes}
		for _, mod := range strings.Split(mods, "+") {
			switch mod {
			case "":
			case "nostream":
				vr.noStream = true
			case "fixed":
				vr.fixed = true
			default:
				t.Fatalf("variant %q: unknown modifier %q (want nostream or fixed)", v, mod)
			}
		}
		vs = append(vs, vr)
	}
	for range *benchRounds {
		for _, v := range vs {
			br := startBenchBroker(t, !*benchInProcess)
			brokerPID = br.pid
			seedBenchAt(t, br.addrs, n)
			e, err := New(Config{NewClient: (&addrCluster{addrs: br.addrs}).newClient, Actor: "bench", BatchSize: *benchBatch})
			if err != nil {
				t.Fatal(err)
			}
			e.lanes, e.noStream, e.fixedBatches = v.lanes, v.noStream, v.fixed
			var sum *Summary
			v.runs = append(v.runs, timeIt(func() error {
				var err error
				sum, err = e.Replay(context.Background(), Request{Topic: benchDLT, Reason: "bench"})
				return err
			}))
			if sum.Replayed != n {
				t.Fatalf("%s replayed %d of %d", v.name, sum.Replayed, n)
			}
			e.Close()
		}
	}
	for _, v := range vs {
		walls := make([]float64, len(v.runs))
		for i, m := range v.runs {
			walls[i] = m.wall.Seconds()
		}
		slices.Sort(walls)
		report(t, fmt.Sprintf("opsctl replay, %s", v.name), n, best(v.runs), 0)
		t.Logf("%40s median %.2fs = %7.0f records/s over %d rounds", "", walls[len(walls)/2], float64(n)/walls[len(walls)/2], len(walls))
	}
}
