package canary_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	canarycmd "github.com/come2us/opsctl/pkg/cmd/canary"
	"github.com/come2us/opsctl/pkg/cmd/root"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/goldentest"
	"github.com/come2us/opsctl/pkg/iostreams"
)

// fixedNow is the clock of every test; commits are dated two hours earlier.
var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// env is one test's world: a real GitOps remote, a working copy and a config file.
type env struct {
	t      *testing.T
	remote *gitopstest.Remote
	dir    string
	config string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// Commit dates, the cache directory and git's isolation are set once, in TestMain.
	remote := gitopstest.NewRemote(t)
	return &env{t: t, remote: remote, dir: remote.Clone("Alice"), config: filepath.Join(t.TempDir(), "config.yaml")}
}

type result struct {
	out, errOut string
	err         error
}

// run executes opsctl with args; stdin, when not nil, makes the streams a terminal.
func (e *env) run(stdin *string, args ...string) result {
	e.t.Helper()
	ios, in, out, errOut := iostreams.Test()
	if stdin != nil {
		ios.SetTTY(true)
		in.WriteString(*stdin)
	}
	f := &cmdutil.Factory{IOStreams: ios, Now: func() time.Time { return fixedNow }}
	cmd := root.NewCmdRoot(f)
	// The root command's flags own ConfigPath, so the file is passed as a flag.
	cmd.SetArgs(append(args, "--config", e.config))
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	err := cmd.Execute()
	return result{out: out.String(), errOut: errOut.String(), err: err}
}

// ok runs opsctl non-interactively with --gitops-dir and fails the test on error.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.run(nil, append(args, "--gitops-dir", e.dir)...)
	if r.err != nil {
		e.t.Fatalf("opsctl %s: %v\n%s", strings.Join(args, " "), r.err, r.errOut)
	}
	return r.out
}

// normalise replaces commit hashes with C0, C1, ... (oldest first) so goldens do not depend on
// the content of the gitops/ tree.
func (e *env) normalise(s string) string {
	e.t.Helper()
	log := gitopstest.Git(e.t, e.remote.URL, "log", "--reverse", "--format=%H", "main")
	for i, h := range strings.Fields(log) {
		s = strings.ReplaceAll(s, h, fmt.Sprintf("C%d", i))
		// Same width as a short hash, so table columns stay aligned.
		s = regexp.MustCompile(`\b`+h[:7]+`\b`).ReplaceAllString(s, fmt.Sprintf("%-7s", fmt.Sprintf("C%d", i)))
	}
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldentest.Equal(t, name, []byte(got))
}

func TestFlagValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"canary", "step", "order", "--reason", "r"}, "--env is required"},
		{[]string{"canary", "step", "cart", "--env", "prod", "--reason", "r"}, `unknown service "cart"`},
		{[]string{"canary", "step", "order", "--env", "qa", "--reason", "r"}, `unknown environment "qa"`},
		{[]string{"canary", "step", "order", "--env", "prod"}, "--reason: invalid change: a reason is required"},
		{[]string{"canary", "start", "order", "--env", "prod", "--reason", "r"}, "--image-tag is required"},
		{[]string{"canary", "start", "order", "--env", "prod", "--reason", "r", "--image-tag", "a b"}, "not a valid image tag"},
		{[]string{"canary", "set", "order", "--env", "prod", "--reason", "r"}, "--weight is required"},
		{[]string{"canary", "set", "order", "--env", "prod", "--reason", "r", "--weight", "150"}, "--weight 150 is outside 0-100"},
		{[]string{"canary", "set", "order", "--env", "prod", "--reason", "r", "--weight", "ten"}, "invalid argument"},
		{[]string{"canary", "step", "--env", "prod", "--reason", "r"}, "expected one SERVICE"},
		{[]string{"canary", "step", "order", "--env", "prod", "--reason", "r", "--force"}, "unknown flag: --force"},
		{[]string{"canary", "step", "order", "--env", "prod", "--skip-gates"}, "--skip-gates needs --reason"},
		{[]string{"canary", "rollback", "order", "--env", "prod", "--reason", "r", "--skip-gates"}, "unknown flag: --skip-gates"},
		{[]string{"canary", "history", "--limit", "0"}, "--limit must be at least 1"},
		{[]string{"canary", "status", "cart"}, `unknown service "cart"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			e := &env{t: t, config: filepath.Join(t.TempDir(), "c.yaml")}
			r := e.run(nil, tt.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", r.err, tt.wantErr)
			}
			if code := cmdutil.ExitCode(r.err); code != cmdutil.ExitUsage {
				t.Errorf("exit code %d, want %d", code, cmdutil.ExitUsage)
			}
		})
	}
}

// TestOptionsReachRunF checks flag parsing through the runF seam.
func TestOptionsReachRunF(t *testing.T) {
	t.Parallel()
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios}
	var got *canarycmd.MutateOptions
	cmd := canarycmd.NewCmdMutate(f, "set", func(o *canarycmd.MutateOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"payment", "--env", "dev", "--weight", "20", "--force", "--reason", "why", "--dry-run", "--yes", "--gitops-dir", "/x"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Service != "payment" || got.Env != "dev" || got.Weight != 20 || !got.Force || got.Reason != "why" || !got.DryRun || !got.Yes || got.Repo.Dir != "/x" || got.Repo.Open == nil {
		t.Errorf("options %+v", got)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	head := e.remote.Head()
	out := e.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--dry-run")
	golden(t, "dry-run-start.txt", out)
	js := e.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--dry-run", "-o", "json")
	golden(t, "dry-run-start.json", e.normalise(js))
	// Dry runs only read, so --readonly allows them.
	e.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "r", "--dry-run", "--readonly")
	if e.remote.Head() != head {
		t.Error("a dry run pushed")
	}
	if s := gitopstest.Git(t, e.dir, "status", "--porcelain"); s != "" {
		t.Errorf("a dry run touched the working copy:\n%s", s)
	}
}

func TestConfirmation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	args := []string{"canary", "start", "payment", "--env", "prod", "--image-tag", "2.0.0", "--reason", "release", "--skip-gates", "--gitops-dir", e.dir}
	head := e.remote.Head()

	// No terminal and no --yes: refused.
	r := e.run(nil, args...)
	if !errors.Is(r.err, cmdutil.ErrConfirmationNeeded) {
		t.Fatalf("err = %v, want ErrConfirmationNeeded", r.err)
	}
	// A terminal answering no: refused, and the diff was shown first.
	no := "n\n"
	r = e.run(&no, args...)
	if r.err == nil || !strings.Contains(r.err.Error(), "nothing was changed") || !strings.Contains(r.out, "+    tag: \"2.0.0\"") {
		t.Fatalf("declined: err %v\n%s", r.err, r.out)
	}
	// --readonly refuses even with --yes.
	r = e.run(nil, append(args, "--yes", "--readonly")...)
	if !errors.Is(r.err, cmdutil.ErrReadonly) {
		t.Fatalf("readonly: %v", r.err)
	}
	if e.remote.Head() != head {
		t.Fatal("something was pushed without confirmation")
	}
	// A terminal answering yes: pushed.
	yes := "y\n"
	r = e.run(&yes, args...)
	if r.err != nil {
		t.Fatalf("confirmed: %v\n%s", r.err, r.errOut)
	}
	if e.remote.Head() == head || !strings.Contains(r.out, "Commit and push to origin/main (payment-service-prod)? [y/N]") {
		t.Errorf("not pushed after yes:\n%s", r.out)
	}
}

// TestLifecycleOutputs drives a canary through the commands and pins status and history
// output in table and JSON form.
func TestLifecycleOutputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	steps := [][]string{
		{"canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release 1.1.0", "--skip-gates", "--yes"},
		{"canary", "step", "order", "--env", "prod", "--reason", "phase 0 ok: pods ready", "--skip-gates", "--yes"},
		{"canary", "start", "payment", "--env", "dev", "--image-tag", "2.0.0-rc.1", "--reason", "try rc1", "--skip-gates", "--yes"},
		{"canary", "set", "payment", "--env", "dev", "--weight", "20", "--force", "--reason", "gentle", "--skip-gates", "--yes"},
		{"canary", "rollback", "payment", "--env", "dev", "--reason", "5xx at 4%", "--yes"},
	}
	var applied strings.Builder
	for _, s := range steps {
		applied.WriteString(e.ok(s...))
	}
	golden(t, "lifecycle-applied.txt", e.normalise(applied.String()))
	golden(t, "status.txt", e.normalise(e.ok("canary", "status")))
	golden(t, "status-prod-order.json", e.normalise(e.ok("canary", "status", "order", "--env", "prod", "-o", "json")))
	golden(t, "history.txt", e.normalise(e.ok("canary", "history")))
	golden(t, "history-dev-payment.json", e.normalise(e.ok("canary", "history", "payment", "--env", "dev", "-o", "json")))

	// Bad moves from the current state fail with exit 1 and change nothing.
	head := e.remote.Head()
	for _, args := range [][]string{
		{"canary", "promote", "order", "--env", "prod", "--reason", "r", "--yes"},
		{"canary", "step", "payment", "--env", "dev", "--reason", "r", "--yes"},
		{"canary", "set", "order", "--env", "prod", "--weight", "30", "--reason", "r", "--yes"},
	} {
		r := e.run(nil, append(args, "--gitops-dir", e.dir)...)
		if r.err == nil || cmdutil.ExitCode(r.err) != cmdutil.ExitError || !strings.Contains(r.err.Error(), "nothing was changed") {
			t.Errorf("%v: err %v (exit %d)", args, r.err, cmdutil.ExitCode(r.err))
		}
	}
	if e.remote.Head() != head {
		t.Error("a refused command pushed")
	}
}

// TestContextRepo uses the context's gitops.repo: opsctl clones it into the user cache.
func TestContextRepo(t *testing.T) {
	e := newEnv(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", t.TempDir())
	cfg := fmt.Sprintf("current-context: prod\ncontexts:\n  prod:\n    gitops:\n      repo: %s\n      branch: main\n", e.remote.URL)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_AUTHOR_NAME", "Dana")
	t.Setenv("GIT_AUTHOR_EMAIL", "dana@example.com")
	t.Setenv("GIT_COMMITTER_NAME", "Dana")
	t.Setenv("GIT_COMMITTER_EMAIL", "dana@example.com")
	r := e.run(nil, "canary", "start", "product", "--env", "prod", "--image-tag", "3.1.0", "--reason", "release", "--skip-gates", "--yes")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, r.errOut)
	}
	snapDir, _ := gitops.CacheDir(filepath.Join(cache, "opsctl", "gitops"), e.remote.URL)
	if _, err := os.Stat(filepath.Join(snapDir, ".git")); err != nil {
		t.Errorf("no cached clone at %s: %v", snapDir, err)
	}
	if author := gitopstest.Git(t, e.remote.URL, "log", "-1", "--format=%an", "main"); author != "Dana" {
		t.Errorf("author %q", author)
	}
	// A read-only context refuses like --readonly.
	cfg += "    readonly: true\n"
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run(nil, "canary", "rollback", "product", "--env", "prod", "--reason", "r", "--yes")
	if !errors.Is(r.err, cmdutil.ErrReadonly) {
		t.Errorf("read-only context: %v", r.err)
	}
	if !bytes.Contains(e.remote.File("gitops/envs/prod/product/values.yaml"), []byte("weight: 10")) {
		t.Error("read-only context changed the canary")
	}
}

func TestNoRepositoryConfigured(t *testing.T) {
	t.Parallel()
	e := &env{t: t, config: filepath.Join(t.TempDir(), "c.yaml")}
	r := e.run(nil, "canary", "status")
	if r.err == nil || !strings.Contains(r.err.Error(), "no GitOps repository") || cmdutil.ExitCode(r.err) != cmdutil.ExitUsage {
		t.Fatalf("err = %v", r.err)
	}
}

// TestTerminalEscapesFromGitAreNeutralised: author names, subjects and reasons come from git and
// may hold terminal control sequences; tables must not pass them through.
func TestTerminalEscapesFromGitAreNeutralised(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gitopstest.Git(t, e.dir, "config", "user.name", "Mallory\x1b]0;pwned\x07\x1b[31m")
	e.ok("canary", "start", "order", "--env", "dev", "--image-tag", "1.1.0", "--reason", "release", "--skip-gates", "--yes")
	// A hand-made commit with a hostile trailer value.
	p := filepath.Join(e.dir, "gitops/envs/dev/order/values.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte("weight: 10"), []byte("weight: 30"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	gitopstest.Git(t, e.dir, "commit", "-q", "-am", "hand step\n\nOpsctl-Action: canary-step\nOpsctl-Env: dev\nOpsctl-Service: order\nOpsctl-Reason: ok\x1b[2J\x1b[H")
	gitopstest.Git(t, e.dir, "push", "-q", "origin", "main")
	for _, args := range [][]string{{"canary", "history"}, {"canary", "status", "order", "--env", "dev"}} {
		out := e.ok(args...)
		if strings.ContainsAny(out, "\x1b\x07") {
			t.Errorf("%v printed a control character:\n%q", args, out)
		}
		if !strings.Contains(out, "Mallory") {
			t.Errorf("%v lost the author:\n%s", args, out)
		}
	}
}

// TestHelpShowsNoGateFlag: the gates are always on; --help offers --skip-gates and no longer
// shows the old opt-in --gate as if it took a value.
func TestHelpShowsNoGateFlag(t *testing.T) {
	t.Parallel()
	e := &env{t: t, config: filepath.Join(t.TempDir(), "c.yaml")}
	for _, action := range []string{"start", "step", "set", "promote"} {
		r := e.run(nil, "canary", action, "--help")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if strings.Contains(r.out, "--gate ") || strings.Contains(r.out, "--gate opsctl") || !strings.Contains(r.out, "--skip-gates") {
			t.Errorf("canary %s --help:\n%s", action, r.out)
		}
	}
}

// TestCommitsCarryTheOperator: a working copy where git configures no identity (the sandbox's
// case) commits as the operator, the same name the DLT ledger records, and history shows it.
func TestCommitsCarryTheOperator(t *testing.T) {
	e := newEnv(t)
	gitopstest.Git(t, e.dir, "config", "--unset", "user.name")
	gitopstest.Git(t, e.dir, "config", "--unset", "user.email")
	t.Setenv("OPSCTL_ACTOR", "dana@ops.example")
	e.ok("canary", "start", "order", "--env", "dev", "--image-tag", "1.1.0", "--reason", "release", "--skip-gates", "--yes")
	if who := gitopstest.Git(t, e.remote.URL, "log", "-1", "--format=%an <%ae> / %cn", "main"); who != "dana@ops.example <dana@ops.example> / dana@ops.example" {
		t.Errorf("commit by %q, want the operator", who)
	}
	if out := e.ok("canary", "history"); !strings.Contains(out, "dana@ops.example") {
		t.Errorf("history does not credit the operator:\n%s", out)
	}
	// A configured identity wins over the fallback.
	gitopstest.Git(t, e.dir, "config", "user.name", "Alice")
	gitopstest.Git(t, e.dir, "config", "user.email", "alice@example.com")
	e.ok("canary", "step", "order", "--env", "dev", "--reason", "ok", "--skip-gates", "--yes")
	if who := gitopstest.Git(t, e.remote.URL, "log", "-1", "--format=%an", "main"); who != "Alice" {
		t.Errorf("commit by %q, want git's configured Alice", who)
	}
}

// TestRollbackWithADirtyWorkingCopy: opsctl commits from a clone of its own, so uncommitted
// edits in the operator's working copy neither block a rollback nor get touched by it.
func TestRollbackWithADirtyWorkingCopy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("canary", "start", "order", "--env", "prod", "--image-tag", "1.1.0", "--reason", "release", "--skip-gates", "--yes")
	values := filepath.Join(e.dir, "gitops/envs/prod/order/values.yaml")
	data, err := os.ReadFile(values)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(data, []byte("# not committed yet\n")...)
	if err := os.WriteFile(values, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run(nil, "canary", "rollback", "order", "--env", "prod", "--reason", "5xx", "--yes", "--gitops-dir", e.dir)
	if r.err != nil {
		t.Fatalf("rollback with a dirty working copy: %v\n%s", r.err, r.errOut)
	}
	if !bytes.Contains(e.remote.File("gitops/envs/prod/order/values.yaml"), []byte("weight: 0")) {
		t.Fatal("the rollback did not land")
	}
	if !strings.Contains(r.errOut, "was left as it was") {
		t.Errorf("stderr does not say the working copy was left alone:\n%s", r.errOut)
	}
	if got, _ := os.ReadFile(values); !bytes.Equal(got, edited) {
		t.Error("the uncommitted edit was touched")
	}
}
