package canary_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	pcanary "github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/sim/kubesim"
	"github.com/come2us/opsctl/tui/app"
	"github.com/come2us/opsctl/tui/canary"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

// TestMain sets, once and before any test runs, what every test shares, so that the tests can
// run in parallel (t.Setenv is refused there): plain colours, git isolated from the machine's
// configuration, fixed commit dates (hashes and ages are reproducible; fixedNow is two hours
// later) and a cache directory of this run for any clone opsctl makes.
func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(gitopstest.Main(m, func(dir string) map[string]string {
		return map[string]string{
			"GIT_AUTHOR_DATE":    "2026-11-25T10:00:00Z",
			"GIT_COMMITTER_DATE": "2026-11-25T10:00:00Z",
			"XDG_CACHE_HOME":     dir,
		}
	}))
}

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const argoToken = "argo-token"

// world is a GitOps remote with a canary of order/prod at 10%, Argo CD (argocdtest) with an
// application per env × service, a cluster (kubesim) carrying the VirtualServices, and a
// Prometheus answering the gate queries.
type world struct {
	t       *testing.T
	remote  *gitopstest.Remote
	tuiDir  string
	argo    *argocdtest.Server
	apps    argocd.Apps
	kube    *kubesim.Server
	kcfg    config.Kube
	prom    *promAPI
	promURL string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, remote: gitopstest.NewRemote(t)}
	// Alice started the canary from her own working copy, with the CLI's controller.
	ctx := context.Background()
	alice, err := gitops.Open(ctx, w.remote.Clone("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	ctrl := pcanary.New(alice)
	p, err := ctrl.Plan(ctx, "prod", "order", pcanary.Op{Action: pcanary.ActionStart, Tag: "1.1.0", SkipGates: true}, "release 1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctrl.Execute(ctx, p); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	w.tuiDir = w.remote.Clone("Bob")

	w.kube = kubesim.New()
	base, err := w.kube.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.kube.Close() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := w.kube.WriteKubeconfig(kubeconfig, base, "sim", "come2us-prod"); err != nil {
		t.Fatal(err)
	}
	w.kcfg = config.Kube{Kubeconfig: kubeconfig, Context: "sim"}
	head := w.remote.Head()
	var docs []string
	for _, env := range gitops.Environments() {
		for _, svc := range gitops.Services() {
			docs = append(docs, argoApp(svc, env, head))
			v2 := int64(0)
			if svc == "order" && env == "prod" {
				v2 = 10
			}
			w.setWeights(env, svc, 100-v2, v2)
		}
	}
	w.canaryPods(2)
	w.argo = argocdtest.Start(t, argoToken, docs...)
	// Argo CD's controller: on a refresh it syncs the remote head and the mesh follows it.
	w.argo.OnRefresh = func(name string, _ bool) {
		head := w.remote.Head()
		for _, env := range gitops.Environments() {
			for _, svc := range gitops.Services() {
				if gitops.ApplicationName(svc, env) != name {
					continue
				}
				rel, err := gitops.ReadRelease(w.remote.File("gitops/envs/" + env + "/" + svc + "/values.yaml"))
				if err != nil {
					t.Error(err)
					return
				}
				v2 := int64(0)
				if rel.Canary.Enabled {
					v2 = int64(rel.Canary.Weight)
				}
				w.setWeights(env, svc, 100-v2, v2)
				if err := w.argo.Apply(argoApp(svc, env, head)); err != nil {
					t.Error(err)
				}
			}
		}
	}
	w.apps, err = argocd.New(ctx, argocd.Options{Server: w.argo.Addr(), PlainText: true, Token: argoToken, LocalConfigPath: "-",
		Project: argocd.DefaultProject, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.apps.Close() })

	w.prom = &promAPI{values: map[string]string{}}
	ps := httptest.NewServer(w.prom)
	t.Cleanup(ps.Close)
	w.promURL = ps.URL
	w.metrics(healthy)
	return w
}

func argoApp(svc, env, rev string) string {
	return argocdtest.App{Service: svc, Env: env, Automated: true, Revision: rev,
		Operation: &argocdtest.Operation{Phase: "Succeeded", Started: "2026-11-25T10:00:00Z", Finished: "2026-11-25T10:00:30Z"}}.YAML()
}

func (w *world) apply(obj map[string]any) {
	if _, err := w.kube.Apply(&unstructured.Unstructured{Object: obj}); err != nil {
		w.t.Error(err)
	}
}

func (w *world) setWeights(env, svc string, v1, v2 int64) {
	host := svc + "-service"
	ns := "come2us-" + env
	dest := func(subset string, wt int64) map[string]any {
		return map[string]any{"destination": map[string]any{"host": host, "subset": subset}, "weight": wt}
	}
	w.apply(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": host, "namespace": ns},
		"spec":     map[string]any{"hosts": []any{host}, "http": []any{map[string]any{"route": []any{dest("v1", v1), dest("v2", v2)}}}}})
	w.apply(map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": host, "namespace": ns},
		"spec": map[string]any{"host": host, "subsets": []any{
			map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
			map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}}}}})
}

func (w *world) canaryPods(ready int) {
	w.apply(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "order-service-v2", "namespace": "come2us-prod"},
		"spec":     map[string]any{"replicas": int64(ready)},
		"status":   map[string]any{"readyReplicas": int64(ready)}})
	for i := 0; i < ready; i++ {
		w.apply(map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": fmt.Sprintf("order-service-v2-%d", i), "namespace": "come2us-prod",
				"labels": map[string]any{"app": "order-service", "version": "v2"}},
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}})
	}
}

// promAPI answers Prometheus instant queries; values are keyed by PromQL, an unknown query gets
// an empty vector (metric absent).
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

var healthy = map[string]string{
	pcanary.GateQueryCanary5xx: "0", pcanary.GateQueryCanaryLatency: "120", pcanary.GateQueryStableLatency: "110",
	pcanary.GateQueryBusinessErrors: "0.002", pcanary.GateQueryCPU: "0.41", pcanary.GateQueryMemory: "0.52",
	pcanary.GateQueryCanaryRequests: "1200", pcanary.GateQueryDeadLetters: "0",
}

func (w *world) metrics(byName map[string]string) {
	w.t.Helper()
	e, err := pcanary.NewGateEvaluator(config.Prometheus{URL: w.promURL})
	if err != nil {
		w.t.Fatal(err)
	}
	values := map[string]string{}
	for name, v := range byName {
		q, err := e.Query(name, pcanary.GateTarget{Service: "order", Env: "prod"})
		if err != nil {
			w.t.Fatal(err)
		}
		values[q] = v
	}
	w.prom.mu.Lock()
	w.prom.values = values
	w.prom.mu.Unlock()
}

// backend is the default backend over the world, as pkg/cmd/tui wires it.
func (w *world) backend() canary.Backend {
	return canary.NewBackend(canary.Deps{
		OpenRepo: func(ctx context.Context) (*gitops.Repo, error) { return gitops.Open(ctx, w.tuiDir) },
		Apps:     w.apps,
		Mesh:     func(env string) (*mesh.Reader, error) { return mesh.FromConfig(w.kcfg, env) },
		Gates: func(env string) (*pcanary.GateEvaluator, error) {
			r, err := mesh.FromConfig(w.kcfg, env)
			if err != nil {
				return nil, err
			}
			return pcanary.NewGateEvaluator(config.Prometheus{URL: w.promURL}, pcanary.GateWithReadiness(r),
				pcanary.GateWithClock(func() time.Time { return fixedNow }))
		},
		FollowTimeout: 20 * time.Second,
	})
}

func (w *world) root(ctx context.Context, readonly bool) app.Model {
	be := w.backend()
	return app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098", ArgoCD: "argocd.example:443", Kube: "prod-eks", Readonly: readonly},
		Routes: []app.Route{{Name: "canary", Help: "canary board", Open: func([]string) (view.View, error) {
			return canary.New(canary.Options{Ctx: ctx, Backend: be, Readonly: readonly, Now: func() time.Time { return fixedNow }, Refresh: -1}), nil
		}}},
		Start: "canary",
	})
}

// normalise replaces commit hashes by C0, C1... (oldest first), padded to a short hash's width,
// so goldens do not depend on the content of the gitops/ tree.
func (w *world) normalise(s string) string {
	log := gitopstest.Git(w.t, w.remote.URL, "log", "--reverse", "--format=%H", "main")
	for i, h := range strings.Fields(log) {
		s = strings.ReplaceAll(s, h, fmt.Sprintf("C%d", i))
		s = regexp.MustCompile(`\b`+h[:7]+`\b`).ReplaceAllString(s, fmt.Sprintf("%-7s", fmt.Sprintf("C%d", i)))
	}
	return s
}

// open starts the TUI on the board with the cursor on order/prod.
func (w *world) open(t *testing.T, wd, ht int, readonly bool) *tuitest.Program {
	t.Helper()
	p := tuitest.Start(t, w.root(t.Context(), readonly), wd, ht)
	p.WaitFor("product", "in sync")
	p.Type("jjj")
	p.WaitFor("order/prod", "canary 1.1.0 at 10%", "verdict")
	return p
}

func TestCanaryBoard(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		t.Parallel()
		w := newWorld(t)
		p := w.open(t, wd, ht, false)
		screen := p.Screen()
		for _, want := range []string{"1.1.0", "10%", "canary pods ready", "pass"} {
			if !strings.Contains(screen, want) {
				t.Errorf("board lacks %q", want)
			}
		}
		tuitest.GoldenScreen(t, w.normalise(screen), wd, ht)
	})
}

// TestCanaryGateFail: a failing criterion is shown failing, with its value and threshold.
func TestCanaryGateFail(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bad := map[string]string{}
	for k, v := range healthy {
		bad[k] = v
	}
	bad[pcanary.GateQueryCanary5xx] = "0.042"
	w.metrics(bad)
	p := w.open(t, 120, 40, false)
	screen := p.Screen()
	if !regexp.MustCompile(`canary 5xx rate \(1m average\)\s+4\.20%\s+rollback if ≥ 3%\s+fail`).MatchString(screen) ||
		!strings.Contains(screen, "verdict fail") {
		t.Fatalf("failing gate not shown:\n%s", screen)
	}
}

func TestCanaryStepModal(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		t.Parallel()
		w := newWorld(t)
		p := w.open(t, wd, ht, false)
		p.Type("s")
		p.WaitFor("Step order/prod?", "Reason")
		tuitest.GoldenScreen(t, w.normalise(p.Screen()), wd, ht)
	})
}

func TestCanaryRollbackModal(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		t.Parallel()
		w := newWorld(t)
		p := w.open(t, wd, ht, false)
		p.Type("b")
		p.WaitFor("Roll back order/prod?")
		tuitest.GoldenScreen(t, w.normalise(p.Screen()), wd, ht)
	})
}

func TestCanaryWeightModal(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		t.Parallel()
		w := newWorld(t)
		p := w.open(t, wd, ht, false)
		p.Type("w")
		p.WaitFor("Set the canary weight of order/prod")
		p.Type("abc")
		p.Key(tea.KeyEnter)
		p.WaitFor("not a whole number")
		tuitest.GoldenScreen(t, w.normalise(p.Screen()), wd, ht)
	})
}

// TestCanaryStep is the key-driven flow: s, a reason, enter. One commit lands on the remote with
// the reason and the Opsctl trailers, and the dialog follows it until the live weights match.
func TestCanaryStep(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		t.Parallel()
		w := newWorld(t)
		before := w.remote.Head()
		p := w.open(t, wd, ht, false)
		p.Type("s")
		p.WaitFor("Step order/prod?")
		p.Key(tea.KeyEnter) // no reason yet: refused
		p.WaitFor("a reason is required")
		if w.remote.Head() != before {
			t.Fatal("a commit was pushed without a reason")
		}
		p.Type("phase 0 criteria met")
		p.Key(tea.KeyEnter)
		p.WaitFor("live VirtualService carries v1 70% / v2 30%", "enter/esc close")
		screen := p.Screen()
		tuitest.GoldenScreen(t, w.normalise(screen), wd, ht)

		log := gitopstest.Git(t, w.remote.URL, "log", "--format=%H", before+"..main")
		if n := len(strings.Fields(log)); n != 1 {
			t.Fatalf("%d commits pushed, want 1", n)
		}
		msg := gitopstest.Git(t, w.remote.URL, "log", "-1", "--format=%an%n%B", "main")
		for _, want := range []string{
			"Bob\ncanary order/prod: 1.1.0 10% -> 30%\n\nphase 0 criteria met\n",
			"Opsctl-Action: canary-step\n", "Opsctl-Service: order\n", "Opsctl-Env: prod\n",
			"Opsctl-From: weight=10 enabled=true stable=1.0.0 canary=1.1.0\n",
			"Opsctl-To: weight=30 enabled=true stable=1.0.0 canary=1.1.0\n",
			"Opsctl-Reason: phase 0 criteria met",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("commit message lacks %q:\n%s", want, msg)
			}
		}
		if !strings.Contains(string(w.remote.File("gitops/envs/prod/order/values.yaml")), "weight: 30") {
			t.Error("values file not at 30%")
		}
	})
}

// TestCanaryReadonly: none of s, w, p, b opens a dialog or writes to git.
func TestCanaryReadonly(t *testing.T) {
	t.Parallel()
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		t.Parallel()
		w := newWorld(t)
		before := w.remote.Head()
		p := w.open(t, wd, ht, true)
		// One key at a time: each refusal reaches the board as a message of its own, and
		// messages sent together may arrive in any order.
		for _, k := range []struct {
			key    string
			action pcanary.Action
		}{
			{"s", pcanary.ActionStep}, {"w", pcanary.ActionSet}, {"p", pcanary.ActionPromote}, {"b", pcanary.ActionRollback}, {"n", pcanary.ActionStart},
		} {
			p.Type(k.key)
			p.WaitFor("read-only: canary " + string(k.action) + " is disabled")
		}
		p.Key(tea.KeyEnter) // would confirm a dialog, had one opened
		screen := p.Screen()
		if strings.Contains(screen, "?") && regexp.MustCompile(`(Step|Roll back|Promote|Set the canary weight).*order/prod`).MatchString(screen) {
			t.Errorf("a dialog opened under --readonly:\n%s", screen)
		}
		if strings.Contains(screen, "s step") {
			t.Errorf("readonly help offers step:\n%s", screen)
		}
		if w.remote.Head() != before {
			t.Fatal("readonly pushed a commit")
		}
		tuitest.GoldenScreen(t, w.normalise(screen), wd, ht)
	})
}

// TestCanaryStart: n on a row without a canary asks for the image tag (refusing a bad one), then
// shows the plan and pushes one canary-start commit with the reason; on a row whose canary runs
// it says so and opens nothing.
func TestCanaryStart(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	before := w.remote.Head()
	p := w.open(t, 120, 40, false)
	p.Type("n") // order/prod: its canary runs
	p.WaitFor("a canary of order/prod is already running (1.1.0 at 10%)", "nothing was changed")
	p.Key(tea.KeyDown) // payment/prod
	p.Type("n")
	p.WaitFor("Start a canary of payment/prod", "Image tag")
	p.Type("bad tag")
	p.Key(tea.KeyEnter)
	p.WaitFor("is not a valid image tag")
	for range len("bad tag") {
		p.Key(tea.KeyBackspace)
	}
	p.Type("1.2.0")
	p.Key(tea.KeyEnter)
	p.WaitFor("Start a canary of payment/prod?", "Reason")
	if w.remote.Head() != before {
		t.Fatal("pushed before the confirmation")
	}
	p.Type("release 1.2.0")
	p.Key(tea.KeyEnter)
	p.WaitFor("pushed", "enter/esc close")

	log := gitopstest.Git(t, w.remote.URL, "log", "--format=%H", before+"..main")
	if n := len(strings.Fields(log)); n != 1 {
		t.Fatalf("%d commits pushed, want 1", n)
	}
	msg := gitopstest.Git(t, w.remote.URL, "log", "-1", "--format=%B", "main")
	for _, want := range []string{"Opsctl-Action: canary-start\n", "Opsctl-Service: payment\n", "Opsctl-Env: prod\n", "Opsctl-Reason: release 1.2.0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	rel, err := gitops.ReadRelease(w.remote.File("gitops/envs/prod/payment/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c := rel.Canary; !c.Enabled || c.Tag != "1.2.0" || c.Weight != 10 {
		t.Fatalf("payment/prod canary after start = %+v, want 1.2.0 at 10%%", c)
	}
}
