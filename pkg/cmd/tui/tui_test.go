package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/iostreams"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
	"github.com/come2us/opsctl/tui/tuitest"
)

// TestMain sets, once and before any test runs, what every test shares, so that the tests can
// run in parallel (t.Setenv is refused there): plain colours, git isolated from the machine's
// configuration, and no Argo CD token or argocd CLI config from the machine.
func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	os.Exit(gitopstest.Main(m, func(dir string) map[string]string {
		return map[string]string{"ARGOCD_AUTH_TOKEN": "", "ARGOCD_CONFIG_DIR": dir}
	}))
}

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const argoToken = "argo-token"

var orderApp = argocdtest.App{Revision: "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"}.YAML()

// env writes a config with two contexts: prod (Argo CD, a GitOps working copy) and sandbox
// (simulated, read-only, nothing configured).
func env(t *testing.T) (*cmdutil.Factory, *argocdtest.Server) {
	t.Helper()
	kafka := replaytest.NewCluster(t)
	replaytest.Produce(t, kafka, replaytest.Saga(1, 7, "STOCK_ROW_MISSING", 2, replaytest.Base))
	remote := gitopstest.NewRemote(t)
	dir := remote.Clone("Bob")
	srv := argocdtest.Start(t, argoToken, orderApp)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	doc := fmt.Sprintf(`current-context: prod
contexts:
  prod:
    kafka:
      brokers: [%q]
    argocd:
      server: %q
      plaintext: true
      token: %q
    gitops:
      dir: %q
    kube:
      context: prod-eks
  sandbox:
    simulated: true
    readonly: true
`, kafka.ListenAddrs()[0], srv.Addr(), argoToken, dir)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ios, _, _, _ := iostreams.Test()
	return &cmdutil.Factory{IOStreams: ios, ConfigPath: cfg, Now: func() time.Time { return fixedNow }}, srv
}

// TestSessionRoutesAndContexts opens the TUI as `opsctl tui` builds it, moves between views with
// the palette and switches to a simulated, read-only context. It stays serial: goroutines of
// tests running beside it would read as leaks.
func TestSessionRoutesAndContexts(t *testing.T) {
	f, srv := env(t)
	time.Sleep(100 * time.Millisecond) // the fixture producer's connections wind down
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newSession(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.model("")
	if err != nil {
		t.Fatal(err)
	}
	p := tuitest.Start(t, m, 100, 30)
	p.WaitFor("ctx:prod", "kube:prod-eks", "orders-failed.DLT")
	p.Type(":trace 7")
	p.Key(tea.KeyEnter)
	p.WaitFor("1 records · 1 dead letters, 0 replayed")
	p.Type(":canary")
	p.Key(tea.KeyEnter)
	p.WaitFor("1.0.0")
	p.Type(":apps")
	p.Key(tea.KeyEnter)
	p.WaitFor("order-service-prod", "Synced")
	p.Type(":ctx sandbox")
	p.Key(tea.KeyEnter)
	p.WaitFor("SIMULATED", "READ-ONLY", "no GitOps repository")
	screen := tuitest.Plain(p.Quit().View())
	if !strings.Contains(screen, "no GitOps repository") {
		t.Errorf("the sandbox context has no repository, the board should say so:\n%s", screen)
	}
	s.close()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Watchers() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Watchers(); n != 0 {
		t.Errorf("%d Argo CD watches still open", n)
	}
	goleak.VerifyNone(t, ignore, goleak.IgnoreTopFunction("github.com/charmbracelet/x/exp/teatest.NewTestModel.func2"))
}

func TestNeedsTerminal(t *testing.T) {
	t.Parallel()
	f, _ := env(t)
	cmd := NewCmdTUI(f, func(*Options) error { t.Fatal("ran without a terminal"); return nil })
	cmd.SetArgs(nil)
	err := cmd.Execute()
	if err == nil || cmdutil.ExitCode(err) != cmdutil.ExitUsage || !strings.Contains(err.Error(), "needs a terminal") {
		t.Fatalf("err = %v", err)
	}
	f.IOStreams.SetTTY(true)
	var got *Options
	cmd = NewCmdTUI(f, func(o *Options) error { got = o; return nil })
	cmd.SetArgs([]string{"trace", "42"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Start != "trace 42" {
		t.Fatalf("start = %+v", got)
	}
}

// TestRunEndsWithContext: Run returns cleanly when its context ends (the sandbox stopping).
func TestRunEndsWithContext(t *testing.T) {
	t.Parallel()
	f, _ := env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := Run(ctx, f); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestPaletteArguments: `:dlt TOPIC` opens that topic's error groups; an unknown topic, or an
// unknown context, is an error that leaves the screen as it was.
func TestPaletteArguments(t *testing.T) {
	t.Parallel()
	f, _ := env(t)
	s, err := newSession(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	m, err := s.model("trace 7")
	if err != nil {
		t.Fatal(err)
	}
	p := tuitest.Start(t, m, 100, 30)
	p.WaitFor("1 records · 1 dead letters, 0 replayed")
	p.Type(":ctx prodd")
	p.Key(tea.KeyEnter)
	p.WaitFor(`still on context prod: context "prodd" is not in`)
	p.Type(":dlt nope.DLT")
	p.Key(tea.KeyEnter)
	p.WaitFor("no dead-letter topic nope.DLT in this context", "nothing was opened")
	p.Type(":dlt orders-failed.DLT")
	p.Key(tea.KeyEnter)
	p.WaitFor("dlt › orders-failed.DLT", "STOCK_ROW_MISSING")
	screen := tuitest.Plain(p.Quit().View())
	if !strings.Contains(screen, "dlt › orders-failed.DLT") {
		t.Errorf("`:dlt orders-failed.DLT` did not open the topic:\n%s", screen)
	}
}
