package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

const ordersDLT = "orders-failed.DLT"

// converge bounds waits for what should happen within a few passes; generous for a loaded
// machine, and a failure bound only.
const converge = 90 * time.Second

// seed writes n DB_LOCK_TIMEOUT dead letters to orders-failed.DLT, an hour old by the wall
// clock (the agent under test runs on it), plus one STOCK_SHORT that no rule redrives.
func seed(t testing.TB, c *kfake.Cluster, n int) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	var recs []*kgo.Record
	for i := 1; i <= n; i++ {
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, at.Add(time.Duration(i)*time.Millisecond)))
	}
	recs = append(recs, replaytest.Saga(0, 1000, "STOCK_SHORT", 1, at))
	replaytest.Produce(t, c, recs...)
}

// writePolicy writes a policy file redriving DB_LOCK_TIMEOUT at rate records a second.
func writePolicy(t testing.TB, dir string, rate int) string {
	t.Helper()
	p := filepath.Join(dir, "redrive-policy.yaml")
	body := fmt.Sprintf("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n    minAge: 1m\n    rate: %d\n", rate)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// replayedFrom counts, per dead letter, the records of topic replayed from it.
func replayedFrom(t testing.TB, c *kfake.Cluster, topic string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range replaytest.ReadCommitted(t, c, topic) {
		for _, h := range r.Headers {
			if h.Key == dlt.HeaderReplayedFrom {
				out[string(h.Value)]++
			}
		}
	}
	return out
}

// assertExactlyOnce checks every DB_LOCK_TIMEOUT dead letter reached orders-failed exactly once
// and nothing else did.
func assertExactlyOnce(t testing.TB, c *kfake.Cluster, n int) {
	t.Helper()
	got := replayedFrom(t, c, event.TopicOrdersFailed)
	want := 0
	for _, r := range replaytest.ReadCommitted(t, c, ordersDLT) {
		d := dlt.DecodeBrief(r)
		k := replay.Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}.String()
		if d.ErrorCode != "DB_LOCK_TIMEOUT" {
			if got[k] != 0 {
				t.Errorf("%s (%s) was redriven", k, d.ErrorCode)
			}
			continue
		}
		want++
		if got[k] != 1 {
			t.Errorf("%s reached orders-failed %d times, want exactly once", k, got[k])
		}
	}
	if want != n {
		t.Fatalf("%d lock timeouts in the DLT, want %d", want, n)
	}
}

// agentProcess is an in-process `opsctl agent` on its own factory and listener.
type agentProcess struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the agent's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startAgent(t *testing.T, brokers []string, args ...string) *agentProcess {
	t.Helper()
	return startAgentWithConfig(t, filepath.Join(t.TempDir(), "config.yaml"), brokers, args...)
}

// startAgentWithConfig starts the agent on the configuration file cfgPath.
func startAgentWithConfig(t *testing.T, cfgPath string, brokers []string, args ...string) *agentProcess {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	stderr := &syncBuffer{}
	ios.ErrOut = stderr
	f := &cmdutil.Factory{IOStreams: ios, ConfigPath: cfgPath, Brokers: brokers, Now: time.Now}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cmd *cobra.Command
	cmd = NewCmdAgent(f, func(o *Options) error {
		o.Listener = ln
		o.Getenv = func(string) string { return "" }
		return run(cmd, o)
	})
	cmd.SetArgs(append([]string{"--leader-elect", "never", "--log-format", "text"}, args...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	p := &agentProcess{url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1), stderr: stderr}
	go func() { p.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *agentProcess) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("agent: %v\n%s", err, p.stderr.String())
		}
		p.done <- nil // stop is idempotent
	case <-time.After(converge):
		t.Errorf("the agent did not stop within %s of its context ending", converge)
	}
}

func (p *agentProcess) get(t *testing.T, path string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(p.url + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(converge)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, converge, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentRedrivesServesMetricsAndKeepsTheLastGoodPolicy runs the agent alone against kfake
// with a policy file: it redrives the due records, its metrics show every DLT, a bad edit of
// the policy file is refused and reported while the last good policy goes on working, and a
// fixed file is taken again.
func TestAgentRedrivesServesMetricsAndKeepsTheLastGoodPolicy(t *testing.T) {
	c := replaytest.NewCluster(t)
	const n = 12
	seed(t, c, n)
	dir := t.TempDir()
	policy := writePolicy(t, dir, 1000)
	p := startAgent(t, c.ListenAddrs(), "--policy", policy, "--interval", "100ms", "--survey-interval", "100ms")

	eventually(t, "the due records are redriven", func() (bool, string) {
		got := len(replayedFrom(t, c, event.TopicOrdersFailed))
		return got == n, fmt.Sprintf("%d redriven", got)
	})
	eventually(t, "the metrics show the DLT", func() (bool, string) {
		_, body := p.get(t, "/metrics")
		return strings.Contains(body, metrics.DLTRedriven+`{dlt="orders-failed.DLT"} 12`) &&
			strings.Contains(body, metrics.DLTOperatorRecords+`{dlt="orders-failed.DLT"} 1`) &&
			strings.Contains(body, metrics.RedriveRecords+`{dlt="orders-failed.DLT",rule="locks"} 12`), body
	})
	if code, body := p.get(t, "/readyz"); code != 200 || !strings.Contains(body, "ok: single") {
		t.Fatalf("/readyz: %d %s", code, body)
	}

	// A bad edit: refused with its line, reported, and the last good policy still redrives.
	if err := os.WriteFile(policy, []byte("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n    maxReplays: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bad policy is reported", func() (bool, string) {
		code, body := p.get(t, "/readyz")
		_, m := p.get(t, "/metrics")
		return code == 503 && strings.Contains(body, "line 5: maxReplays 0") && strings.Contains(m, metrics.AgentPolicyValid+" 0"), body
	})
	replaytest.Produce(t, c, replaytest.Saga(1, 500, "DB_LOCK_TIMEOUT", 1, time.Now().Add(-time.Hour)))
	eventually(t, "the last good policy redrives a new record", func() (bool, string) {
		got := len(replayedFrom(t, c, event.TopicOrdersFailed))
		return got == n+1, fmt.Sprintf("%d redriven", got)
	})
	writePolicy(t, dir, 500)
	eventually(t, "the fixed policy is taken", func() (bool, string) {
		code, body := p.get(t, "/readyz")
		return code == 200, body
	})
	p.stop(t)
	assertExactlyOnce(t, c, n+1)
	if !strings.Contains(p.stderr.String(), "line 5: maxReplays 0") {
		t.Errorf("the refused policy was not logged:\n%s", p.stderr.String())
	}
}

// TestAgentFrozenBrokerReportsUnhealthyAndResumes freezes Kafka under a running agent: it
// reports unhealthy (naming the silent broker), keeps running and retrying, and redrives again
// once the broker answers.
func TestAgentFrozenBrokerReportsUnhealthyAndResumes(t *testing.T) {
	c := replaytest.NewCluster(t)
	seed(t, c, 3)
	p := startAgent(t, c.ListenAddrs(), "--policy", writePolicy(t, t.TempDir(), 1000), "--interval", "100ms",
		"--survey-interval", "100ms", "--timeout", "1s")
	eventually(t, "the first records are redriven", func() (bool, string) {
		got := len(replayedFrom(t, c, event.TopicOrdersFailed))
		return got == 3, fmt.Sprintf("%d redriven", got)
	})

	release := replaytest.Freeze(t, c)
	eventually(t, "the agent reports the frozen broker", func() (bool, string) {
		code, body := p.get(t, "/readyz")
		return code == 503 && strings.Contains(body, "did not answer"), body
	})
	select {
	case err := <-p.done:
		t.Fatalf("the agent exited on a frozen broker: %v", err)
	default:
	}
	if code, _ := p.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz %d on a frozen broker: a restart would not help", code)
	}

	release()
	replaytest.Produce(t, c, replaytest.Saga(2, 77, "DB_LOCK_TIMEOUT", 1, time.Now().Add(-time.Hour)))
	eventually(t, "the agent resumes", func() (bool, string) {
		code, body := p.get(t, "/readyz")
		got := len(replayedFrom(t, c, event.TopicOrdersFailed))
		return code == 200 && got == 4, fmt.Sprintf("%d redriven; %s", got, body)
	})
	p.stop(t)
	assertExactlyOnce(t, c, 4)
}

// TestAgentRefusesBadInput checks what the agent refuses before it starts anything.
func TestAgentRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--policy", "default", "--readonly"}, "read-only"},
		{[]string{"--policy", bad}, `line 2: rule "locks" claims nothing`},
		{[]string{}, "no redrive policy"},
		{[]string{"--policy", "default", "--interval", "0s"}, "--interval 0s"},
		{[]string{"--policy", "default", "--leader-elect", "sometimes"}, "want auto, always or never"},
		{[]string{"--policy", "default", "--lease-duration", "5s", "--renew-deadline", "10s"}, "want lease > renew deadline"},
		{[]string{"--policy", "default", "--leader-elect", "always", "--lease-namespace", "x"}, "leader election needs the Kubernetes API"},
		{[]string{"--policy", "default", "--canary-guard", "maybe"}, `--canary-guard "maybe": want auto, always or never`},
		{[]string{"--policy", "default", "--canary-envs", "dev,staging"}, `--canary-envs "staging": want dev, prod`},
		{[]string{"--policy", "default", "--canary-interval", "0s"}, "--canary-interval 0s"},
		{[]string{"--policy", "default", "--canary-guard", "always"}, "--canary-guard always: the context sets no gitops.repo (or gitops.dir) and no prometheus.url; nothing was started"},
	}
	for _, tt := range tests {
		ios, _, _, _ := iostreams.Test()
		f := &cmdutil.Factory{IOStreams: ios, ConfigPath: filepath.Join(dir, "none.yaml"), Brokers: []string{"127.0.0.1:1"}, Now: time.Now}
		t.Setenv("KUBECONFIG", filepath.Join(dir, "no-kubeconfig"))
		cmd := NewCmdAgent(f, nil)
		args := tt.args
		if slices.Contains(args, "--readonly") { // a global flag: the root sets it on the factory
			f.Readonly, args = true, slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--readonly" })
		}
		cmd.SetArgs(append(args, "--listen", "127.0.0.1:0"))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("agent %v: %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}

const childEnv = "OPSCTL_AGENT_CHILD_BROKERS"

// TestAgentChildProcess is not a test: it is the agent process the crash test starts and kills
// with SIGKILL (and starts again), so a crash is a real crash.
func TestAgentChildProcess(t *testing.T) {
	brokers := os.Getenv(childEnv)
	if brokers == "" {
		t.Skip("helper process for the crash test")
	}
	ios, _, _, _ := iostreams.Test()
	ios.ErrOut = os.Stderr
	f := &cmdutil.Factory{IOStreams: ios, ConfigPath: os.Getenv("OPSCTL_AGENT_CHILD_CONFIG"), Brokers: strings.Split(brokers, ","), Now: time.Now}
	cmd := NewCmdAgent(f, nil)
	cmd.SetArgs([]string{"--policy", os.Getenv("OPSCTL_AGENT_CHILD_POLICY"), "--leader-elect", "never", "--listen", "127.0.0.1:0",
		"--interval", "200ms", "--survey-interval", "1h", "--log-format", "text"})
	ctx, stop := signalContext()
	err := cmd.ExecuteContext(ctx)
	stop()
	fmt.Fprintf(os.Stderr, "child agent finished: %v\n", err)
	os.Exit(0)
}

// TestKilledAgentRestartedRedrivesExactlyOnce kills the agent with SIGKILL at every point of a
// redrive run's transactions, restarts it, and checks that every due dead letter reached its
// topic exactly once.
func TestKilledAgentRestartedRedrivesExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const ledger = "opsctl.replays"
	fences := int32(len(replay.TransactionalIDs(ordersDLT)) + 1)
	for _, pt := range replaytest.CrashPoints(event.TopicOrdersFailed, ledger, fences) {
		t.Run(pt.Name, func(t *testing.T) {
			const n = 45
			c := replaytest.NewCluster(t)
			seed(t, c, n)
			dir := t.TempDir()
			// 20 records a second: runs of three or more batches, as the crash points need.
			policy := writePolicy(t, dir, 20)
			ensureLedger(t, c, ledger)
			ids := replaytest.LookupTopicIDs(t, c, event.TopicOrdersFailed, ledger)
			child := func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^TestAgentChildProcess$")
				cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(c.ListenAddrs(), ","),
					"OPSCTL_AGENT_CHILD_POLICY="+policy, "OPSCTL_AGENT_CHILD_CONFIG="+filepath.Join(dir, "config.yaml"))
				return cmd
			}
			replaytest.KillAt(t, c, ids, pt, child())
			// Counted up to the last stable offset: the killed agent's open transaction is left
			// for the restarted one to fence.
			before := len(replaytest.ReadStable(t, c, event.TopicOrdersFailed))

			// Restarted, the agent redrives the rest.
			again := child()
			var out syncBuffer
			again.Stdout, again.Stderr = &out, &out
			if err := again.Start(); err != nil {
				t.Fatal(err)
			}
			stopped := false
			stop := func() {
				if !stopped {
					stopped = true
					_ = again.Process.Signal(syscall.SIGTERM)
					_ = again.Wait()
				}
			}
			defer stop()
			eventually(t, "the restarted agent redrives the rest", func() (bool, string) {
				got := len(replayedFrom(t, c, event.TopicOrdersFailed))
				return got == n, fmt.Sprintf("%d of %d redriven", got, n)
			})
			stop()
			t.Logf("committed before the kill: %d of %d", before, n)
			assertExactlyOnce(t, c, n)
			if !strings.Contains(out.String(), "child agent finished: <nil>") {
				t.Errorf("the restarted agent did not stop cleanly on SIGTERM:\n%s", out.String())
			}
		})
	}
}

// ensureLedger creates the ledger topic as the first replay would, so the crash points can
// recognise its produce requests by topic ID.
func ensureLedger(t *testing.T, c *kfake.Cluster, ledger string) {
	t.Helper()
	e, err := replay.New(replay.Config{NewClient: replaytest.NewClientFunc(c)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// A dry plan of nothing creates nothing; a replay of an empty selection creates the ledger.
	_, err = e.Replay(context.Background(), replay.Request{Topic: "payments-paid.DLT", Reason: "create the ledger"})
	if err != nil && !errors.Is(err, replay.ErrUnknownTopic) {
		t.Fatal(err)
	}
}

// signalContext is cancelled by SIGTERM or an interrupt, as cmd/opsctl's is.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

// guardProm answers the gate queries of order/prod: a 5xx ratio of 5.2 % over 600 requests,
// everything else absent.
func guardProm(t *testing.T) string {
	t.Helper()
	e, err := canary.NewGateEvaluator(config.Prometheus{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	target := canary.GateTarget{Service: "order", Env: "prod"}
	q5xx, _ := e.Query(canary.GateQueryCanary5xx, target)
	qcount, _ := e.Query(canary.GateQueryCanaryRequests, target)
	values := map[string]string{q5xx: "0.052", qcount: "600"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		v, ok := values[r.Form.Get("query")]
		if !ok {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			return
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795953600,%q]}]}}`, v)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAgentCanaryGuardRollsBackThroughGit: the agent, alone, with a context naming the GitOps
// repository and a Prometheus in which order/prod's canary breaches. Its canary-guard loop
// rolls the canary back in a commit of its own (the agent as author, the breach as reason);
// payment/dev's canary, without data, is left running.
func TestAgentCanaryGuardRollsBackThroughGit(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	c := replaytest.NewCluster(t)
	remote := gitopstest.NewRemote(t)
	op, err := gitops.Open(context.Background(), remote.Clone("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl := canary.New(op)
	for _, target := range [][2]string{{"prod", "order"}, {"dev", "payment"}} {
		p, err := ctrl.Plan(context.Background(), target[0], target[1], canary.Op{Action: canary.ActionStart, Tag: "1.1.0", SkipGates: true}, "release 1.1.0")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ctrl.Execute(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := yaml.Marshal(&config.Config{CurrentContext: "cluster", Contexts: map[string]*config.Context{"cluster": {
		Kafka:      kafka.Config{Brokers: c.ListenAddrs()},
		GitOps:     config.GitOps{Repo: remote.URL, Branch: "main"},
		Prometheus: config.Prometheus{URL: guardProm(t)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startAgentWithConfig(t, cfgPath, c.ListenAddrs(), "--policy", "default", "--canary-guard", "always", "--canary-interval", "100ms")

	values := func(env, svc string) gitops.Release {
		rel, err := gitops.ReadRelease(remote.File("gitops/envs/" + env + "/" + svc + "/values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return rel
	}
	eventually(t, "the guard rolls order/prod back", func() (bool, string) {
		rel := values("prod", "order")
		return !rel.Canary.Enabled && rel.Canary.Weight == 0, rel.String()
	})
	host, _ := os.Hostname()
	actor := "opsctl-agent@" + host
	msg := gitopstest.Git(t, remote.URL, "log", "-1", "--format=%an <%ae>|%cn%n%B", "main")
	for _, want := range []string{actor + " <" + actor + ">|" + actor, "auto-rollback: canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%)", "Opsctl-Action: canary-rollback"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("rollback commit lacks %q:\n%s", want, msg)
		}
	}
	if !values("dev", "payment").Canary.Enabled {
		t.Fatal("payment/dev was rolled back without data")
	}
	if code, body := p.get(t, "/status"); code != 200 || !strings.Contains(body, `"loop/canary-guard"`) {
		t.Fatalf("/status: %d %s", code, body)
	}
	// The commit reaches the remote before the guard's round returns and logs it: wait for the
	// line rather than stop the agent in between.
	eventually(t, "the rollback is logged", func() (bool, string) {
		return strings.Contains(p.stderr.String(), "canary rolled back"), p.stderr.String()
	})
	p.stop(t)
}
