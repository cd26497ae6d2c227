package canary_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/hangtest"
)

// seedCanary commits and pushes a running canary of svc in env straight with git.
func (e *env) seedCanary(envName, svc string, c gitops.Canary) {
	e.t.Helper()
	p, err := gitops.ValuesPath(gitops.DefaultRoot, envName, svc)
	if err != nil {
		e.t.Fatal(err)
	}
	file := filepath.Join(e.dir, filepath.FromSlash(p))
	data, err := os.ReadFile(file)
	if err != nil {
		e.t.Fatal(err)
	}
	rel, err := gitops.ReadRelease(data)
	if err != nil {
		e.t.Fatal(err)
	}
	rel.Canary = c
	if data, err = gitops.EditRelease(data, rel); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	gitopstest.Git(e.t, e.dir, "commit", "--quiet", "-am", "seed canary")
	gitopstest.Git(e.t, e.dir, "push", "--quiet", "origin", "main")
}

// A canary command whose push goes to a remote that never answers ends at --git-timeout and
// says what was done: a local commit, a push with an unknown outcome, the commit undone, how to
// check. Before git commands had a deadline this hung forever. The deadline leaves room for the
// local clone opsctl prepares first, which on a loaded machine has taken more than 2 s.
func TestPushToHungRemoteEndsAtGitTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.seedCanary("prod", "order", gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 30})
	before := e.remote.Head()
	gitopstest.Git(t, e.dir, "remote", "set-url", "--push", "origin", "git://"+hangtest.Listen(t)+"/gitops.git")

	r := e.run(nil, "canary", "rollback", "order", "--env", "prod", "--reason", "5xx", "--yes",
		"--gitops-dir", e.dir, "--git-timeout", "8s")
	if r.err == nil {
		t.Fatalf("rollback succeeded against a hung remote:\n%s", r.out)
	}
	msg := r.err.Error()
	for _, want := range []string{"locally, but the push to origin main did not finish in 8s", "may or may not have it", "git log origin/main"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if e.remote.Head() != before {
		t.Errorf("the remote moved")
	}
	if s := gitopstest.Git(t, e.dir, "status", "--porcelain"); s != "" {
		t.Errorf("working copy left dirty:\n%s", s)
	}
}

// hangArgoCD points the context's Argo CD at a server that accepts connections and never
// answers, with argocd.timeout 1s.
func (le *liveEnv) hangArgoCD() {
	le.t.Helper()
	b, err := os.ReadFile(le.config)
	if err != nil {
		le.t.Fatal(err)
	}
	cfg := strings.Replace(string(b), fmt.Sprintf("server: %q", le.argo.Addr()), fmt.Sprintf("server: %q\n      timeout: 1s", hangtest.Listen(le.t)), 1)
	if err := os.WriteFile(le.config, []byte(cfg), 0o600); err != nil {
		le.t.Fatal(err)
	}
}

// canary status against a hung Argo CD ends at argocd.timeout: the git columns are shown, the
// live ones are unknown, and it exits 3 with one line saying Argo CD did not answer — not a
// library's fatal log line.
func TestStatusAgainstHungArgoCD(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: "0000000000000000000000000000000000000000", sync: "Synced", health: "Healthy"})
	le.hangArgoCD()
	r := le.run(nil, "canary", "status", "order", "--env", "prod", "--gitops-dir", le.dir)
	if cmdutil.ExitCode(r.err) != cmdutil.ExitPartial {
		t.Fatalf("err %v (exit %d), want exit 3: the live columns are unknown", r.err, cmdutil.ExitCode(r.err))
	}
	want := "live columns unknown: cannot reach Argo CD at "
	if msg := r.err.Error(); !strings.Contains(msg, want) || !strings.Contains(msg, "did not answer within 1s") || strings.Contains(msg, "\n") {
		t.Errorf("error %q, want one line with %q", msg, want)
	}
	if !strings.Contains(r.out, "order") || !strings.Contains(r.out, "1.0.0") {
		t.Errorf("the git columns are missing:\n%s", r.out)
	}
	if strings.Contains(r.errOut, "level=fatal") {
		t.Errorf("fatal log line:\n%s", r.errOut)
	}
}

// A change followed with --wait when Argo CD does not answer: the change stays pushed, and the
// error names the commit and says traffic moves when Argo CD syncs it. Rollback takes the same
// path as set and is never gated.
func TestWaitAgainstHungArgoCDSaysWhatWasPushed(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: "0000000000000000000000000000000000000000", sync: "Synced", health: "Healthy"})
	le.seedCanary("prod", "order", gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 30})
	le.hangArgoCD()
	r := le.run(nil, "canary", "rollback", "order", "--env", "prod", "--reason", "5xx", "--yes", "--wait", "--gitops-dir", le.dir)
	head := le.remote.Head()
	if r.err == nil || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
		t.Fatalf("err %v (exit %d), want exit 1", r.err, cmdutil.ExitCode(r.err))
	}
	msg := r.err.Error()
	for _, want := range []string{
		"is pushed as " + head[:12],
		"did not answer within 1s",
		"traffic moves when Argo CD syncs that commit",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line:\n%s", msg)
	}
	if !strings.Contains(r.out, "pushed "+head[:7]) {
		t.Errorf("stdout does not report the push:\n%s", r.out)
	}
}

// canary check against a Prometheus that accepts connections and never answers ends at the
// context's prometheus.timeout with an unknown verdict (exit 1: traffic must not move), each
// metric saying Prometheus did not answer. Before, every query waited 15s in turn.
func TestCheckAgainstHungPrometheusIsUnknown(t *testing.T) {
	t.Parallel()
	le := newLiveEnv(t, argoApp{rev: "0000000000000000000000000000000000000000", sync: "Synced", health: "Healthy"})
	le.seedCanary("prod", "order", gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 10})
	b, err := os.ReadFile(le.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), fmt.Sprintf("url: %q", le.promURL), fmt.Sprintf("url: %q\n      timeout: 1s", "http://"+hangtest.Listen(t)), 1)
	if err := os.WriteFile(le.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := le.run(nil, "canary", "check", "order", "--env", "prod", "--gitops-dir", le.dir)
	if cmdutil.ExitCode(r.err) != cmdutil.ExitError {
		t.Fatalf("err %v (exit %d), want exit 1\n%s", r.err, cmdutil.ExitCode(r.err), r.out)
	}
	if !strings.Contains(r.out, "verdict: unknown") || !strings.Contains(r.out, "did not answer within the gate's deadline of 1s") {
		t.Errorf("output:\n%s", r.out)
	}
}

// A negative --git-timeout is a usage error, not a silent fall back to the default.
func TestGitTimeoutMustBePositive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.run(nil, "canary", "status", "--gitops-dir", e.dir, "--git-timeout", "-1s")
	if cmdutil.ExitCode(r.err) != cmdutil.ExitUsage || !strings.Contains(r.err.Error(), "--git-timeout must be positive") {
		t.Fatalf("err %v (exit %d), want a usage error", r.err, cmdutil.ExitCode(r.err))
	}
}
