//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/kafka"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// The canary guard of `opsctl agent` on the real loop: an operator starts a canary, the
// leader-elected agent watches it, a breach is injected into the Prometheus API the agent
// reads, and the agent's rollback commit goes through git and Argo CD to the live
// VirtualService.

// promAPI is a Prometheus HTTP API (instant queries) whose answers the test sets, keyed by the
// PromQL the gates send; unknown queries get an empty vector, as Prometheus answers for an
// absent series.
type promAPI struct {
	mu     sync.Mutex
	values map[string]string
}

func (p *promAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	p.mu.Lock()
	v, ok := p.values[r.Form.Get("query")]
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		return
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,%q]}]}}`, time.Now().Unix(), v)
}

func (p *promAPI) set(values map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.values = values
}

// gateValues maps the gate queries named in byName, rendered for target, to their figures.
func gateValues(t *testing.T, target canary.GateTarget, byName map[string]string) map[string]string {
	t.Helper()
	e, err := canary.NewGateEvaluator(config.Prometheus{URL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, v := range byName {
		q, err := e.Query(name, target)
		if err != nil {
			t.Fatal(err)
		}
		out[q] = v
	}
	return out
}

func TestCanaryGuardInTheAgentRollsBackThroughArgoCD(t *testing.T) {
	requireFeature(t, "--canary-guard", "agent")
	const svc, envName = "payment", "prod"
	l := newLoop(t)
	alice := newOperator(t, "alice", nil)
	resetCanary(t, l, alice, svc, envName)
	app := appName(svc, envName)

	// The canary, healthy: every rollback criterion passes.
	target := canary.GateTarget{Service: svc, Env: envName}
	healthy := map[string]string{
		canary.GateQueryCanary5xx: "0.001", canary.GateQueryCanaryLatency: "120", canary.GateQueryStableLatency: "110",
		canary.GateQueryBusinessErrors: "0", canary.GateQueryPodsReady: "1", canary.GateQueryCPU: "0.3",
		canary.GateQueryMemory: "0.4", canary.GateQueryCanaryRequests: "1200", canary.GateQueryDeadLetters: "0",
	}
	prom := &promAPI{}
	prom.set(gateValues(t, target, healthy))
	promSrv := httptest.NewServer(prom)
	t.Cleanup(promSrv.Close)

	rev := alice.mutate("start", svc, "--env", envName, "--image-tag", "1.2.0", "--reason", "e2e: a canary for the agent's guard")
	l.refresh(app)
	waitAppState(t, l.apps, app, rev, 2*time.Minute)
	l.waitLive(svc, envName, want(true, 10))

	// The agent: leader-elected on a Lease of the real apiserver, guarding prod's canaries on
	// the Prometheus above and committing to the environment's GitOps repository.
	kube, err := kubernetes.NewForConfig(env.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("opsctl-guard-e2e-%d", time.Now().UnixNano()%1_000_000)
	if _, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	c := replaytest.NewCluster(t)
	dir := t.TempDir()
	cfg, err := yaml.Marshal(&config.Config{CurrentContext: "cluster", Contexts: map[string]*config.Context{"cluster": {
		Kafka:      kafka.Config{Brokers: c.ListenAddrs()},
		Kube:       config.Kube{Kubeconfig: env.Kubeconfig},
		GitOps:     config.GitOps{Repo: env.GitURL, Branch: "main"},
		Prometheus: config.Prometheus{URL: promSrv.URL},
		Canary:     config.Canary{FailureLimit: 2},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	a := startAgentProc(t, "guard-0", cfgPath, "default", ns,
		"--canary-guard", "always", "--canary-envs", envName, "--canary-interval", interval.String())
	eventually(t, time.Minute, 100*time.Millisecond, "the agent leads with a healthy canary guard", func(context.Context) (bool, string, error) {
		st, ok := a.status()
		guard := false
		for _, comp := range st.Components {
			guard = guard || (comp.Name == "loop/canary-guard" && comp.Healthy && !comp.Idle)
		}
		return ok && st.Role == agent.RoleLeader && guard, fmt.Sprintf("%+v", st), nil
	})
	// A round has judged the healthy canary (the loop reported healthy) and left it alone.
	head := alice.repo.git(alice.repo.dir, "ls-remote", "origin", "refs/heads/main")
	if st := alice.canaryStatus(svc, envName); !st.Canary.Enabled || st.Canary.Weight != 10 {
		t.Fatalf("the guard touched a healthy canary: %+v", st.Canary)
	}

	// The breach: v2 answers 5.2 % of its requests with a 5xx.
	injected := time.Now()
	prom.set(gateValues(t, target, map[string]string{
		canary.GateQueryCanary5xx: "0.052", canary.GateQueryCanaryLatency: "120", canary.GateQueryStableLatency: "110",
		canary.GateQueryBusinessErrors: "0", canary.GateQueryPodsReady: "1", canary.GateQueryCPU: "0.3",
		canary.GateQueryMemory: "0.4", canary.GateQueryCanaryRequests: "1200", canary.GateQueryDeadLetters: "0",
	}))
	var commit string
	eventually(t, 2*time.Minute, 200*time.Millisecond, "the agent's rollback commit", func(context.Context) (bool, string, error) {
		out := alice.repo.git(alice.repo.dir, "ls-remote", "origin", "refs/heads/main")
		if out == head {
			return false, "main unchanged", nil
		}
		commit, _, _ = strings.Cut(out, "\t")
		return true, "", nil
	})
	committed := time.Since(injected)
	alice.repo.git(alice.repo.dir, "fetch", "-q", "origin", "main")
	msg := alice.repo.git(alice.repo.dir, "log", "-1", "--format=%an|%B", commit)
	for _, want := range []string{"opsctl-agent@guard-0|", "auto-rollback: canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%)",
		"Opsctl-Action: canary-rollback", "Opsctl-Service: " + svc, "Opsctl-Env: " + envName} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the rollback commit %.8s lacks %q:\n%s\nagent log:\n%s", commit, want, msg, a.out.String())
		}
	}

	// Argo CD syncs it (the refresh stands in for the repository webhook) and v2 gets nothing.
	l.refresh(app)
	waitAppState(t, l.apps, app, commit, 2*time.Minute)
	l.waitLive(svc, envName, want(false, 0))
	live := time.Since(injected)
	t.Logf("breach injected -> agent's rollback commit %.8s after %s (failure limit 2, guard interval %s); -> live weight 0 after %s",
		commit, committed.Round(time.Millisecond), interval, live.Round(time.Millisecond))
	if st := alice.canaryStatus(svc, envName); st.Canary.Enabled || st.Canary.Weight != 0 {
		t.Errorf("canary status after the guard's rollback: %+v", st.Canary)
	}
	// One rollback, not one per round: the breach persists but the canary is gone.
	eventually(t, 30*time.Second, 500*time.Millisecond, "the guard stays healthy with nothing to guard", func(context.Context) (bool, string, error) {
		st, ok := a.status()
		return ok && st.Healthy, fmt.Sprintf("%+v", st), nil
	})
	if out := alice.repo.git(alice.repo.dir, "ls-remote", "origin", "refs/heads/main"); !strings.HasPrefix(out, commit) {
		t.Errorf("main moved after the rollback: %s", out)
	}
}
