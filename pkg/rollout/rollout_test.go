package rollout

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apinet "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/mesh"
)

const (
	token  = "s3cret"
	oldRev = "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
	ns     = "come2us-prod"
)

// appDoc renders order-service-prod as Argo CD reports it.
type appDoc struct {
	rev, sync, health, healthMsg string
	opPhase, opMsg               string
	auto                         bool
}

func (d appDoc) yaml() string {
	a := argocdtest.App{Automated: d.auto, Revision: d.rev, Sync: d.sync, Health: d.health, HealthMessage: d.healthMsg}
	if d.opPhase != "" {
		a.Operation = &argocdtest.Operation{Phase: d.opPhase, Message: d.opMsg,
			Started: "2026-11-25T11:00:00Z", Finished: "2026-11-25T11:00:30Z", InitiatedBy: "opsctl"}
	}
	return a.YAML()
}

// world is a GitOps remote and working copy, an Argo CD API server, and a mesh.
type world struct {
	t      *testing.T
	remote *gitopstest.Remote
	repo   *gitops.Repo
	argo   *argocdtest.Server
	apps   argocd.Apps
	istio  *istiofake.Clientset
	mesh   *mesh.Reader
}

func newWorld(t *testing.T, initial appDoc) *world {
	t.Helper()
	w := &world{t: t, remote: gitopstest.NewRemote(t)}
	repo, err := gitops.Open(context.Background(), w.remote.Clone("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	w.repo = repo
	w.argo = argocdtest.Start(t, token, initial.yaml())
	w.apps, err = argocd.New(context.Background(), argocd.Options{Server: w.argo.Addr(), PlainText: true, Token: token, Project: "come2us", LocalConfigPath: "-"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.apps.Close() })
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "order-service", Namespace: ns},
		Spec: apinet.VirtualService{Hosts: []string{"order-service"}, Http: []*apinet.HTTPRoute{{Route: []*apinet.HTTPRouteDestination{
			{Destination: &apinet.Destination{Host: "order-service", Subset: "v1"}, Weight: 100},
			{Destination: &apinet.Destination{Host: "order-service", Subset: "v2"}, Weight: 0},
		}}}}}
	dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "order-service", Namespace: ns},
		Spec: apinet.DestinationRule{Host: "order-service", Subsets: []*apinet.Subset{{Name: "v1"}, {Name: "v2"}}}}
	w.istio = istiofake.NewSimpleClientset(vs, dr)
	w.mesh = mesh.New(w.istio, kubefake.NewSimpleClientset(), ns)
	return w
}

// setWeights plays Argo CD applying the chart: the VirtualService gets new weights.
func (w *world) setWeights(v1, v2 int32) {
	vs, err := w.istio.NetworkingV1().VirtualServices(ns).Get(context.Background(), "order-service", metav1.GetOptions{})
	if err != nil {
		w.t.Error(err)
		return
	}
	vs.Spec.Http[0].Route[0].Weight, vs.Spec.Http[0].Route[1].Weight = v1, v2
	if _, err := w.istio.NetworkingV1().VirtualServices(ns).Update(context.Background(), vs, metav1.UpdateOptions{}); err != nil {
		w.t.Error(err)
	}
}

func (w *world) apply(d appDoc) {
	if err := w.argo.Apply(d.yaml()); err != nil {
		w.t.Error(err)
	}
}

// start runs `canary start order --env prod` through the controller with the follower.
func (w *world) start(f *Follower) (*canary.Outcome, error) {
	w.t.Helper()
	ctrl := canary.New(w.repo, canary.WithFollower(f))
	ctx := context.Background()
	plan, err := ctrl.Plan(ctx, "prod", "order", canary.Op{Action: canary.ActionStart, Tag: "1.1.0", SkipGates: true}, "release 1.1.0")
	if err != nil {
		w.t.Fatal(err)
	}
	return ctrl.Execute(ctx, plan)
}

func TestFollowerWait(t *testing.T) {
	t.Parallel()
	const degradedMsg = `Deployment "order-service-v2" exceeded its progress deadline`
	const failMsg = `one or more objects failed to apply, reason: admission webhook "validation.istio.io" denied the request: weight must be in 0..100`
	tests := []struct {
		name    string
		initial appDoc
		// controller plays Argo CD's controller once opsctl refreshed (auto-sync) or synced.
		controller func(w *world, head string)
		timeout    time.Duration
		is         error
		msg        func(head string) string
	}{
		{
			name:    "success",
			initial: appDoc{rev: oldRev, sync: "Synced", health: "Healthy", auto: true},
			controller: func(w *world, head string) {
				w.apply(appDoc{rev: head, sync: "OutOfSync", health: "Healthy", opPhase: "Running", auto: true})
				w.setWeights(90, 10)
				w.apply(appDoc{rev: head, sync: "Synced", health: "Progressing", healthMsg: "Deployment order-service-v2: 0 of 1 updated replicas are available", opPhase: "Succeeded", auto: true})
				w.apply(appDoc{rev: head, sync: "Synced", health: "Healthy", opPhase: "Succeeded", opMsg: "successfully synced (all tasks run)", auto: true})
			},
			timeout: 10 * time.Second,
		},
		{
			name:    "sync failure",
			initial: appDoc{rev: oldRev, sync: "Synced", health: "Healthy"},
			controller: func(w *world, head string) {
				w.apply(appDoc{rev: head, sync: "OutOfSync", health: "Healthy", opPhase: "Failed", opMsg: failMsg})
			},
			timeout: 10 * time.Second,
			is:      argocd.ErrSyncFailed,
			msg: func(head string) string {
				return "Argo CD failed to sync order-service-prod at " + head[:7] + ": " + failMsg
			},
		},
		{
			name:    "health degraded",
			initial: appDoc{rev: oldRev, sync: "Synced", health: "Healthy", auto: true},
			controller: func(w *world, head string) {
				w.setWeights(90, 10)
				w.apply(appDoc{rev: head, sync: "Synced", health: "Degraded", healthMsg: degradedMsg, opPhase: "Succeeded", auto: true})
			},
			timeout: 10 * time.Second,
			is:      argocd.ErrDegraded,
			msg: func(head string) string {
				return "order-service-prod is Degraded after syncing " + head[:7] + ": " + degradedMsg
			},
		},
		{
			name:    "timeout: nothing arrives",
			initial: appDoc{rev: oldRev, sync: "Synced", health: "Progressing", healthMsg: "waiting for rollout", auto: true},
			timeout: 400 * time.Millisecond,
			is:      argocd.ErrWaitTimeout,
			msg: func(head string) string {
				return "timed out after 400ms waiting for order-service-prod at " + head[:7] + "; did not arrive: synced at " + head[:7] +
					" (Argo CD: Synced at 3f2a9c1); healthy (Argo CD: Progressing: waiting for rollout); live weights v1 90% / v2 10% (live: v1 100% / v2 0%)"
			},
		},
		{
			name:    "timeout: Argo CD synced but the VirtualService never changed",
			initial: appDoc{rev: oldRev, sync: "Synced", health: "Healthy", auto: true},
			controller: func(w *world, head string) {
				w.apply(appDoc{rev: head, sync: "Synced", health: "Healthy", opPhase: "Succeeded", auto: true})
			},
			timeout: 400 * time.Millisecond,
			is:      argocd.ErrWaitTimeout,
			msg: func(head string) string {
				return "timed out after 400ms waiting for order-service-prod at " + head[:7] + "; did not arrive: live weights v1 90% / v2 10% (live: v1 100% / v2 0%)"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tt.initial)
			if tt.controller != nil {
				if tt.initial.auto {
					w.argo.OnRefresh = func(string, bool) { tt.controller(w, w.remote.Head()) }
				} else {
					w.argo.OnSync = func(argocdtest.SyncRequest) { tt.controller(w, w.remote.Head()) }
				}
			}
			var progress []string
			f := &Follower{Apps: w.apps, Routes: w.mesh, Timeout: tt.timeout, Interval: 20 * time.Millisecond,
				Progress: func(s string) { progress = append(progress, s) }}
			out, err := w.start(f)
			head := w.remote.Head()
			if out == nil || out.Result.Commit != head {
				t.Fatalf("the change was not pushed: %v", err)
			}
			syncs := w.argo.Syncs()
			if tt.initial.auto != (len(syncs) == 0) {
				t.Fatalf("auto-sync %v but %d explicit syncs", tt.initial.auto, len(syncs))
			}
			if len(syncs) == 1 && syncs[0].Revision != head {
				t.Fatalf("synced %s, want the pushed %s", syncs[0].Revision, head)
			}
			if tt.is == nil {
				if err != nil {
					t.Fatalf("Execute: %v", err)
				}
				if got := progress[len(progress)-1]; got != "live VirtualService carries v1 90% / v2 10%" {
					t.Fatalf("last progress line %q", got)
				}
				return
			}
			var fe *FollowError
			if !errors.Is(err, tt.is) || !errors.Is(err, ErrNotConverged) || !errors.As(err, &fe) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if fe.Error() != tt.msg(head) {
				t.Fatalf("message\n got: %s\nwant: %s", fe.Error(), tt.msg(head))
			}
			if want := "is pushed as " + gitops.ShortHash(head) + ", but: "; !strings.Contains(err.Error(), want) {
				t.Fatalf("the error does not say the change is in git: %v", err)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	head := "b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6"
	at30 := gitops.Release{Canary: gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 30}}
	route := func(v1, v2 int32) *mesh.Route {
		return &mesh.Route{Weights: map[string]int32{"v1": v1, "v2": v2}}
	}
	synced := func(mod func(a *argocd.App)) *argocd.App {
		a := &argocd.App{Name: "order-service-prod", Sync: argocd.SyncSynced, Health: argocd.HealthHealthy, Revision: head,
			Operation: &argocd.Operation{Phase: argocd.PhaseSucceeded, Revision: head}}
		if mod != nil {
			mod(a)
		}
		return a
	}
	tests := []struct {
		name     string
		git      gitops.Release
		app      *argocd.App
		appErr   error
		route    *mesh.Route
		routeErr error
		verdict  Verdict
		detail   string
	}{
		{"all agree", at30, synced(nil), nil, route(70, 30), nil, InSync, ""},
		{"canary off everywhere", gitops.Release{}, synced(nil), nil, route(100, 0), nil, InSync, ""},
		{"Argo CD has not seen the commit", at30, synced(func(a *argocd.App) { a.Revision = oldRev }), nil, route(90, 10), nil, SyncPending, "git at b7c8d9e, Argo CD at 3f2a9c1"},
		{"Argo CD is syncing", at30, synced(func(a *argocd.App) { a.Operation = &argocd.Operation{Phase: argocd.PhaseRunning} }), nil, route(90, 10), nil, SyncPending, "Argo CD is syncing b7c8d9e"},
		{"seen, not synced (auto-sync off)", at30, synced(func(a *argocd.App) {
			a.Sync = argocd.SyncOutOfSync
			a.Operation.Revision = oldRev
		}), nil, route(90, 10), nil, SyncPending, "Argo CD has seen b7c8d9e but not synced it"},
		{"hand-edited VirtualService", at30, synced(nil), nil, route(50, 50), nil, Drift, "live v2 50%, git and Argo CD say 30%"},
		{"synced, then changed behind Argo CD's back", at30, synced(func(a *argocd.App) { a.Sync = argocd.SyncOutOfSync }), nil, route(70, 30), nil, Drift, "Argo CD reports resources OutOfSync with b7c8d9e"},
		{"Argo CD unreachable", at30, nil, errors.New("cannot reach Argo CD at x: connection refused"), route(70, 30), nil, Unknown, "Argo CD: cannot reach Argo CD at x: connection refused"},
		{"mesh unreadable", at30, synced(nil), nil, nil, errors.New("VirtualService come2us-prod/order-service: not found"), Unknown, "live: VirtualService come2us-prod/order-service: not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(head, tt.git, tt.app, tt.appErr, tt.route, tt.routeErr)
			if got.Verdict != tt.verdict || got.Detail != tt.detail {
				t.Fatalf("Compare = %q %q, want %q %q", got.Verdict, got.Detail, tt.verdict, tt.detail)
			}
		})
	}
}

// promStub answers Prometheus instant queries with real API JSON; values keyed by PromQL.
type promStub struct {
	mu     sync.Mutex
	values map[string]string
}

func (p *promStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

// startedCanary is a world whose order/prod canary was started at 1.1.0 (gates skipped).
func startedCanary(t *testing.T) (*world, *canary.Controller) {
	t.Helper()
	w := newWorld(t, appDoc{rev: oldRev, sync: "Synced", health: "Healthy", auto: true})
	ctrl := canary.New(w.repo)
	ctx := context.Background()
	plan, err := ctrl.Plan(ctx, "prod", "order", canary.Op{Action: canary.ActionStart, Tag: "1.1.0", SkipGates: true}, "release 1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Execute(ctx, plan); err != nil {
		t.Fatal(err)
	}
	return w, ctrl
}

// guardGates is a gate evaluator over a Prometheus stub whose answers the test sets.
func guardGates(t *testing.T) (*promStub, *canary.GateEvaluator) {
	t.Helper()
	prom := &promStub{values: map[string]string{}}
	srv := httptest.NewServer(prom)
	t.Cleanup(srv.Close)
	gates, err := canary.NewGateEvaluator(config.Prometheus{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return prom, gates
}

func TestGuardRollsBackOnBreachOnly(t *testing.T) {
	t.Parallel()
	w, ctrl := startedCanary(t)
	ctx := context.Background()
	prom, gates := guardGates(t)
	target := canary.GateTarget{Service: "order", Env: "prod"}
	rollback := func(ctx context.Context, reason string) error {
		p, err := ctrl.Plan(ctx, "prod", "order", canary.Op{Action: canary.ActionRollback}, reason)
		if err != nil {
			return err
		}
		_, err = ctrl.Execute(ctx, p)
		return err
	}
	running := func(ctx context.Context) (bool, error) {
		st, err := ctrl.Status(ctx, "prod", "order")
		return st.Running(), err
	}

	// No data at all: reported as unknown for a few rounds, never rolled back.
	head := w.remote.Head()
	rounds := 0
	gctx, cancel := context.WithCancel(ctx)
	g := &Guard{Gates: gates, Target: target, Interval: time.Millisecond, Running: running, Rollback: rollback,
		Report: func(r canary.GateReport) {
			if r.Verdict() != canary.VerdictUnknown {
				t.Errorf("verdict without data = %s", r.Verdict())
			}
			if rounds++; rounds == 3 {
				cancel()
			}
		}}
	out, err := g.Run(gctx)
	cancel()
	if err != nil || out.RolledBack || w.remote.Head() != head {
		t.Fatalf("guard without data: %+v, %v (head moved: %v)", out, err, w.remote.Head() != head)
	}

	// A 5xx breach: the guard commits the rollback with the figures as the reason.
	q5xx, _ := gates.Query(canary.GateQueryCanary5xx, target)
	qcpu, _ := gates.Query(canary.GateQueryCPU, target)
	qcount, _ := gates.Query(canary.GateQueryCanaryRequests, target)
	prom.mu.Lock()
	prom.values = map[string]string{q5xx: "0.052", qcpu: "0.4", qcount: "600"}
	prom.mu.Unlock()
	g.Report = nil
	out, err = g.Run(ctx)
	if err != nil || !out.RolledBack {
		t.Fatalf("guard on a breach: %+v, %v", out, err)
	}
	wantReason := "auto-rollback: canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%)"
	if out.Reason != wantReason {
		t.Fatalf("reason %q", out.Reason)
	}
	values := string(w.remote.File("gitops/envs/prod/order/values.yaml"))
	if !strings.Contains(values, "enabled: false") || !strings.Contains(values, "weight: 0") {
		t.Fatalf("values after the rollback:\n%s", values)
	}
	msg := gitopstest.Git(t, w.remote.URL, "log", "-1", "--format=%B", "main")
	if !strings.Contains(msg, wantReason) || !strings.Contains(msg, "Opsctl-Action: canary-rollback") {
		t.Fatalf("rollback commit:\n%s", msg)
	}

	// The canary is gone now: the guard says so instead of watching nothing.
	_, err = g.Run(ctx)
	if !errors.Is(err, ErrCanaryGone) {
		t.Fatalf("guard after the rollback = %v", err)
	}
}

func TestReasonFitsACommit(t *testing.T) {
	t.Parallel()
	c := canary.GateRollbackCriteria()[0]
	c.Name = strings.Repeat("ü", 200)
	v := 0.5
	r := Reason([]canary.GateResult{{Criterion: c, Value: &v, Display: "50.00%"}})
	if len(r) > 300 || !strings.HasSuffix(r, "…") || gitops.ValidateReason(r) != nil {
		t.Fatalf("reason of %d bytes: %v", len(r), gitops.ValidateReason(r))
	}
}

// TestGuardFailureLimit: a breach rolls back only once it has held for FailureLimit
// consecutive checks; a passing or unknown check in between starts the count again, and every
// breaching check is still reported. The test drives the guard's clock, so no check waits.
func TestGuardFailureLimit(t *testing.T) {
	t.Parallel()
	w, ctrl := startedCanary(t)
	ctx := context.Background()
	prom, gates := guardGates(t)
	target := canary.GateTarget{Service: "order", Env: "prod"}
	q5xx, _ := gates.Query(canary.GateQueryCanary5xx, target)
	qcount, _ := gates.Query(canary.GateQueryCanaryRequests, target)
	breach := map[string]string{q5xx: "0.052", qcount: "600"}
	pass := map[string]string{q5xx: "0.001", qcount: "600"}
	tooFew := map[string]string{q5xx: "0.5", qcount: "12"}
	rounds := []map[string]string{breach, pass, breach, tooFew, breach, breach, breach}
	set := func(i int) {
		prom.mu.Lock()
		prom.values = rounds[i]
		prom.mu.Unlock()
	}
	set(0)
	round := 0
	var counts []int
	var rolledAt int
	g := &Guard{Gates: gates, Target: target, Interval: time.Hour, FailureLimit: 2,
		Running: func(ctx context.Context) (bool, error) { return true, nil },
		Rollback: func(ctx context.Context, reason string) error {
			rolledAt = round
			p, err := ctrl.Plan(ctx, "prod", "order", canary.Op{Action: canary.ActionRollback}, reason)
			if err != nil {
				return err
			}
			_, err = ctrl.Execute(ctx, p)
			return err
		},
		Breach: func(b []canary.GateResult, consecutive, limit int) {
			if limit != 2 || len(b) != 1 || b[0].Criterion.ID != "rollback.5xx" {
				t.Errorf("breach report %v %d/%d", b, consecutive, limit)
			}
			counts = append(counts, consecutive)
		},
		After: func(d time.Duration) <-chan time.Time {
			if d != time.Hour {
				t.Errorf("interval %s", d)
			}
			round++
			if round >= len(rounds) {
				t.Fatalf("the guard never rolled back")
			}
			set(round)
			c := make(chan time.Time, 1)
			c <- time.Time{}
			return c
		},
	}
	out, err := g.Run(ctx)
	if err != nil || !out.RolledBack {
		t.Fatalf("guard: %+v, %v", out, err)
	}
	if rolledAt != 5 || fmt.Sprint(counts) != "[1 1 1 2]" {
		t.Fatalf("rolled back at check %d (want 6, the second of two consecutive breaches); breach counts %v", rolledAt+1, counts)
	}
	values := string(w.remote.File("gitops/envs/prod/order/values.yaml"))
	if !strings.Contains(values, "weight: 0") {
		t.Fatalf("values after the rollback:\n%s", values)
	}
}

// rejectPushes makes the remote refuse the next n pushes with message (a pre-receive hook that
// counts), as a remote under maintenance or a protected branch briefly would.
func rejectPushes(t *testing.T, remote *gitopstest.Remote, n int, message string) {
	t.Helper()
	count := filepath.Join(t.TempDir(), "rejected")
	script := fmt.Sprintf("#!/bin/sh\nn=$(cat %[1]q 2>/dev/null || echo 0)\nif [ \"$n\" -lt %[2]d ]; then echo $((n+1)) > %[1]q; echo %[3]q >&2; exit 1; fi\nexit 0\n", count, n, message)
	if err := os.WriteFile(filepath.Join(remote.URL, "hooks", "pre-receive"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestGuardCarriesOnAfterErrors: a guard is protection only while it runs, so an error does not
// end it. A status read that fails, and a rollback push the remote refuses, are reported with
// the pause before the retry; the guard then rolls back as soon as the remote takes the push.
func TestGuardCarriesOnAfterErrors(t *testing.T) {
	t.Parallel()
	w, ctrl := startedCanary(t)
	ctx := context.Background()
	prom, gates := guardGates(t)
	target := canary.GateTarget{Service: "order", Env: "prod"}
	q5xx, _ := gates.Query(canary.GateQueryCanary5xx, target)
	qcount, _ := gates.Query(canary.GateQueryCanaryRequests, target)
	prom.mu.Lock()
	prom.values = map[string]string{q5xx: "0.052", qcount: "600"}
	prom.mu.Unlock()
	rejectPushes(t, w.remote, 1, "remote: the branch is locked for maintenance")

	reads := 0
	var errs []string
	var waits []time.Duration
	g := &Guard{Gates: gates, Target: target, Interval: time.Hour, RetryInterval: time.Minute, FailureLimit: 2,
		Running: func(ctx context.Context) (bool, error) {
			if reads++; reads == 1 {
				return false, errors.New("fetch origin main: connection reset by peer")
			}
			st, err := ctrl.Status(ctx, "prod", "order")
			return st.Running(), err
		},
		Rollback: func(ctx context.Context, reason string) error {
			p, err := ctrl.Plan(ctx, "prod", "order", canary.Op{Action: canary.ActionRollback}, reason)
			if err != nil {
				return err
			}
			_, err = ctrl.Execute(ctx, p)
			return err
		},
		Error: func(err error, retryIn time.Duration) { errs = append(errs, err.Error()) },
		After: func(d time.Duration) <-chan time.Time {
			waits = append(waits, d)
			if len(waits) > 10 {
				t.Fatalf("the guard never rolled back; errors %q", errs)
			}
			c := make(chan time.Time, 1)
			c <- time.Time{}
			return c
		},
	}
	out, err := g.Run(ctx)
	if err != nil || !out.RolledBack {
		t.Fatalf("guard: %+v, %v; errors %q", out, err, errs)
	}
	// Round 1: the read fails. Round 2: first breach. Round 3: second breach, the push is
	// refused. Round 4: the breach still holds, the rollback lands.
	if len(errs) != 2 || !strings.Contains(errs[0], "read the canary of order/prod: fetch origin main: connection reset by peer") ||
		!strings.Contains(errs[1], "rollback after a breach (canary 5xx rate (1m average) 5.20% (rollback if ≥ 3%))") ||
		!strings.Contains(errs[1], "locked for maintenance") {
		t.Fatalf("errors reported: %q", errs)
	}
	if fmt.Sprint(waits) != "[1m0s 1h0m0s 1m0s]" {
		t.Fatalf("pauses %v, want the retry interval after each error and the interval after a check", waits)
	}
	values := string(w.remote.File("gitops/envs/prod/order/values.yaml"))
	if !strings.Contains(values, "enabled: false") || !strings.Contains(values, "weight: 0") {
		t.Fatalf("values after the rollback:\n%s", values)
	}
}
