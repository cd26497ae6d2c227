package apps_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	"github.com/come2us/opsctl/tui/app"
	"github.com/come2us/opsctl/tui/apps"
	"github.com/come2us/opsctl/tui/tuitest"
	"github.com/come2us/opsctl/tui/view"
)

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii) // goldens without colour codes
	os.Exit(m.Run())
}

const token = "tui-token"

var fixedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "apps", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type world struct {
	srv  *argocdtest.Server
	apps argocd.Apps
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := argocdtest.Start(t, token, fixture(t, "order-service-prod"), fixture(t, "payment-service-prod"), fixture(t, "monitoring"))
	cl, err := argocd.New(context.Background(), argocd.Options{Server: srv.Addr(), PlainText: true, Token: token,
		LocalConfigPath: "-", Project: argocd.DefaultProject, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return &world{srv: srv, apps: cl}
}

// root is the whole TUI with the apps route, as `opsctl tui` builds it.
func (w *world) root(ctx context.Context, readonly bool) app.Model {
	return app.New(app.Options{
		Header: app.Header{Context: "prod", Kafka: "b-1.msk:9098", ArgoCD: "argocd.example:443", Kube: "prod-eks", Readonly: readonly},
		Routes: []app.Route{{Name: "apps", Help: "Argo CD applications", Open: func([]string) (view.View, error) {
			return apps.New(apps.Options{Ctx: ctx, Apps: w.apps, Readonly: readonly, Now: func() time.Time { return fixedNow }, WaitTimeout: 10 * time.Second}), nil
		}}},
		Start: "apps",
	})
}

func TestAppsList(t *testing.T) {
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor("order-service-prod", "payment-service-prod", "sync Running")
		screen := p.Screen()
		if strings.Contains(screen, "monitoring") {
			t.Error("an application of another project is listed")
		}
		tuitest.GoldenScreen(t, screen, wd, ht)
	})
}

func TestAppsDetail(t *testing.T) {
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor("payment-service-prod")
		p.Key(tea.KeyEnter)
		p.WaitFor("RESOURCES (3)", "order-service-legacy")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

// TestAppsDetailSanitised opens an application whose health message carries an OSC escape: it
// is drawn as visible text, never sent to the terminal.
func TestAppsDetailSanitised(t *testing.T) {
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor("payment-service-prod")
	p.Type("j")
	p.Key(tea.KeyEnter)
	p.WaitFor(`pwned`)
	raw := p.Quit().View()
	if !strings.Contains(raw, `\x1b]0;pwned\x07`) {
		t.Errorf("escape not shown as text:\n%s", raw)
	}
	if strings.ContainsAny(raw, "\x1b\x07") {
		t.Errorf("raw control bytes reached the screen: %q", raw)
	}
}

func TestAppsHistory(t *testing.T) {
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor("order-service-prod")
		p.Type("h")
		p.WaitFor("0b1c2d3", "alice")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

// TestAppsSync confirms a sync and follows it: the server accepts exactly one sync and the
// dialog keeps the outcome on screen.
func TestAppsSync(t *testing.T) {
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		healthy := strings.ReplaceAll(fixture(t, "order-service-prod"), "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", "b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6")
		w.srv.OnSync = func(argocdtest.SyncRequest) {
			if err := w.srv.Apply(healthy); err != nil {
				t.Error(err)
			}
		}
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor("order-service-prod")
		p.Type("S")
		p.WaitFor("Sync order-service-prod?", "enter/y sync")
		// The dialog before anything happened.
		if n := len(w.srv.Syncs()); n != 0 {
			t.Fatalf("%d syncs before confirming", n)
		}
		p.Key(tea.KeyEnter)
		p.WaitFor("Synced and Healthy at b7c8d9e")
		screen := p.Screen()
		tuitest.GoldenScreen(t, screen, wd, ht)
		if s := w.srv.Syncs(); len(s) != 1 || s[0].App != "order-service-prod" || s[0].DryRun {
			t.Fatalf("syncs = %+v", s)
		}
	})
}

func TestAppsSyncModal(t *testing.T) {
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), false), wd, ht)
		p.WaitFor("order-service-prod")
		p.Type("S")
		p.WaitFor("Sync order-service-prod?")
		tuitest.GoldenScreen(t, p.Screen(), wd, ht)
	})
}

// TestAppsReadonly: S is not offered, and pressing it changes nothing.
func TestAppsReadonly(t *testing.T) {
	tuitest.EachSize(t, func(t *testing.T, wd, ht int) {
		w := newWorld(t)
		p := tuitest.Start(t, w.root(t.Context(), true), wd, ht)
		p.WaitFor("order-service-prod")
		p.Type("S")
		p.WaitFor("read-only: syncing is disabled")
		p.Type("y") // would confirm a dialog, had one opened
		screen := p.Screen()
		if strings.Contains(screen, "Sync order-service-prod?") || strings.Contains(screen, "S sync") {
			t.Errorf("readonly screen offers a sync:\n%s", screen)
		}
		if n := len(w.srv.Syncs()); n != 0 {
			t.Fatalf("readonly: %d syncs reached Argo CD", n)
		}
		tuitest.GoldenScreen(t, screen, wd, ht)
	})
}

// TestAppsLive: a change Argo CD reports reaches the table without a key press.
func TestAppsLive(t *testing.T) {
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 80, 24)
	p.WaitFor("payment-service-prod", "Progressing")
	doc := fixture(t, "payment-service-prod")
	doc = strings.Replace(doc, "status: OutOfSync", "status: Synced", 1)
	doc = strings.Replace(doc, "status: Progressing", "status: Degraded", 1)
	if err := w.srv.Apply(doc); err != nil {
		t.Fatal(err)
	}
	p.WaitFor("Degraded")
	screen := p.Screen()
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, "payment-service-prod") && !strings.Contains(l, "Degraded") {
			t.Errorf("payment row not updated: %q", l)
		}
	}
}

// TestAppsNoLeak: after quitting, the watch and every request have ended.
func TestAppsNoLeak(t *testing.T) {
	w := newWorld(t)
	opts := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	p := tuitest.Start(t, w.root(ctx, false), 80, 24)
	p.WaitFor("order-service-prod")
	p.Type("S")
	p.WaitFor("Sync order-service-prod?")
	p.Quit()
	cancel()
	// The views closed their watch when the program quit, before the client was closed.
	deadline := time.Now().Add(5 * time.Second)
	for w.srv.Watchers() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := w.srv.Watchers(); n != 0 {
		t.Errorf("%d watch streams still open after quitting", n)
	}
	w.apps.Close()
	w.srv.Stop()
	goleak.VerifyNone(t, opts,
		// teatest waits for SIGINT for the life of the test binary.
		goleak.IgnoreTopFunction("github.com/charmbracelet/x/exp/teatest.NewTestModel.func2"))
}

// TestAppsFilterMatchesTheName: the filter selects by application name, not by a word that
// happens to be in another column (order-service-prod's operation is "sync Running").
func TestAppsFilterMatchesTheName(t *testing.T) {
	w := newWorld(t)
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor("order-service-prod", "sync Running")
	p.Type("/running")
	p.Key(tea.KeyEnter)
	p.WaitFor("no application matches the filter")
	p.Key(tea.KeyEsc)
	p.Type("/payment")
	p.Key(tea.KeyEnter)
	p.WaitFor("payment-service-prod")
	if s := p.Screen(); strings.Contains(s, "order-service-prod") {
		t.Fatalf("the filter payment shows order-service-prod:\n%s", s)
	}
}

// TestAppsAgesTick: the SYNCED age keeps counting on the view's clock between watch events.
func TestAppsAgesTick(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	now := fixedNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := t.Context()
	root := app.New(app.Options{
		Header: app.Header{Context: "prod"},
		Routes: []app.Route{{Name: "apps", Open: func([]string) (view.View, error) {
			return apps.New(apps.Options{Ctx: ctx, Apps: w.apps, Now: clock, Tick: 5 * time.Millisecond}), nil
		}}},
		Start: "apps",
	})
	p := tuitest.Start(t, root, 120, 40)
	p.WaitFor("payment-service-prod", "1h")
	mu.Lock()
	now = now.Add(3 * time.Hour)
	mu.Unlock()
	p.WaitFor("4h") // synced 1h ago, 3h later; no event arrives: only the tick redraws
}

// TestAppsResourceYAMLAndDiff: y on a resource shows the cluster's YAML, d its diff from git,
// both read through Argo CD's managed resources as `opsctl apps diff` does; a server's escape
// sequence is drawn as text.
func TestAppsResourceYAMLAndDiff(t *testing.T) {
	w := newWorld(t)
	w.srv.SetResources("order-service-prod",
		argocdtest.Resource{Group: "apps", Kind: "Deployment", Namespace: "come2us-prod", Name: "order-service-v1",
			Target: "metadata:\n  name: order-service-v1\nspec:\n  replicas: 3\n",
			Live:   "metadata:\n  name: order-service-v1\n  annotations:\n    note: \"\\e]0;pwned\\a\"\nspec:\n  replicas: 2\n"})
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor("order-service-prod")
	p.Key(tea.KeyEnter)
	p.WaitFor("RESOURCES (3)", "y yaml")
	p.Type("y")
	p.WaitFor("yaml Deployment/order-service-v1", "replicas: 2", "pwned")
	p.Key(tea.KeyEsc)
	p.Type("d")
	p.WaitFor("diff Deployment/order-service-v1", "--- git/Deployment.apps/order-service-v1", "-  replicas: 3", "+  replicas: 2")
	raw := p.Quit().View()
	if strings.ContainsAny(raw, "\x07") || strings.Contains(raw, "\x1b]0;") {
		t.Fatalf("raw control bytes reached the screen: %q", raw)
	}
}

// TestAppsHistoryCommitsAndRollback: the history shows each entry's commit; R on an application
// that syncs itself says why Argo CD would refuse and asks nothing; with auto-sync off, R on an
// entry asks (naming the entry) and then asks Argo CD to roll back to it.
func TestAppsHistoryCommitsAndRollback(t *testing.T) {
	w := newWorld(t)
	w.srv.SetCommit("3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", argocdtest.Commit{Author: "Bob", Date: fixedNow.Add(-2 * time.Hour),
		Message: "canary order/prod: 1.1.0 10% -> 30%\n\nphase 0 met\n"})
	w.srv.SetCommit("0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c", argocdtest.Commit{Author: "Alice", Date: fixedNow.Add(-28 * time.Hour),
		Message: "order: 1.0.0\n"})
	p := tuitest.Start(t, w.root(t.Context(), false), 120, 40)
	p.WaitFor("order-service-prod")
	p.Type("h")
	p.WaitFor("canary order/prod: 1.1.0 10% -> 30%", "order: 1.0.0", "R roll back")
	p.Type("R")
	p.WaitFor("auto-sync is on", "nothing was changed")

	manual := strings.Replace(fixture(t, "order-service-prod"), "    automated:\n      prune: true\n      selfHeal: true\n", "", 1)
	if err := w.srv.Apply(manual); err != nil {
		t.Fatal(err)
	}
	p.Key(tea.KeyEsc)
	p.Key(tea.KeyEnter) // the detail reads the application afresh
	p.WaitFor("auto-sync off")
	p.Type("h")
	p.WaitFor("order: 1.0.0")
	p.Type("j") // entry 1
	p.Type("R")
	p.WaitFor("Roll back order-service-prod to entry 1?", "revision 0b1c2d3", "order: 1.0.0")
	if got := w.srv.Syncs(); len(got) != 0 {
		t.Fatalf("a request before the confirmation: %+v", got)
	}
	p.Key(tea.KeyEnter)
	p.WaitFor("rollback accepted")
	if got := w.srv.Syncs(); len(got) != 1 || got[0].RollbackID != 1 {
		t.Fatalf("requests %+v", got)
	}
}
