package apps_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/goldentest"
	"github.com/come2us/opsctl/pkg/iostreams"
)

const token = "s3cret-token"

// fixedNow is the clock of every golden file.
var fixedNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func fixtures(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, n := range []string{"order-service-prod", "payment-service-prod", "monitoring"} {
		b, err := os.ReadFile(filepath.Join("testdata", "apps", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// env isolates a test from the machine's Argo CD settings.
func env(t *testing.T) {
	t.Setenv("ARGOCD_AUTH_TOKEN", "")
	t.Setenv("ARGOCD_SERVER", "")
	t.Setenv("ARGOCD_CONFIG_DIR", t.TempDir())
	t.Setenv("OPSCTL_ACTOR", "tester@host")
}

// configFor writes an opsctl config whose current context points at server with tok.
func configFor(t *testing.T, server, tok string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := fmt.Sprintf("current-context: prod\ncontexts:\n  prod:\n    argocd:\n      server: %q\n      plaintext: true\n      token: %q\n", server, tok)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type result struct {
	out, errOut string
	err         error
}

// run executes opsctl with args against the config at cfg.
func run(t *testing.T, cfg string, tty bool, stdin string, args ...string) result {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(tty)
	in.WriteString(stdin)
	f := &cmdutil.Factory{IOStreams: ios, Now: func() time.Time { return fixedNow }}
	cmd := root.NewCmdRoot(f) // binds the global flags, so the config path goes in as --config
	cmd.SetArgs(append([]string{"--config", cfg}, args...))
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	return result{out.String(), errOut.String(), err}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldentest.Equal(t, name, []byte(got))
}

func TestReadCommandsGolden(t *testing.T) {
	env(t)
	srv := argocdtest.Start(t, token, fixtures(t)...)
	// Entry 2's commit is known; entry 1's revision is gone from git.
	srv.SetCommit("3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", argocdtest.Commit{Author: "Bob <bob@example.com>",
		Date: time.Date(2026, 11, 24, 9, 58, 0, 0, time.UTC), Message: "canary order/prod: 1.1.0 10% -> 30%\n\nphase 0 met\n"})
	srv.SetResources("order-service-prod",
		argocdtest.Resource{Group: "apps", Kind: "Deployment", Namespace: "come2us-prod", Name: "order-service-v1",
			Target: "spec:\n  replicas: 3\n", Live: "spec:\n  replicas: 2\n"},
		argocdtest.Resource{Kind: "Service", Namespace: "come2us-prod", Name: "order-service",
			Target: "metadata:\n  name: order-service\n", Live: "metadata:\n  name: order-service\n"},
	)
	cfg := configFor(t, srv.Addr(), token)
	tests := []struct {
		golden string
		args   []string
	}{
		{"diff.golden", []string{"apps", "diff", "order-service-prod"}},
		{"manifests_live.golden", []string{"apps", "diff", "order-service-prod", "--manifests", "--live"}},
		{"list.golden", []string{"apps", "list"}},
		{"list.json.golden", []string{"apps", "list", "-o", "json"}},
		{"list_all_projects.golden", []string{"apps", "list", "--project", ""}},
		{"get_order.golden", []string{"apps", "get", "order-service-prod"}},
		{"get_payment.golden", []string{"apps", "get", "payment-service-prod"}},
		{"history.golden", []string{"apps", "history", "order-service-prod"}},
		{"history.json.golden", []string{"apps", "history", "order-service-prod", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.golden, ".golden"), func(t *testing.T) {
			r := run(t, cfg, false, "", tt.args...)
			if r.err != nil {
				t.Fatalf("%v: %v", tt.args, r.err)
			}
			golden(t, tt.golden, r.out)
		})
	}
}

func TestGetSanitisesServerText(t *testing.T) {
	env(t)
	srv := argocdtest.Start(t, token, fixtures(t)...)
	r := run(t, configFor(t, srv.Addr(), token), false, "", "apps", "get", "payment-service-prod")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.ContainsAny(r.out, "\x1b\x07") {
		t.Fatalf("terminal escapes from the server reached the output:\n%q", r.out)
	}
	if !strings.Contains(r.out, `rollout to finish\x1b]0;pwned\x07`) {
		t.Fatalf("escaped health message not shown:\n%s", r.out)
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestErrorsAreOneLineAndExitOne(t *testing.T) {
	env(t)
	srv := argocdtest.Start(t, token, fixtures(t)...)
	dead := closedAddr(t)
	tests := []struct {
		name string
		cfg  string
		args []string
		want string
	}{
		{"unreachable server", configFor(t, dead, token), []string{"apps", "list"},
			"cannot reach Argo CD at " + dead + ": connection refused"},
		{"wrong token", configFor(t, srv.Addr(), "wrong"), []string{"apps", "list"},
			"Argo CD at " + srv.Addr() + " rejected the token: invalid token (invalid session: token signature is invalid); run `argocd login " + srv.Addr() + "` or set ARGOCD_AUTH_TOKEN"},
		{"expired token", configFor(t, srv.Addr(), argocdtest.ExpiredToken), []string{"apps", "get", "order-service-prod"},
			"Argo CD at " + srv.Addr() + " rejected the token: it has expired; run `argocd login " + srv.Addr() + "` or set ARGOCD_AUTH_TOKEN"},
		{"unknown app", configFor(t, srv.Addr(), token), []string{"apps", "get", "nope-service-prod"},
			`application "nope-service-prod" not found in Argo CD at ` + srv.Addr() + " (project come2us)"},
		{"unknown app on sync", configFor(t, srv.Addr(), token), []string{"apps", "sync", "nope-service-prod", "--yes"},
			`application "nope-service-prod" not found in Argo CD at ` + srv.Addr() + " (project come2us)"},
		{"unknown app on wait", configFor(t, srv.Addr(), token), []string{"apps", "wait", "nope-service-prod"},
			`application "nope-service-prod" not found in Argo CD at ` + srv.Addr() + " (project come2us)"},
		{"unknown app on history", configFor(t, srv.Addr(), token), []string{"apps", "history", "nope-service-prod"},
			`application "nope-service-prod" not found in Argo CD at ` + srv.Addr() + " (project come2us)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.cfg, false, "", tt.args...)
			if r.err == nil {
				t.Fatal("no error")
			}
			if r.err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", r.err, tt.want)
			}
			if code := cmdutil.ExitCode(r.err); code != cmdutil.ExitError {
				t.Fatalf("exit code %d, want 1", code)
			}
			if r.out != "" && strings.Contains(r.out, "rpc error") {
				t.Fatalf("gRPC noise on stdout: %q", r.out)
			}
		})
	}
}

func TestSyncGuards(t *testing.T) {
	env(t)
	srv := argocdtest.Start(t, token, fixtures(t)...)
	cfg := configFor(t, srv.Addr(), token)

	r := run(t, cfg, false, "", "--readonly", "apps", "sync", "order-service-prod", "--yes")
	if !errors.Is(r.err, cmdutil.ErrReadonly) {
		t.Fatalf("sync under --readonly = %v", r.err)
	}
	r = run(t, cfg, false, "", "apps", "sync", "order-service-prod", "--dry-run")
	if !errors.Is(r.err, cmdutil.ErrConfirmationNeeded) {
		t.Fatalf("sync without a terminal and without --yes = %v", r.err)
	}
	r = run(t, cfg, true, "n\n", "apps", "sync", "order-service-prod")
	if r.err == nil || !strings.Contains(r.err.Error(), "nothing was changed") {
		t.Fatalf("declined sync = %v", r.err)
	}
	if n := len(srv.Syncs()); n != 0 {
		t.Fatalf("%d syncs reached Argo CD before any was confirmed", n)
	}

	r = run(t, cfg, true, "y\n", "apps", "sync", "order-service-prod", "--prune")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.out, "Sync order-service-prod (prune) in Argo CD now? [y/N]") ||
		!strings.Contains(r.out, "Sync of order-service-prod (prune) requested. Follow it with: opsctl apps wait order-service-prod") {
		t.Fatalf("confirmed sync output:\n%s", r.out)
	}
	syncs := srv.Syncs()
	if len(syncs) != 1 || !syncs[0].Prune || syncs[0].DryRun || syncs[0].App != "order-service-prod" {
		t.Fatalf("syncs = %+v", syncs)
	}

	r = run(t, cfg, false, "", "apps", "sync", "order-service-prod", "--yes")
	if r.err == nil || r.err.Error() != "sync order-service-prod: another operation is already in progress; nothing was started" || cmdutil.ExitCode(r.err) != 1 {
		t.Fatalf("sync during an operation = %v", r.err)
	}
}

func TestSyncWaitAndWait(t *testing.T) {
	env(t)
	srv := argocdtest.Start(t, token, fixtures(t)...)
	healthy := strings.NewReplacer("3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", "b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6").Replace(fixtures(t)[0])
	srv.OnSync = func(argocdtest.SyncRequest) {
		if err := srv.Apply(healthy); err != nil {
			t.Error(err)
		}
	}
	cfg := configFor(t, srv.Addr(), token)
	r := run(t, cfg, false, "", "apps", "sync", "order-service-prod", "--yes", "--dry-run", "--wait", "--timeout", "10s")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.out != "order-service-prod is Synced and Healthy at b7c8d9e\n" {
		t.Fatalf("sync --wait output %q", r.out)
	}
	if s := srv.Syncs(); len(s) != 1 || !s[0].DryRun {
		t.Fatalf("syncs = %+v", s)
	}

	r = run(t, cfg, false, "", "apps", "wait", "order-service-prod", "--revision", "b7c8d9e", "--health")
	if r.err != nil || r.out != "order-service-prod is Synced and Healthy at b7c8d9e\n" {
		t.Fatalf("wait = %q, %v", r.out, r.err)
	}
	r = run(t, cfg, false, "", "apps", "wait", "payment-service-prod", "--health", "--timeout", "200ms")
	want := "timed out after 200ms waiting for payment-service-prod: health is Progressing (want Healthy): Deployment payment-service-v2: waiting for rollout to finish\x1b]0;pwned\x07"
	if r.err == nil || r.err.Error() != want || cmdutil.ExitCode(r.err) != 1 {
		t.Fatalf("wait timeout = %q", r.err)
	}
	r = run(t, cfg, false, "", "apps", "wait", "payment-service-prod", "--timeout", "0s")
	if cmdutil.ExitCode(r.err) != cmdutil.ExitUsage {
		t.Fatalf("wait --timeout 0s = %v", r.err)
	}
}

// lines is a concurrency-safe writer that reports each write.
type lines struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{}
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor blocks until the output has n lines.
func (l *lines) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for strings.Count(l.String(), "\n") < n {
		select {
		case <-l.wrote:
		case <-deadline:
			t.Fatalf("waited for %d lines, have:\n%s", n, l.String())
		}
	}
}

func TestWatchStreamsChangesAndStops(t *testing.T) {
	env(t)
	leaks := goleak.IgnoreCurrent()
	for _, args := range [][]string{{"apps", "watch"}, {"apps", "list", "--watch"}} {
		srv := argocdtest.Start(t, token, fixtures(t)...)
		cfg := configFor(t, srv.Addr(), token)
		ios, _, _, _ := iostreams.Test()
		out := &lines{wrote: make(chan struct{}, 1)}
		ios.Out = out
		f := &cmdutil.Factory{IOStreams: ios, Now: func() time.Time { return fixedNow }}
		cmd := root.NewCmdRoot(f)
		cmd.SetArgs(append([]string{"--config", cfg}, args...))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cmd.ExecuteContext(ctx) }()

		out.waitFor(t, 3) // header and the two applications of the project
		// A reconciliation that changes nothing shown is not printed; a health change is.
		if err := srv.Apply(fixtures(t)[0]); err != nil {
			t.Fatal(err)
		}
		if err := srv.Apply(strings.Replace(fixtures(t)[1], "status: Progressing", "status: Healthy", 1)); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, 4)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("%v after interrupt = %v", args, err)
		}
		golden(t, "watch.golden", out.String())
		srv.Stop()
	}
	goleak.VerifyNone(t, leaks)
}

// TestRollbackGuards: a rollback of an application that syncs itself is refused before the
// question, naming what to do instead, and nothing reaches Argo CD; an unknown entry is refused
// naming the entries; under --readonly nothing is asked; a bad ID is a usage error (exit 2).
// With auto-sync off and --yes, Argo CD is asked to sync the entry's revision.
func TestRollbackGuards(t *testing.T) {
	env(t)
	srv := argocdtest.Start(t, token, fixtures(t)...)
	cfg := configFor(t, srv.Addr(), token)

	r := run(t, cfg, true, "y\n", "apps", "rollback", "order-service-prod", "1")
	if r.err == nil || !strings.Contains(r.err.Error(), "auto-sync is on") || strings.Contains(r.errOut, "Roll back") {
		t.Fatalf("rollback with auto-sync: err %v, stderr %q", r.err, r.errOut)
	}
	r = run(t, cfg, false, "", "apps", "rollback", "order-service-prod", "x1")
	if r.err == nil || !strings.Contains(r.err.Error(), "history entry's number") {
		t.Fatalf("bad ID: %v", r.err)
	}
	r = run(t, cfg, false, "", "--readonly", "apps", "rollback", "order-service-prod", "1", "--yes")
	if r.err == nil || !strings.Contains(r.err.Error(), "read-only") {
		t.Fatalf("readonly rollback: %v", r.err)
	}
	if got := srv.Syncs(); len(got) != 0 {
		t.Fatalf("refused rollbacks reached Argo CD: %+v", got)
	}

	manual := strings.Replace(fixtures(t)[0], "    automated:\n      prune: true\n      selfHeal: true\n", "", 1)
	if err := srv.Apply(manual); err != nil {
		t.Fatal(err)
	}
	r = run(t, cfg, false, "", "apps", "rollback", "order-service-prod", "7", "--yes")
	if r.err == nil || !strings.Contains(r.err.Error(), "no history entry 7") {
		t.Fatalf("unknown entry: %v", r.err)
	}
	r = run(t, cfg, false, "", "apps", "rollback", "order-service-prod", "1", "--yes")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.out, "Rollback of order-service-prod to history entry 1 (revision 0b1c2d3") {
		t.Fatalf("output %q", r.out)
	}
	if got := srv.Syncs(); len(got) != 1 || got[0].RollbackID != 1 {
		t.Fatalf("requests %+v", got)
	}
}
