package canary_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

const argoToken = "argo-token"

// argoApp renders order-service-prod as Argo CD reports it.
type argoApp struct {
	rev, sync, health, healthMsg string
	opPhase, opMsg               string
	manual                       bool
}

func (a argoApp) yaml() string {
	app := argocdtest.App{Automated: !a.manual, Revision: a.rev, Sync: a.sync, Health: a.health, HealthMessage: a.healthMsg}
	if a.opPhase != "" {
		app.Operation = &argocdtest.Operation{Phase: a.opPhase, Message: a.opMsg,
			Started: "2026-11-25T11:00:00Z", Finished: "2026-11-25T11:00:30Z"}
	}
	return app.YAML()
}

// promAPI answers Prometheus instant queries with the API's JSON; values are keyed by PromQL
// and an unknown query gets an empty vector (metric absent).
type promAPI struct {
	mu     sync.Mutex
	values map[string]string
}

func (p *promAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	p.mu.Lock()
	v, ok := p.values[r.Form.Get("query")]
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
		return
	}
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795953600,%q]}]}}`, v)
}

// liveEnv is env plus Argo CD (argocdtest), a cluster (kubesim) and Prometheus, all named in
// the context of the config file.
type liveEnv struct {
	*env
	argo    *argocdtest.Server
	kube    *kubesim.Server
	prom    *promAPI
	promURL string
}

func newLiveEnv(t *testing.T, app argoApp) *liveEnv {
	t.Helper()
	// Argo CD's environment variables are cleared once, in TestMain.
	e := newEnv(t)
	le := &liveEnv{env: e, argo: argocdtest.Start(t, argoToken, app.yaml()), kube: kubesim.New(), prom: &promAPI{values: map[string]string{}}}
	base, err := le.kube.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { le.kube.Close() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := le.kube.WriteKubeconfig(kubeconfig, base, "sim", "come2us-prod"); err != nil {
		t.Fatal(err)
	}
	ps := httptest.NewServer(le.prom)
	t.Cleanup(ps.Close)
	le.promURL = ps.URL
	cfg := fmt.Sprintf(`current-context: prod
contexts:
  prod:
    argocd:
      server: %q
      plaintext: true
      token: %q
    kube:
      kubeconfig: %q
      context: sim
    prometheus:
      url: %q
`, le.argo.Addr(), argoToken, kubeconfig, ps.URL)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	le.setWeights(100, 0)
	le.apply(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": "order-service", "namespace": "come2us-prod"},
		"spec": map[string]any{"host": "order-service", "subsets": []any{
			map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
			map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}}}}})
	return le
}

func (le *liveEnv) apply(obj map[string]any) {
	if _, err := le.kube.Apply(&unstructured.Unstructured{Object: obj}); err != nil {
		le.t.Error(err)
	}
}

// setWeights plays Argo CD applying the chart's VirtualService.
func (le *liveEnv) setWeights(v1, v2 int64) {
	dest := func(subset string, w int64) map[string]any {
		return map[string]any{"destination": map[string]any{"host": "order-service", "subset": subset}, "weight": w}
	}
	le.apply(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "order-service", "namespace": "come2us-prod"},
		"spec":     map[string]any{"hosts": []any{"order-service"}, "http": []any{map[string]any{"route": []any{dest("v1", v1), dest("v2", v2)}}}}})
}

// canaryPods plays Kubernetes: Deployment order-service-v2 with ready pods.
func (le *liveEnv) canaryPods(ready int) {
	le.apply(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "order-service-v2", "namespace": "come2us-prod"},
		"spec":     map[string]any{"replicas": int64(ready)},
		"status":   map[string]any{"readyReplicas": int64(ready)}})
	for i := 0; i < ready; i++ {
		le.apply(map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": fmt.Sprintf("order-service-v2-%d", i), "namespace": "come2us-prod",
				"labels": map[string]any{"app": "order-service", "version": "v2"}},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}})
	}
}

func (le *liveEnv) argoApply(a argoApp) {
	if err := le.argo.Apply(a.yaml()); err != nil {
		le.t.Error(err)
	}
}

// metrics sets the gate figures by query name.
func (le *liveEnv) metrics(byName map[string]string) {
	le.t.Helper()
	e, err := canary.NewGateEvaluator(config.Prometheus{URL: le.promURL})
	if err != nil {
		le.t.Fatal(err)
	}
	values := map[string]string{}
	for name, v := range byName {
		q, err := e.Query(name, canary.GateTarget{Service: "order", Env: "prod"})
		if err != nil {
			le.t.Fatal(err)
		}
		values[q] = v
	}
	le.prom.mu.Lock()
	le.prom.values = values
	le.prom.mu.Unlock()
}

// healthy are figures every criterion passes on.
var healthy = map[string]string{
	canary.GateQueryCanary5xx: "0", canary.GateQueryCanaryLatency: "120", canary.GateQueryStableLatency: "110",
	canary.GateQueryBusinessErrors: "0.002", canary.GateQueryCPU: "0.41", canary.GateQueryMemory: "0.52",
	canary.GateQueryCanaryRequests: "1200", canary.GateQueryDeadLetters: "0",
}

func with(base map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range base {
		out[a] = b
	}
	out[k] = v
	return out
}

const oldRevision = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"

func TestStatusLiveAndDrift(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	head := le.remote.Head()
	status := func() string { return le.ok("canary", "status", "order", "--env", "prod") }

	// Argo CD has not seen the pushed commit yet.
	if out := status(); !strings.Contains(out, "sync pending (git ahead of Argo CD): git at "+head[:7]+", Argo CD at 3f2a9c1") ||
		!strings.Contains(out, "LIVE") || !strings.Contains(out, "DRIFT") {
		t.Fatalf("before Argo CD synced:\n%s", out)
	}
	// Synced, and the VirtualService carries 10%.
	le.argoApply(argoApp{rev: head, sync: "Synced", health: "Healthy", opPhase: "Succeeded"})
	le.setWeights(90, 10)
	out := status()
	if !strings.Contains(out, "in sync") || !regexpMatch(`1\.1\.0\s+10%\s+10%`, out) {
		t.Fatalf("in sync:\n%s", out)
	}
	golden(t, "status-live.txt", le.normalise(out))
	// Someone edits the VirtualService by hand.
	le.setWeights(50, 50)
	out = status()
	if !strings.Contains(out, "drift (live differs from what Argo CD synced): live v2 50%, git and Argo CD say 10%") {
		t.Fatalf("drift:\n%s", out)
	}
	js := le.ok("canary", "status", "order", "--env", "prod", "-o", "json")
	if !strings.Contains(js, `"verdict": "drift (live differs from what Argo CD synced)"`) || !strings.Contains(js, `"liveV2": 50`) {
		t.Fatalf("drift JSON:\n%s", js)
	}
	// --live=false keeps the git-only view.
	if out := le.ok("canary", "status", "order", "--env", "prod", "--live=false"); strings.Contains(out, "DRIFT") {
		t.Fatalf("--live=false:\n%s", out)
	}
}

func TestMutateWait(t *testing.T) {
	t.Parallel()
	const failMsg = `one or more objects failed to apply, reason: VirtualService.networking.istio.io "order-service" is invalid`
	const degradedMsg = `Deployment "order-service-v2" exceeded its progress deadline`
	tests := []struct {
		name    string
		initial argoApp
		// controller plays Argo CD once opsctl asked it to refresh (auto-sync) or to sync.
		controller func(le *liveEnv, head string)
		timeout    string
		wantErr    func(head string) string
	}{
		{name: "success", initial: argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"}, timeout: "20s",
			controller: func(le *liveEnv, head string) {
				le.argoApply(argoApp{rev: head, sync: "OutOfSync", health: "Healthy", opPhase: "Running"})
				le.setWeights(90, 10)
				le.argoApply(argoApp{rev: head, sync: "Synced", health: "Healthy", opPhase: "Succeeded"})
			}},
		{name: "sync failure", initial: argoApp{rev: oldRevision, sync: "Synced", health: "Healthy", manual: true}, timeout: "20s",
			controller: func(le *liveEnv, head string) {
				le.argoApply(argoApp{rev: head, sync: "OutOfSync", health: "Healthy", opPhase: "Failed", opMsg: failMsg, manual: true})
			},
			wantErr: func(head string) string {
				return "Argo CD failed to sync order-service-prod at " + head[:7] + ": " + failMsg
			}},
		{name: "health degraded", initial: argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"}, timeout: "20s",
			controller: func(le *liveEnv, head string) {
				le.setWeights(90, 10)
				le.argoApply(argoApp{rev: head, sync: "Synced", health: "Degraded", healthMsg: degradedMsg, opPhase: "Succeeded"})
			},
			wantErr: func(head string) string {
				return "order-service-prod is Degraded after syncing " + head[:7] + ": " + degradedMsg
			}},
		{name: "timeout", initial: argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"}, timeout: "1s",
			controller: func(le *liveEnv, head string) {
				le.argoApply(argoApp{rev: head, sync: "Synced", health: "Progressing", healthMsg: "Deployment order-service-v2: 0 of 1 updated replicas are available", opPhase: "Succeeded"})
			},
			wantErr: func(head string) string {
				return "timed out after 1s waiting for order-service-prod at " + head[:7] + "; did not arrive: healthy (Argo CD: Progressing: Deployment order-service-v2: 0 of 1 updated replicas are available); live weights v1 90% / v2 10% (live: v1 100% / v2 0%)"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			le := newLiveEnv(t, tt.initial)
			play := func() { tt.controller(le, le.remote.Head()) }
			if tt.initial.manual {
				le.argo.OnSync = func(argocdtest.SyncRequest) { play() }
			} else {
				le.argo.OnRefresh = func(string, bool) { play() }
			}
			r := le.run(nil, "canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0",
				"--yes", "--wait", "--timeout", tt.timeout, "--gitops-dir", le.dir)
			head := le.remote.Head()
			if !strings.Contains(string(le.remote.File("gitops/envs/prod/order/values.yaml")), "weight: 10") {
				t.Fatal("the change was not pushed")
			}
			if tt.wantErr == nil {
				if r.err != nil {
					t.Fatalf("--wait: %v\n%s", r.err, r.errOut)
				}
				if !strings.Contains(r.errOut, "live VirtualService carries v1 90% / v2 10%") {
					t.Fatalf("progress:\n%s", r.errOut)
				}
				return
			}
			if r.err == nil || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
				t.Fatalf("err %v (exit %d), want exit 1", r.err, cmdutil.ExitCode(r.err))
			}
			want := "is pushed as " + head[:12] + ", but: " + tt.wantErr(head)
			if !strings.HasSuffix(r.err.Error(), want) || strings.Contains(r.err.Error(), "\n") {
				t.Fatalf("error\n got: %s\nwant suffix: %s", r.err, want)
			}
		})
	}
	// --wait with --dry-run is a usage error.
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	r := le.run(nil, "canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "r", "--dry-run", "--wait", "--gitops-dir", le.dir)
	if cmdutil.ExitCode(r.err) != cmdutil.ExitUsage {
		t.Fatalf("--wait --dry-run = %v", r.err)
	}
}

func TestCheckExitCodes(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	r := le.run(nil, "canary", "check", "order", "--env", "prod", "--gitops-dir", le.dir)
	if r.err == nil || r.err.Error() != "no canary is running for order/prod; nothing to check" {
		t.Fatalf("check without a canary = %v", r.err)
	}
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	le.canaryPods(2)

	le.metrics(healthy)
	r = le.run(nil, "canary", "check", "order", "--env", "prod", "--gitops-dir", le.dir)
	if r.err != nil {
		t.Fatalf("check with healthy figures: %v\n%s", r.err, r.out)
	}
	golden(t, "check-pass.txt", r.out)

	le.metrics(with(healthy, canary.GateQueryCanary5xx, "0.031"))
	r = le.run(nil, "canary", "check", "order", "--env", "prod", "--gitops-dir", le.dir)
	if !errors.Is(r.err, cmdutil.ErrSilent) || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
		t.Fatalf("check with a breach = %v", r.err)
	}
	golden(t, "check-fail.txt", r.out)

	// No data for CPU: unknown, and unknown is not a pass.
	noCPU := with(healthy, canary.GateQueryCanary5xx, "0")
	delete(noCPU, canary.GateQueryCPU)
	le.metrics(noCPU)
	r = le.run(nil, "canary", "check", "order", "--env", "prod", "--gitops-dir", le.dir, "-o", "json")
	if cmdutil.ExitCode(r.err) != cmdutil.ExitError || !strings.Contains(r.out, `"verdict": "unknown"`) {
		t.Fatalf("check without CPU data = %v\n%s", r.err, r.out)
	}
}

// TestStepBakeTime: a step is refused while the current weight is younger than the
// context's bake time, saying how long remains; a rollback goes through at once.
func TestStepBakeTime(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	cfg, err := os.ReadFile(le.config)
	if err != nil {
		t.Fatal(err)
	}
	// Commits are dated 10:00 and the clock says 12:00: a 3-hour bake has 1 hour to go.
	if err := os.WriteFile(le.config, append(cfg, "    canary:\n      bakeTime: 3h\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	le.canaryPods(1)
	le.metrics(healthy)
	head := le.remote.Head()
	r := le.run(nil, "canary", "step", "order", "--env", "prod", "--reason", "phase 0 ok", "--yes", "--gitops-dir", le.dir)
	if !errors.Is(r.err, canary.ErrBaking) || !strings.Contains(r.err.Error(), "10% was committed 2h0m0s ago") ||
		!strings.Contains(r.err.Error(), "1h0m0s remain (try again after 13:00:00 UTC") || le.remote.Head() != head {
		t.Fatalf("step during the bake = %v", r.err)
	}
	le.ok("canary", "rollback", "order", "--env", "prod", "--reason", "not worth the wait", "--yes")
	if le.remote.Head() == head {
		t.Fatal("the rollback did not push")
	}
}

// TestStepGate: gates are on by default. A step while a gate fails is refused, shows the gate
// table and changes nothing in git; --skip-gates with a reason moves traffic and the commit
// records the skip; once every figure passes, a plain step goes through.
func TestStepGate(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	le.canaryPods(1)
	head := le.remote.Head()

	// Phase 0 demands no errors; 0.2% 5xx is below every rollback threshold but blocks the step.
	le.metrics(with(healthy, canary.GateQueryCanary5xx, "0.002"))
	r := le.run(nil, "canary", "step", "order", "--env", "prod", "--reason", "phase 0 ok", "--yes", "--gitops-dir", le.dir)
	want := "gate metrics: phase 0 (0% -> 10%) may not be left yet: canary 5xx rate (no errors) fail: 0.20% (pass if ≤ 0%); nothing was changed"
	var ge *canary.GateError
	if !errors.As(r.err, &ge) || !strings.HasPrefix(r.err.Error(), want) || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
		t.Fatalf("gated step\n got: %v\nwant: %s", r.err, want)
	}
	if !strings.Contains(r.errOut, "CRITERION") {
		t.Fatalf("the gate table was not shown:\n%s", r.errOut)
	}
	if le.remote.Head() != head {
		t.Fatal("a gated step pushed")
	}
	// A set upwards and a promote are gated alike; the old --gate flag is accepted and changes nothing.
	for _, args := range [][]string{
		{"canary", "set", "order", "--env", "prod", "--weight", "30", "--reason", "manual", "--yes"},
		{"canary", "promote", "order", "--env", "prod", "--force", "--reason", "ship it", "--yes", "--gate"},
	} {
		if r := le.run(nil, append(args, "--gitops-dir", le.dir)...); !errors.As(r.err, &ge) {
			t.Fatalf("%v: err = %v, want a gate refusal", args, r.err)
		}
	}
	if le.remote.Head() != head {
		t.Fatal("a gated set or promote pushed")
	}
	// The operator overrides, with a reason the commit records.
	le.ok("canary", "set", "order", "--env", "prod", "--weight", "30", "--reason", "known 5xx on a retired endpoint", "--skip-gates", "--yes")
	msg := gitopstest.Git(t, le.remote.URL, "log", "-1", "--format=%B", "main")
	if !strings.Contains(msg, "\nCanary-Gates-Skipped: known 5xx on a retired endpoint") {
		t.Fatalf("the skip is not recorded:\n%s", msg)
	}
	// Lowering the weight is never refused.
	le.ok("canary", "set", "order", "--env", "prod", "--weight", "10", "--reason", "back", "--yes")
	// All figures pass: the gated step goes through.
	le.metrics(healthy)
	le.ok("canary", "step", "order", "--env", "prod", "--reason", "phase 0 ok", "--yes")
	if !strings.Contains(string(le.remote.File("gitops/envs/prod/order/values.yaml")), "weight: 30") {
		t.Fatal("the gated step did not push 30%")
	}
}

// TestStepWithoutPrometheusIsRefused: a context with no Prometheus cannot judge a canary, so
// the step is refused, saying so, and changes nothing; with --skip-gates it moves.
func TestStepWithoutPrometheusIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release", "--skip-gates", "--yes")
	head := e.remote.Head()
	r := e.run(nil, "canary", "step", "order", "--env", "prod", "--reason", "phase 0 ok", "--yes", "--gitops-dir", e.dir)
	if !errors.Is(r.err, canary.ErrNoPrometheus) || !errors.Is(r.err, canary.ErrNoGates) || !strings.Contains(r.err.Error(), "no Prometheus") ||
		cmdutil.ExitCode(r.err) != cmdutil.ExitError {
		t.Fatalf("step without Prometheus: %v", r.err)
	}
	if e.remote.Head() != head {
		t.Fatal("a step without gates pushed")
	}
	e.ok("canary", "step", "order", "--env", "prod", "--reason", "Prometheus migration, watched by hand", "--skip-gates", "--yes")
	if e.remote.Head() == head {
		t.Fatal("--skip-gates did not push")
	}
}

func TestWatchAutoRollback(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	le.canaryPods(1)
	le.metrics(with(healthy, canary.GateQueryCanary5xx, "0.052"))

	r := le.run(nil, "canary", "watch", "order", "--env", "prod", "--failure-limit", "-1", "--gitops-dir", le.dir)
	if r.err == nil || !strings.Contains(r.err.Error(), "--failure-limit must be at least 1") {
		t.Fatalf("watch --failure-limit -1 = %v", r.err)
	}
	r = le.run(nil, "--readonly", "canary", "watch", "order", "--env", "prod", "--auto-rollback", "--yes", "--gitops-dir", le.dir)
	if !errors.Is(r.err, cmdutil.ErrReadonly) {
		t.Fatalf("watch --auto-rollback under --readonly = %v", r.err)
	}
	r = le.run(nil, "canary", "watch", "order", "--env", "prod", "--auto-rollback", "--gitops-dir", le.dir)
	if !errors.Is(r.err, cmdutil.ErrConfirmationNeeded) {
		t.Fatalf("watch --auto-rollback without --yes and without a terminal = %v", r.err)
	}

	r = le.run(nil, "canary", "watch", "order", "--env", "prod", "--auto-rollback", "--yes", "--interval", "1s", "--gitops-dir", le.dir)
	if !errors.Is(r.err, cmdutil.ErrSilent) || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
		t.Fatalf("watch after a breach = %v\n%s", r.err, r.errOut)
	}
	// The breach must hold for 2 consecutive rounds (the default failure limit): the first is
	// reported with its count, the second rolls back.
	line := "12:00:00 fail: canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%)\n"
	if r.out != line+line {
		t.Fatalf("watch output %q", r.out)
	}
	reason := "auto-rollback: canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%)"
	if !strings.Contains(r.errOut, "breach 1 of 2: rolling back if the next 1 round fails too\n") || !strings.Contains(r.errOut, "rolled back order/prod: "+reason) {
		t.Fatalf("stderr:\n%s", r.errOut)
	}
	values := string(le.remote.File("gitops/envs/prod/order/values.yaml"))
	if !strings.Contains(values, "enabled: false") || !strings.Contains(values, "weight: 0") {
		t.Fatalf("values after the auto-rollback:\n%s", values)
	}
	msg := gitopstest.Git(t, le.remote.URL, "log", "-1", "--format=%B", "main")
	if !strings.Contains(msg, reason) || !strings.Contains(msg, "Opsctl-Action: canary-rollback") {
		t.Fatalf("rollback commit:\n%s", msg)
	}
	// Nothing left to watch.
	r = le.run(nil, "canary", "watch", "order", "--env", "prod", "--interval", "1s", "--gitops-dir", le.dir)
	if r.err == nil || r.err.Error() != "no canary is running for order/prod; nothing to watch" {
		t.Fatalf("watch without a canary = %v", r.err)
	}
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// TestWatchAutoRollbackWithADirtyWorkingCopy: the operator has uncommitted edits in the very
// values file the rollback changes. The auto-rollback is opsctl's own write and goes through a
// clone of its own, so it lands anyway, under the operator's git identity, and the edits stay.
func TestWatchAutoRollbackWithADirtyWorkingCopy(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	le.canaryPods(1)
	le.metrics(with(healthy, canary.GateQueryCanary5xx, "0.052"))
	values := filepath.Join(le.dir, "gitops/envs/prod/order/values.yaml")
	data, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(data, []byte("# half-done edit, not committed\n")...)
	if err := os.WriteFile(values, edited, 0o644); err != nil {
		t.Fatal(err)
	}

	r := le.run(nil, "canary", "watch", "order", "--env", "prod", "--auto-rollback", "--yes", "--interval", "1s", "--gitops-dir", le.dir)
	if !errors.Is(r.err, cmdutil.ErrSilent) || !strings.Contains(r.errOut, "rolled back order/prod") {
		t.Fatalf("watch with a dirty working copy = %v\n%s", r.err, r.errOut)
	}
	remote := string(le.remote.File("gitops/envs/prod/order/values.yaml"))
	if !strings.Contains(remote, "enabled: false") || !strings.Contains(remote, "weight: 0") {
		t.Fatalf("the rollback did not land:\n%s", remote)
	}
	if author := gitopstest.Git(t, le.remote.URL, "log", "-1", "--format=%an", "main"); author != "Alice" {
		t.Errorf("rollback committed by %q, want the operator Alice", author)
	}
	if got, _ := os.ReadFile(values); string(got) != string(edited) {
		t.Error("the operator's uncommitted edit was lost")
	}
}

// TestWatchAutoRollbackOutlivesARefusedPush: the remote refuses the first rollback push (a
// branch locked for a moment). The watch reports it, carries on, and the next breaching round
// rolls back; before, the watch exited and left the canary on its failing version.
func TestWatchAutoRollbackOutlivesARefusedPush(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: oldRevision, sync: "Synced", health: "Healthy"})
	le.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--yes")
	le.canaryPods(1)
	le.metrics(with(healthy, canary.GateQueryCanary5xx, "0.052"))
	count := filepath.Join(t.TempDir(), "rejected")
	hook := fmt.Sprintf("#!/bin/sh\nif [ ! -e %[1]q ]; then : > %[1]q; echo 'the branch is locked for maintenance' >&2; exit 1; fi\nexit 0\n", count)
	if err := os.WriteFile(filepath.Join(le.remote.URL, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}

	r := le.run(nil, "canary", "watch", "order", "--env", "prod", "--auto-rollback", "--yes", "--interval", "1s", "--gitops-dir", le.dir)
	if !errors.Is(r.err, cmdutil.ErrSilent) {
		t.Fatalf("watch = %v\n%s", r.err, r.errOut)
	}
	if !regexpMatch(`(?m)^12:00:00 error: rollback after a breach \(canary 5xx rate .*the branch is locked for maintenance.*; retrying in 1s$`, r.errOut) ||
		!strings.Contains(r.errOut, "rolled back order/prod: auto-rollback: canary 5xx rate (1m average) 5.20%") {
		t.Fatalf("stderr:\n%s", r.errOut)
	}
	values := string(le.remote.File("gitops/envs/prod/order/values.yaml"))
	if !strings.Contains(values, "enabled: false") || !strings.Contains(values, "weight: 0") {
		t.Fatalf("values after the auto-rollback:\n%s", values)
	}
}
