//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argoclientset "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istio "istio.io/client-go/pkg/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// loop is what a canary test observes: Argo CD through its API and the live objects through the
// Kubernetes and Istio clients.
type loop struct {
	t    testing.TB
	apps application.ApplicationServiceClient
	kube kubernetes.Interface
	mesh istio.Interface
}

func newLoop(t testing.TB) *loop {
	t.Helper()
	closer, apps, err := env.argoClient(t).NewApplicationClient()
	if err != nil {
		t.Fatalf("application client: %v", err)
	}
	t.Cleanup(func() { _ = closer.Close() })
	cfg := env.restConfig(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubernetes client: %v", err)
	}
	mesh, err := istio.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("istio client: %v", err)
	}
	return &loop{t: t, apps: apps, kube: kube, mesh: mesh}
}

func appName(svc, envName string) string { return svc + "-service-" + envName }

// refresh asks Argo CD to look at git now, as the repository webhook does in production.
func (l *loop) refresh(app string) {
	l.t.Helper()
	refresh := string(v1alpha1.RefreshTypeNormal)
	if _, err := l.apps.Get(context.Background(), &application.ApplicationQuery{Name: &app, Refresh: &refresh}); err != nil {
		l.t.Fatalf("refresh %s: %v", app, err)
	}
}

// liveWeights reads the live VirtualService <svc>-service in come2us-<env> and returns the
// weight of each subset. Every HTTP route (mesh and ingress) must carry the same split.
func (l *loop) liveWeights(ctx context.Context, svc, envName string) (map[string]int32, error) {
	vs, err := l.mesh.NetworkingV1().VirtualServices("come2us-"+envName).Get(ctx, svc+"-service", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var first map[string]int32
	for _, r := range vs.Spec.GetHttp() {
		got := map[string]int32{}
		for _, d := range r.GetRoute() {
			got[d.GetDestination().GetSubset()] = d.GetWeight()
		}
		if first == nil {
			first = got
		} else if fmt.Sprint(first) != fmt.Sprint(got) {
			return nil, fmt.Errorf("routes disagree: %s has %v, first route has %v", r.GetName(), got, first)
		}
	}
	return first, nil
}

// want is the live split for a canary weight: v2 only exists while the canary runs.
func want(canaryOn bool, weight int) map[string]int32 {
	if !canaryOn {
		return map[string]int32{"v1": 100}
	}
	return map[string]int32{"v1": int32(100 - weight), "v2": int32(weight)}
}

// waitLive waits until the live VirtualService carries split and returns how long that took.
func (l *loop) waitLive(svc, envName string, split map[string]int32) time.Duration {
	l.t.Helper()
	start := time.Now()
	eventually(l.t, 2*time.Minute, 50*time.Millisecond, fmt.Sprintf("live %s-service weights %v in come2us-%s", svc, split, envName),
		func(ctx context.Context) (bool, string, error) {
			got, err := l.liveWeights(ctx, svc, envName)
			if err != nil {
				return false, "", err
			}
			return fmt.Sprint(got) == fmt.Sprint(split), fmt.Sprintf("weights %v", got), nil
		})
	return time.Since(start)
}

// canaryState is the part of `opsctl canary status -o json` the tests read.
type canaryState struct {
	Service string `json:"service"`
	Env     string `json:"env"`
	Canary  struct {
		Enabled bool   `json:"enabled"`
		Tag     string `json:"tag"`
		Weight  int    `json:"weight"`
	} `json:"canary"`
	Commit   string   `json:"commit"`
	Warnings []string `json:"warnings"`
	// Live is the live verdict (opsctl with the mesh and Argo CD view).
	Live *struct {
		Verdict string `json:"verdict"`
		Detail  string `json:"detail"`
	} `json:"live"`
}

func (o *operator) canaryStatus(svc, envName string) canaryState {
	o.t.Helper()
	r := o.mustRun("canary", "status", svc, "--env", envName, "-o", "json")
	var states []canaryState
	if err := json.Unmarshal([]byte(r.stdout), &states); err != nil {
		var one canaryState
		if err1 := json.Unmarshal([]byte(r.stdout), &one); err1 != nil {
			o.t.Fatalf("canary status -o json: %v\n%s", err, r)
		}
		return one
	}
	for _, s := range states {
		if s.Service == svc && s.Env == envName {
			return s
		}
	}
	o.t.Fatalf("canary status -o json has no %s/%s\n%s", envName, svc, r)
	return canaryState{}
}

// pushed is the part of a mutating canary command's -o json output the tests read.
type pushed struct {
	Commit string `json:"commit"`
}

// mutate runs a mutating canary command (with --yes -o json) and returns the pushed commit.
func (o *operator) mutate(args ...string) string {
	o.t.Helper()
	r := o.mustRun(append(append(append([]string{"canary"}, args...), skipGates(o.t, args[0])...), "--yes", "-o", "json")...)
	var p pushed
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Commit == "" {
		o.t.Fatalf("no commit in the output of %s (%v)", r, err)
	}
	return p.Commit
}

// skipGates returns --skip-gates for a gated action when this opsctl gates by default: the
// tier's operators have no Prometheus in their context, and these tests are about the GitOps
// loop (the gates are tested in pkg/cmd/canary). The commit's reason records the skip.
func skipGates(t testing.TB, action string) []string {
	t.Helper()
	switch action {
	case "start", "step", "set", "promote":
		if supports(t, "--skip-gates", "canary", action) {
			return []string{"--skip-gates"}
		}
	}
	return nil
}

// resetCanary leaves svc/env with its canary off, live and in git, whatever an earlier run
// left behind.
func resetCanary(t testing.TB, l *loop, o *operator, svc, envName string) {
	t.Helper()
	app := appName(svc, envName)
	waitAppState(t, l.apps, app, "", 3*time.Minute)
	if o.canaryStatus(svc, envName).Canary.Enabled {
		rev := o.mutate("rollback", svc, "--env", envName, "--reason", "e2e: reset the canary before the test")
		l.refresh(app)
		waitAppState(t, l.apps, app, rev, 2*time.Minute)
	}
	l.waitLive(svc, envName, want(false, 0))
}

// TestCanaryStartStepRollbackThroughTheRealLoop drives one canary through git, Argo CD and the
// apiserver: each opsctl command's commit must end up in the live VirtualService (read through
// Istio's client), the canary Deployment must appear with the canary and be pruned by the
// rollback. With --wait (when this opsctl has it) the live weights must already be there when
// the command returns; the test logs the push-to-live latency of each step.
func TestCanaryStartStepRollbackThroughTheRealLoop(t *testing.T) {
	const svc, envName = "payment", "dev"
	l := newLoop(t)
	alice := newOperator(t, "alice", nil)
	resetCanary(t, l, alice, svc, envName)
	app := appName(svc, envName)
	wait := supports(t, "--wait", "canary", "step")
	if !wait && os.Getenv("OPSCTL_E2E_REQUIRE_FEATURES") == "1" {
		t.Fatal("opsctl in this checkout has no canary --wait")
	}
	if !wait {
		t.Log("opsctl in this checkout has no canary --wait; the test refreshes Argo CD and polls the live VirtualService itself")
	}

	steps := []struct {
		args     []string
		canaryOn bool
		weight   int
	}{
		{[]string{"start", svc, "--env", envName, "--image-tag", "1.1.0", "--reason", "e2e: canary 1.1.0"}, true, 10},
		{[]string{"step", svc, "--env", envName, "--reason", "e2e: phase 0 criteria met"}, true, 30},
		{[]string{"rollback", svc, "--env", envName, "--reason", "e2e: roll back"}, false, 0},
	}
	for _, s := range steps {
		started := time.Now()
		var rev string
		if wait {
			rev = alice.mutate(append(s.args, "--wait", "--timeout", "2m")...)
			t.Logf("%s --wait: command returned after %s (push, sync and live weights; commit %.8s)", s.args[0], time.Since(started).Round(time.Millisecond), rev)
			// --wait promised the live weights: one read, no polling.
			got, err := l.liveWeights(context.Background(), svc, envName)
			if err != nil {
				t.Fatalf("live weights after %s --wait: %v", s.args[0], err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want(s.canaryOn, s.weight)) {
				t.Fatalf("%s --wait returned but the live VirtualService has %v, want %v", s.args[0], got, want(s.canaryOn, s.weight))
			}
		} else {
			rev = alice.mutate(s.args...)
			l.refresh(app)
			l.waitLive(svc, envName, want(s.canaryOn, s.weight))
			t.Logf("%s: push-to-live latency %s (commit %.8s)", s.args[0], time.Since(started).Round(time.Millisecond), rev)
		}
		waitAppState(t, l.apps, app, rev, 2*time.Minute)

		st := alice.canaryStatus(svc, envName)
		if st.Canary.Enabled != s.canaryOn || st.Canary.Weight != s.weight {
			t.Errorf("after %s: canary status says enabled=%v weight=%d, want enabled=%v weight=%d", s.args[0], st.Canary.Enabled, st.Canary.Weight, s.canaryOn, s.weight)
		}
		// The canary Deployment exists exactly while the canary runs; the rollback's prune
		// (foreground deletion, finished by the garbage collector) removes it.
		eventually(t, time.Minute, 200*time.Millisecond, fmt.Sprintf("Deployment %s-service-v2 present=%v", svc, s.canaryOn), func(ctx context.Context) (bool, string, error) {
			d, err := l.kube.AppsV1().Deployments("come2us-"+envName).Get(ctx, svc+"-service-v2", metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				return !s.canaryOn, "absent", nil
			case err != nil:
				return false, "", err
			}
			image := ""
			if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
				image = cs[0].Image
			}
			return s.canaryOn && strings.HasSuffix(image, ":1.1.0"), "present with image " + image, nil
		})
	}
}

// supports reports whether `opsctl <args> --help` mentions text.
func supports(t testing.TB, text string, args ...string) bool {
	t.Helper()
	r := newOperator(t, "probe", nil).run(append(args, "--help")...)
	return r.code == 0 && strings.Contains(r.stdout, text)
}

// withoutSelfHeal turns self-heal off in the project's ApplicationSet for the test (the
// ApplicationSet controller rolls it out to every Application) and back on at cleanup.
func withoutSelfHeal(t *testing.T, l *loop, app string) {
	t.Helper()
	argo, err := argoclientset.NewForConfig(env.restConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	// The services' ApplicationSet (gitops/argocd/applicationset.yaml); the agent's has its own.
	const name = "come2us-saga-services"
	if _, err := argo.ArgoprojV1alpha1().ApplicationSets("argocd").Get(context.Background(), name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the services' ApplicationSet %s: %v", name, err)
	}
	set := func(selfHeal bool) {
		patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"syncPolicy":{"automated":{"selfHeal":%t}}}}}}`, selfHeal)
		if _, err := argo.ArgoprojV1alpha1().ApplicationSets("argocd").Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("set selfHeal=%t on ApplicationSet %s: %v", selfHeal, name, err)
		}
		eventually(t, time.Minute, 200*time.Millisecond, fmt.Sprintf("Application %s with selfHeal=%t", app, selfHeal), func(ctx context.Context) (bool, string, error) {
			a, err := argo.ArgoprojV1alpha1().Applications("argocd").Get(ctx, app, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			got := a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil && a.Spec.SyncPolicy.Automated.SelfHeal != nil && *a.Spec.SyncPolicy.Automated.SelfHeal
			return got == selfHeal, fmt.Sprintf("selfHeal=%t", got), nil
		})
	}
	set(false)
	t.Cleanup(func() { set(true) })
}

// TestDriftWhenTheVirtualServiceIsEditedBehindArgoCD: with self-heal off, someone edits the live
// VirtualService by hand. `opsctl canary status` must report drift (git and Argo CD say one
// thing, the mesh another); a sync puts git's weights back and the verdict returns to in sync.
func TestDriftWhenTheVirtualServiceIsEditedBehindArgoCD(t *testing.T) {
	const svc, envName = "order", "dev"
	if !supports(t, "--live", "canary", "status") {
		missing(t, "opsctl in this checkout has no live column in canary status (--live); this test needs it")
	}
	l := newLoop(t)
	alice := newOperator(t, "alice", nil)
	resetCanary(t, l, alice, svc, envName)
	app := appName(svc, envName)
	withoutSelfHeal(t, l, app)
	// Argo CD re-syncs an OutOfSync app on its own while its last sync is of an older commit,
	// self-heal or not; once it has synced the head, only self-heal would undo a hand edit.
	syncAtHead(t, l, app)
	if v := alice.canaryStatus(svc, envName).Live; v == nil || v.Verdict != "in sync" {
		t.Fatalf("before the edit: live verdict %+v, want in sync", v)
	}

	// The hand edit: half the traffic to a v2 subset git never asked for.
	vsClient := l.mesh.NetworkingV1().VirtualServices("come2us-" + envName)
	vs, err := vsClient.Get(context.Background(), svc+"-service", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range vs.Spec.Http {
		if len(r.Route) == 0 {
			continue
		}
		r.Route[0].Weight = 50
		v2 := proto.Clone(r.Route[0]).(*networkingv1alpha3.HTTPRouteDestination)
		v2.Destination.Subset = "v2"
		r.Route = append(r.Route[:1], v2)
	}
	if _, err := vsClient.Update(context.Background(), vs, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatalf("edit the live VirtualService: %v", err)
	}

	eventually(t, time.Minute, 500*time.Millisecond, "canary status reporting drift", func(ctx context.Context) (bool, string, error) {
		st := alice.canaryStatus(svc, envName)
		if st.Live == nil {
			return false, "no live section", nil
		}
		return strings.HasPrefix(st.Live.Verdict, "drift"), st.Live.Verdict + ": " + st.Live.Detail, nil
	})
	table := alice.mustRun("canary", "status", svc, "--env", envName)
	if !strings.Contains(table.stdout, "drift") {
		t.Errorf("canary status table does not show the drift:\n%s", table.stdout)
	}

	// Argo CD's own sync (what an operator does next) restores git's weights.
	syncApp(t, l, app)
	l.waitLive(svc, envName, want(false, 0))
	eventually(t, time.Minute, 500*time.Millisecond, "canary status back in sync", func(ctx context.Context) (bool, string, error) {
		st := alice.canaryStatus(svc, envName)
		return st.Live != nil && st.Live.Verdict == "in sync", fmt.Sprintf("%+v", st.Live), nil
	})
}

// syncApp asks argocd-server to sync app now.
func syncApp(t *testing.T, l *loop, app string) {
	t.Helper()
	if _, err := l.apps.Sync(context.Background(), &application.ApplicationSyncRequest{Name: &app}); err != nil {
		t.Fatalf("sync %s: %v", app, err)
	}
}

// syncAtHead syncs app to the head of main and waits until Argo CD's last sync is of that
// commit and the app is Synced/Healthy.
func syncAtHead(t *testing.T, l *loop, app string) {
	t.Helper()
	c := &clone{t: t}
	head, _, _ := strings.Cut(c.git("", "ls-remote", env.GitURL, "refs/heads/main"), "\t")
	// An auto-synced app only syncs its target revision (main), which is head.
	syncApp(t, l, app)
	eventually(t, 2*time.Minute, 200*time.Millisecond, fmt.Sprintf("%s synced at %.8s", app, head), func(ctx context.Context) (bool, string, error) {
		a, err := l.apps.Get(ctx, &application.ApplicationQuery{Name: &app})
		if err != nil {
			return false, "", err
		}
		op := a.Status.OperationState
		if op == nil || op.SyncResult == nil {
			return false, "no sync result", nil
		}
		state := fmt.Sprintf("operation %s at %.8s, sync %s, health %s", op.Phase, op.SyncResult.Revision, a.Status.Sync.Status, a.Status.Health.Status)
		return op.Phase == "Succeeded" && op.SyncResult.Revision == head && a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced &&
			a.Status.Health.Status == "Healthy", state, nil
	})
}

// preReceiveBarrier makes the GitOps repository hold every push in its pre-receive hook until
// two pushes have arrived (or 20 s passed), so that two operators' pushes reach the server
// together: both were planned from the same commit, and the server decides which ref update
// wins. The hook is removed when the test ends.
func preReceiveBarrier(t testing.TB) {
	t.Helper()
	if env.GitDir == "" {
		t.Skip("env file has no OPSCTL_E2E_GIT_DIR; restart the environment")
	}
	hook := filepath.Join(env.GitDir, "hooks", "pre-receive")
	barrier := filepath.Join(env.GitDir, "e2e-barrier")
	if err := os.MkdirAll(barrier, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
# Installed by the opsctl e2e tests: hold each push until two have arrived.
b='` + barrier + `'
[ -d "$b" ] || exit 0
: > "$b/$$"
i=0
while [ "$(ls "$b" | wc -l)" -lt 2 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
exit 0
`
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Remove(hook)
		_ = os.RemoveAll(barrier)
	})
}

// TestTwoOperatorsStepTheSameCanaryAtOnce: Alice and Bob, each with a clone, step the same
// canary at the same moment. One step lands; the other is refused with the conflict error that
// names the winning commit and says nothing was pushed; git holds one step, and the live
// VirtualService matches git.
func TestTwoOperatorsStepTheSameCanaryAtOnce(t *testing.T) {
	const svc, envName = "product", "dev"
	l := newLoop(t)
	alice := newOperator(t, "alice", nil)
	bob := newOperator(t, "bob", nil)
	resetCanary(t, l, alice, svc, envName)
	app := appName(svc, envName)

	rev := alice.mutate("start", svc, "--env", envName, "--image-tag", "2.0.0", "--reason", "e2e: canary 2.0.0")
	l.refresh(app)
	waitAppState(t, l.apps, app, rev, 2*time.Minute)
	l.waitLive(svc, envName, want(true, 10))

	preReceiveBarrier(t)
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i, op := range []*operator{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = op.run(append([]string{"canary", "step", svc, "--env", envName, "--reason", "e2e: step by " + op.name, "--yes", "-o", "json"}, skipGates(t, "step")...)...)
		}()
	}
	wg.Wait()

	var winner, loser *result
	for i := range results {
		if results[i].code == 0 {
			if winner != nil {
				t.Fatalf("both steps succeeded; want exactly one:\n%s\n%s", results[0], results[1])
			}
			winner = &results[i]
		} else {
			loser = &results[i]
		}
	}
	if winner == nil || loser == nil {
		t.Fatalf("want one success and one conflict:\n%s\n%s", results[0], results[1])
	}
	var p pushed
	if err := json.Unmarshal([]byte(winner.stdout), &p); err != nil || p.Commit == "" {
		t.Fatalf("winner printed no commit: %v\n%s", err, winner)
	}
	for _, wantText := range []string{"changed since it was read", "nothing was committed or pushed", p.Commit[:7]} {
		if !strings.Contains(loser.stderr, wantText) {
			t.Errorf("the refused step's error does not say %q:\n%s", wantText, loser)
		}
	}
	if loser.code != 1 {
		t.Errorf("refused step exited %d, want 1", loser.code)
	}

	// Git holds exactly one step (10 -> 30), at the winner's commit.
	check := cloneRepo(t, env.GitURL)
	if head := check.git(check.dir, "rev-parse", "HEAD"); head != p.Commit {
		t.Errorf("remote main is at %s, want the winner's commit %s", head, p.Commit)
	}
	values := check.read(filepath.Join("gitops", "envs", envName, svc, "values.yaml"))
	if m := regexp.MustCompile(`(?m)^\s+weight:\s*(\d+)`).FindStringSubmatch(values); m == nil || m[1] != "30" {
		t.Errorf("values.yaml canary weight = %v, want 30 (one step)", m)
	}
	l.refresh(app)
	waitAppState(t, l.apps, app, p.Commit, 2*time.Minute)
	l.waitLive(svc, envName, want(true, 30))
}
