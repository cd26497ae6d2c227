//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The opsctl agent against the real kube-apiserver's Lease: two agent processes (the opsctl
// binary of this checkout), one Kafka (kfake, in the test process), one Lease. One leads and
// redrives, the other waits; the leader is killed with SIGKILL in the middle of a redrive run
// and the other takes over within the lease time; every dead letter goes out exactly once.

// Lease timings of the test's agents: short, so a takeover is quick to watch.
const (
	e2eLease = 4 * time.Second
	e2eRenew = 3 * time.Second
	e2eRetry = 500 * time.Millisecond
)

// agentProc is one `opsctl agent` process.
type agentProc struct {
	name string
	cmd  *exec.Cmd
	url  string
	out  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgentProc starts `opsctl agent` as pod name, electing on the Lease opsctl-agent in ns,
// with extra flags added.
func startAgentProc(t *testing.T, name, cfgPath, policy, ns string, extra ...string) *agentProc {
	t.Helper()
	listen := freePort(t)
	args := []string{"agent", "--policy", policy, "--leader-elect", "always", "--lease-namespace", ns,
		"--lease-duration", e2eLease.String(), "--renew-deadline", e2eRenew.String(), "--retry-period", e2eRetry.String(),
		"--listen", listen, "--interval", "200ms", "--survey-interval", "1h", "--log-format", "text"}
	cmd := exec.Command(env.Opsctl, append(args, extra...)...)
	dir := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "OPSCTL_CONFIG=" + cfgPath, "POD_NAME=" + name}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{name: name, cmd: cmd, url: "http://" + listen, out: out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, out.String())
		}
	})
	return p
}

// status reads the agent's /status; ok is false while it does not answer.
func (p *agentProc) status() (agent.Status, bool) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(p.url + "/status")
	if err != nil {
		return agent.Status{}, false
	}
	defer resp.Body.Close()
	var st agent.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return agent.Status{}, false
	}
	return st, true
}

// replayedOnce counts, per dead letter, the records of orders-failed replayed from it.
func replayedCounts(t *testing.T, c *kfake.Cluster, stable bool) map[string]int {
	t.Helper()
	read := replaytest.ReadCommitted
	if stable {
		read = replaytest.ReadStable
	}
	out := map[string]int{}
	for _, r := range read(t, c, event.TopicOrdersFailed) {
		for _, h := range r.Headers {
			if h.Key == dlt.HeaderReplayedFrom {
				out[string(h.Value)]++
			}
		}
	}
	return out
}

func TestAgentsElectOneLeaderOnTheRealAPIServerAndTakeOver(t *testing.T) {
	requireFeature(t, "--leader-elect", "agent")
	kube, err := kubernetes.NewForConfig(env.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := fmt.Sprintf("opsctl-agent-e2e-%d", time.Now().UnixNano()%1_000_000)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	// Kafka with 300 due lock timeouts, redriven at 60 a second: a run lasts five seconds, long
	// enough to kill its agent in the middle of it.
	c := replaytest.NewCluster(t)
	const n = 300
	at := time.Now().Add(-time.Hour)
	var recs []*kgo.Record
	for i := 1; i <= n; i++ {
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, at))
	}
	replaytest.Produce(t, c, recs...)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n    rate: 60\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := yaml.Marshal(&config.Config{CurrentContext: "e2e", Contexts: map[string]*config.Context{"e2e": {
		Kafka: kafka.Config{Brokers: c.ListenAddrs()},
		Kube:  config.Kube{Kubeconfig: env.Kubeconfig},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	a := startAgentProc(t, "agent-a", cfgPath, policy, ns)
	var leader, standby *agentProc
	eventually(t, time.Minute, 100*time.Millisecond, "agent-a leads", func(context.Context) (bool, string, error) {
		st, ok := a.status()
		return ok && st.Role == agent.RoleLeader, fmt.Sprintf("%+v", st), nil
	})
	b := startAgentProc(t, "agent-b", cfgPath, policy, ns)
	leader, standby = a, b
	leaderStatus, _ := leader.status()
	eventually(t, time.Minute, 100*time.Millisecond, "agent-b stands by behind agent-a", func(context.Context) (bool, string, error) {
		st, ok := standby.status()
		return ok && st.Role == agent.RoleStandby && st.Leader == leaderStatus.Identity && st.Healthy, fmt.Sprintf("%+v", st), nil
	})
	lease, err := kube.CoordinationV1().Leases(ns).Get(ctx, "opsctl-agent", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != leaderStatus.Identity {
		t.Fatalf("Lease %s/opsctl-agent: %+v, %v; want it held by %s", ns, lease, err, leaderStatus.Identity)
	}

	// Kill the leader once part of the records went out, in the middle of its run.
	eventually(t, 2*time.Minute, 20*time.Millisecond, "the leader is redriving", func(context.Context) (bool, string, error) {
		got := len(replayedCounts(t, c, true))
		return got >= 60, fmt.Sprintf("%d redriven", got), nil
	})
	if err := leader.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = leader.cmd.Wait()
	before := len(replayedCounts(t, c, true))

	eventually(t, time.Minute, 50*time.Millisecond, "agent-b takes over", func(context.Context) (bool, string, error) {
		st, ok := standby.status()
		return ok && st.Role == agent.RoleLeader, fmt.Sprintf("%+v", st), nil
	})
	takeover := time.Since(killed)
	t.Logf("takeover %s after the leader was killed (lease %s, retry period %s); %d of %d committed before", takeover.Round(time.Millisecond), e2eLease, e2eRetry, before, n)
	// Within the lease time (it must first see the lease expire), plus a margin for a loaded
	// machine.
	if limit := e2eLease + 2*e2eRetry + 10*time.Second; takeover > limit {
		t.Errorf("takeover took %s, more than the lease %s and a margin (%s)", takeover, e2eLease, limit)
	}

	eventually(t, 2*time.Minute, 100*time.Millisecond, "the new leader redrives the rest", func(context.Context) (bool, string, error) {
		got := len(replayedCounts(t, c, true))
		return got == n, fmt.Sprintf("%d of %d", got, n), nil
	})
	if err := standby.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := standby.cmd.Wait(); err != nil {
		t.Errorf("agent-b on SIGTERM: %v", err)
	}
	counts := replayedCounts(t, c, false)
	for k, v := range counts {
		if v != 1 {
			t.Errorf("%s redriven %d times, want exactly once", k, v)
		}
	}
	if len(counts) != n {
		t.Errorf("%d dead letters redriven, want %d", len(counts), n)
	}
	// Stopped cleanly, the last leader released the lease: a new agent need not wait for it.
	lease, err = kube.CoordinationV1().Leases(ns).Get(ctx, "opsctl-agent", metav1.GetOptions{})
	if err != nil || (lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "") {
		t.Errorf("after a clean stop the lease is %+v, %v; want it released", lease.Spec, err)
	}
	// The history credits both agents: their identities are the actors of the runs.
	e, err := replay.New(replay.Config{NewClient: replaytest.NewClientFunc(c)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	runs, err := e.History(ctx, "orders-failed.DLT")
	if err != nil {
		t.Fatal(err)
	}
	actors := map[string]bool{}
	for _, r := range runs {
		actors[r.Actor] = true
	}
	if !actors["opsctl-agent@agent-a"] || !actors["opsctl-agent@agent-b"] {
		t.Errorf("runs by %v, want both agents", actors)
	}
}

// TestAgentApplicationsSyncFromGitOps checks Argo CD deploys the agent from gitops/ like the
// services: opsctl-agent-<env> Synced and Healthy, its Role on its Lease live.
func TestAgentApplicationsSyncFromGitOps(t *testing.T) {
	l := newLoop(t)
	for _, envName := range []string{"dev", "prod"} {
		app := "opsctl-agent-" + envName
		if _, err := os.Stat(filepath.Join(env.RepoRoot, "gitops", "argocd", "opsctl-agent.yaml")); err != nil {
			missing(t, "this checkout has no gitops/argocd/opsctl-agent.yaml")
		}
		waitAppState(t, l.apps, app, "", 3*time.Minute)
		ns := "come2us-" + envName
		role, err := l.kube.RbacV1().Roles(ns).Get(context.Background(), "opsctl-agent-leader-election", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", app, err)
		}
		if len(role.Rules) == 0 || role.Rules[0].Resources[0] != "leases" {
			t.Errorf("%s: Role %+v", app, role.Rules)
		}
		if _, err := l.kube.CoreV1().ConfigMaps(ns).Get(context.Background(), "opsctl-agent-redrive-policy", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: %v", app, err)
		}
		if _, err := l.kube.AppsV1().Deployments(ns).Get(context.Background(), "opsctl-agent", metav1.GetOptions{}); apierrors.IsNotFound(err) {
			t.Errorf("%s: no Deployment opsctl-agent", app)
		}
	}
}
