package gitops

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests drive the real git CLI against temporary bare remotes.

func TestMain(m *testing.M) {
	// Keep the machine's and the user's git configuration (signing, hooks, templates) out.
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	os.Setenv("GIT_TERMINAL_PROMPT", "0")
	os.Exit(m.Run())
}

// gitT runs git in dir and fails the test on error.
func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// fixture is a bare remote seeded with the repository's real env values files, plus helpers
// to make working copies of it.
type fixture struct {
	t      *testing.T
	remote string // path of the bare repository (used as its URL)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	base := t.TempDir()
	remote := filepath.Join(base, "remote.git")
	gitT(t, base, "init", "--quiet", "--bare", "--initial-branch=main", remote)

	seed := filepath.Join(base, "seed")
	gitT(t, base, "init", "--quiet", "--initial-branch=main", seed)
	configure(t, seed, "Seeder", "seed@example.com")
	for _, env := range Environments() {
		for _, svc := range Services() {
			p, _ := ValuesPath(DefaultRoot, env, svc)
			data, err := os.ReadFile(filepath.Join("..", "..", p))
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(seed, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(seed, "README.md"), []byte("gitops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, seed, "add", ".")
	gitT(t, seed, "commit", "--quiet", "-m", "initial values")
	gitT(t, seed, "push", "--quiet", remote, "main")
	return &fixture{t: t, remote: remote}
}

func configure(t *testing.T, dir, name, email string) {
	t.Helper()
	gitT(t, dir, "config", "user.name", name)
	gitT(t, dir, "config", "user.email", email)
	gitT(t, dir, "config", "commit.gpgsign", "false")
}

// clone makes a working copy for a person and opens it.
func (f *fixture) clone(name string, opts ...Option) (*Repo, string) {
	f.t.Helper()
	dir := filepath.Join(f.t.TempDir(), strings.ToLower(name))
	gitT(f.t, filepath.Dir(dir), "clone", "--quiet", f.remote, dir)
	configure(f.t, dir, name, strings.ToLower(name)+"@example.com")
	r, err := Open(context.Background(), dir, opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	return r, dir
}

// remoteFile returns a file's content at the remote's main.
func (f *fixture) remoteFile(p string) []byte {
	f.t.Helper()
	cmd := exec.Command("git", "--git-dir", f.remote, "show", "main:"+p)
	out, err := cmd.Output()
	if err != nil {
		f.t.Fatalf("show %s: %v", p, err)
	}
	return out
}

func (f *fixture) remoteHead() string {
	f.t.Helper()
	return gitT(f.t, f.remote, "rev-parse", "main")
}

// change builds a Change from a fresh snapshot.
func change(t *testing.T, r *Repo, env, svc, action string, mutate func(*Release)) Change {
	t.Helper()
	snap, err := r.Read(context.Background(), env, svc)
	if err != nil {
		t.Fatal(err)
	}
	to := snap.Release
	mutate(&to)
	return Change{Env: env, Service: svc, Action: action, Reason: "test " + action, From: snap.Release, To: to, BaseCommit: snap.Commit}
}

func startCanary(tag string, weight int) func(*Release) {
	return func(r *Release) { r.Canary = Canary{Enabled: true, Tag: tag, Weight: weight} }
}

func setWeight(w int) func(*Release) { return func(r *Release) { r.Canary.Weight = w } }

// assertClean checks that a working copy has no changes and HEAD is where expected.
func assertClean(t *testing.T, dir, wantHead string) {
	t.Helper()
	if s := gitT(t, dir, "status", "--porcelain"); s != "" {
		t.Errorf("working copy %s not clean:\n%s", dir, s)
	}
	if wantHead != "" {
		if h := gitT(t, dir, "rev-parse", "HEAD"); h != wantHead {
			t.Errorf("HEAD = %s, want %s", h, wantHead)
		}
	}
}

func TestApplyCommitsAndPushes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	r, dir := f.clone("Alice")
	c := change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10))
	before := f.remoteFile("gitops/envs/prod/order/values.yaml")

	res, err := r.Apply(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 1 || res.Commit != f.remoteHead() || res.Branch != "main" || res.Remote != "origin" {
		t.Errorf("result %+v, remote head %s", res, f.remoteHead())
	}
	after := f.remoteFile("gitops/envs/prod/order/values.yaml")
	want, err := EditRelease(before, c.To)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, want) {
		t.Errorf("remote file:\n%s\nwant:\n%s", after, want)
	}
	assertClean(t, dir, res.Commit)

	// The commit carries the trailers, readable by git itself.
	for key, want := range map[string]string{
		TrailerAction: "canary-start", TrailerService: "order", TrailerEnv: "prod",
		TrailerFrom: c.From.String(), TrailerTo: c.To.String(), TrailerReason: "test canary-start",
	} {
		got := gitT(t, f.remote, "log", "-1", "--format=%(trailers:key="+key+",valueonly)", "main")
		if got != want {
			t.Errorf("trailer %s = %q, want %q", key, got, want)
		}
	}
	if files := gitT(t, f.remote, "show", "--name-only", "--format=", "main"); files != "gitops/envs/prod/order/values.yaml" {
		t.Errorf("commit touched %q", files)
	}
	if author := gitT(t, f.remote, "log", "-1", "--format=%an <%ae>", "main"); author != "Alice <alice@example.com>" {
		t.Errorf("author %q", author)
	}
}

func TestApplyFastForwardsABehindWorkingCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	b, bdir := f.clone("Bob")
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}
	// Bob's copy is one commit behind; his change lands on top of Alice's without a merge.
	res, err := b.Apply(ctx, change(t, b, "dev", "payment", "canary-start", startCanary("3.0.0", 10)))
	if err != nil {
		t.Fatal(err)
	}
	if parents := gitT(t, bdir, "log", "-1", "--format=%P", res.Commit); strings.Contains(parents, " ") {
		t.Errorf("merge commit created: parents %s", parents)
	}
	assertClean(t, bdir, f.remoteHead())
}

// TestRaceSameService has two people change the same service's canary at the same moment:
// Bob's push is overtaken by Alice's; opsctl must detect that the file changed and refuse,
// naming Alice, instead of overwriting her change.
func TestRaceSameService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}

	var aliceCommit string
	raced := false
	b, bdir := f.clone("Bob", withBeforePush(func(ctx context.Context, attempt int) error {
		if raced {
			return nil
		}
		raced = true
		res, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-step", setWeight(30)))
		aliceCommit = res.Commit
		return err
	}))
	bobChange := change(t, b, "prod", "order", "canary-set", setWeight(50))
	bobBase := bobChange.BaseCommit

	_, err := b.Apply(ctx, bobChange)
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want a ConflictError", err)
	}
	if len(conflict.Changes) != 1 || conflict.Changes[0].Commit != aliceCommit || conflict.Changes[0].Author != "Alice" ||
		conflict.Changes[0].Action != "canary-step" {
		t.Errorf("conflict changes %+v, want Alice's %s", conflict.Changes, aliceCommit)
	}
	if conflict.Expected.Canary.Weight != 10 || conflict.Found.Canary.Weight != 30 {
		t.Errorf("conflict expected %v found %v", conflict.Expected, conflict.Found)
	}
	msg := err.Error()
	for _, want := range []string{"prod/order", "canary.weight 10 -> 30", "Alice <alice@example.com>", ShortHash(aliceCommit), "nothing was committed or pushed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}

	// No lost update: the remote holds Alice's 30, and Bob's working copy is back at his base.
	rel, err := ReadRelease(f.remoteFile("gitops/envs/prod/order/values.yaml"))
	if err != nil || rel.Canary.Weight != 30 {
		t.Errorf("remote weight %d (%v), want Alice's 30", rel.Canary.Weight, err)
	}
	if f.remoteHead() != aliceCommit {
		t.Errorf("remote head %s, want Alice's %s", f.remoteHead(), aliceCommit)
	}
	assertClean(t, bdir, bobBase)
}

// TestRaceSameServiceDecidedAtTheServer: Bob's push and Alice's reach the server together, both
// fast-forwards of the same commit; Alice's moves the branch while Bob's waits in the
// pre-receive hook, so the server refuses Bob's ref update ("cannot lock ref ... is at X but
// expected Y") rather than his client seeing a non-fast-forward. That is the same lost race:
// Bob must get the ConflictError naming Alice's commit, not a bare rejection.
func TestRaceSameServiceDecidedAtTheServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, adir := f.clone("Alice")
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}
	// Alice's next step, committed but not pushed yet: the hook pushes it in the middle of Bob's.
	path := filepath.Join(adir, "gitops/envs/prod/order/values.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := ReadRelease(data)
	if err != nil {
		t.Fatal(err)
	}
	rel.Canary.Weight = 30
	edited, err := EditRelease(data, rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, adir, "commit", "--quiet", "-am", "Alice steps order to 30")
	aliceCommit := gitT(t, adir, "rev-parse", "HEAD")

	marker := filepath.Join(t.TempDir(), "alice-pushed")
	hook := "#!/bin/sh\n[ -e '" + marker + "' ] && exit 0\n: > '" + marker + "'\n" +
		"unset GIT_DIR GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n" +
		"git -C '" + adir + "' push --quiet origin HEAD:main >&2\n"
	if err := os.WriteFile(filepath.Join(f.remote, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}

	b, bdir := f.clone("Bob")
	bobChange := change(t, b, "prod", "order", "canary-set", setWeight(50))
	_, err = b.Apply(ctx, bobChange)
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want a ConflictError", err)
	}
	if conflict.Head != aliceCommit || conflict.Expected.Canary.Weight != 10 || conflict.Found.Canary.Weight != 30 {
		t.Errorf("conflict head %s expected %v found %v, want Alice's %s with weight 30", conflict.Head, conflict.Expected, conflict.Found, aliceCommit)
	}
	if !strings.Contains(err.Error(), "nothing was committed or pushed") {
		t.Errorf("error does not say nothing was pushed: %v", err)
	}
	if f.remoteHead() != aliceCommit {
		t.Errorf("remote head %s, want Alice's %s", f.remoteHead(), aliceCommit)
	}
	assertClean(t, bdir, bobChange.BaseCommit)
}

// TestRaceDifferentServices has Bob's push overtaken by Alice's change to another service: the
// file Bob edits is untouched at the new head, so his edit is re-applied there and both land.
func TestRaceDifferentServices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	raced := false
	b, bdir := f.clone("Bob", withBeforePush(func(ctx context.Context, attempt int) error {
		if raced {
			return nil
		}
		raced = true
		_, err := a.Apply(ctx, change(t, a, "prod", "payment", "canary-start", startCanary("2.0.0", 10)))
		return err
	}))
	res, err := b.Apply(ctx, change(t, b, "prod", "order", "canary-start", startCanary("1.1.0", 10)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (re-applied after losing the race)", res.Attempts)
	}
	for svc, tag := range map[string]string{"order": "1.1.0", "payment": "2.0.0"} {
		rel, err := ReadRelease(f.remoteFile("gitops/envs/prod/" + svc + "/values.yaml"))
		if err != nil || rel.Canary.Tag != tag || rel.Canary.Weight != 10 {
			t.Errorf("%s on the remote: %+v (%v)", svc, rel, err)
		}
	}
	// Linear history: Bob's commit sits on Alice's.
	if got := gitT(t, f.remote, "log", "--format=%an", "-3", "main"); got != "Bob\nAlice\nSeeder" {
		t.Errorf("history:\n%s", got)
	}
	assertClean(t, bdir, f.remoteHead())
}

func TestApplyGivesUpAfterBoundedAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, adir := f.clone("Alice")
	n := 0
	b, bdir := f.clone("Bob", WithMaxAttempts(3), withBeforePush(func(ctx context.Context, attempt int) error {
		// Someone else pushes an unrelated commit before every one of Bob's pushes.
		n++
		if err := os.WriteFile(filepath.Join(adir, "README.md"), []byte(strings.Repeat("x", n)+"\n"), 0o644); err != nil {
			return err
		}
		gitT(t, adir, "commit", "--quiet", "-am", "docs")
		gitT(t, adir, "push", "--quiet", "origin", "main")
		return nil
	}))
	_ = a
	_, err := b.Apply(ctx, change(t, b, "dev", "order", "canary-start", startCanary("1.1.0", 10)))
	if !errors.Is(err, ErrTooManyAttempts) {
		t.Fatalf("err = %v, want ErrTooManyAttempts", err)
	}
	if n != 3 {
		t.Errorf("%d pushes attempted, want 3", n)
	}
	if got := gitT(t, f.remote, "log", "--format=%an", "main"); strings.Contains(got, "Bob") {
		t.Errorf("Bob's commit reached the remote:\n%s", got)
	}
	assertClean(t, bdir, "")
	if ahead := gitT(t, bdir, "rev-list", "--count", "origin/main..HEAD"); ahead != "0" {
		t.Errorf("Bob's copy kept %s unpushed commit(s)", ahead)
	}
}

func TestApplyAfterStaleRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	b, _ := f.clone("Bob")
	bob := change(t, b, "dev", "product", "canary-start", startCanary("5.0.0", 10)) // read first
	res, err := a.Apply(ctx, change(t, a, "dev", "product", "canary-start", startCanary("4.0.0", 10)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Apply(ctx, bob)
	var conflict *ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want ConflictError", err)
	}
	if len(conflict.Changes) != 1 || conflict.Changes[0].Commit != res.Commit {
		t.Errorf("changes %+v, want Alice's %s", conflict.Changes, res.Commit)
	}
	if !strings.Contains(err.Error(), `canary.image.tag "" -> 4.0.0`) {
		t.Errorf("error does not say what changed: %v", err)
	}
}

func TestApplyRefusesDirtyWorkingCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name  string
		dirty func(t *testing.T, dir string)
	}{
		{"modified tracked file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("edited\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"modified values file", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "gitops/envs/prod/order/values.yaml")
			data, _ := os.ReadFile(p)
			if err := os.WriteFile(p, append(data, "# local note\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"staged change", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("staged\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			gitT(t, dir, "add", "README.md")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			r, dir := f.clone("Alice")
			c := change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10))
			tt.dirty(t, dir)
			statusBefore := gitT(t, dir, "status", "--porcelain")
			remoteBefore := f.remoteHead()

			_, err := r.Apply(ctx, c)
			if !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("err = %v, want ErrDirty saying nothing was changed", err)
			}
			if got := gitT(t, dir, "status", "--porcelain"); got != statusBefore {
				t.Errorf("working copy changed:\n%s\nwas:\n%s", got, statusBefore)
			}
			if f.remoteHead() != remoteBefore {
				t.Error("remote changed")
			}
		})
	}

	t.Run("untracked files are fine", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		r, dir := f.clone("Alice")
		if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("scratch\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Apply(ctx, change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(data) != "scratch\n" {
			t.Error("untracked file touched")
		}
	})
}

func TestApplyRefusesUnpushedCommits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, dir := f.clone("Alice")
	c := change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10))
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, dir, "commit", "--quiet", "-am", "local work")
	head := gitT(t, dir, "rev-parse", "HEAD")
	_, err := r.Apply(context.Background(), c)
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("err = %v, want ErrDiverged", err)
	}
	assertClean(t, dir, head)
}

// TestPushRejectedByHook: the remote's pre-receive hook refuses every push. Apply must report
// the hook's message, push nothing, and leave the working copy exactly as it was.
func TestPushRejectedByHook(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	hook := filepath.Join(f.remote, "hooks", "pre-receive")
	script := "#!/bin/sh\necho 'policy: prod changes need an approved change ticket' >&2\nexit 1\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r, dir := f.clone("Alice")
	head := gitT(t, dir, "rev-parse", "HEAD")
	fileBefore, _ := os.ReadFile(filepath.Join(dir, "gitops/envs/prod/order/values.yaml"))
	remoteBefore := f.remoteHead()

	_, err := r.Apply(context.Background(), change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10)))
	var rej *PushRejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want PushRejectedError", err)
	}
	if rej.Reason != "pre-receive hook declined" || !strings.Contains(rej.Message, "approved change ticket") {
		t.Errorf("rejection %+v", rej)
	}
	if !strings.Contains(err.Error(), "nothing was pushed") {
		t.Errorf("error does not say nothing was pushed: %v", err)
	}
	if f.remoteHead() != remoteBefore {
		t.Error("remote changed")
	}
	assertClean(t, dir, head)
	if fileAfter, _ := os.ReadFile(filepath.Join(dir, "gitops/envs/prod/order/values.yaml")); !bytes.Equal(fileAfter, fileBefore) {
		t.Error("values file changed locally")
	}
}

func TestApplyRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	r, dir := f.clone("Alice")
	good := change(t, r, "prod", "order", "canary-start", startCanary("1.1.0", 10))
	tests := []struct {
		name   string
		mutate func(c *Change)
		is     error
	}{
		{"unknown env", func(c *Change) { c.Env = "staging" }, ErrUnknownTarget},
		{"unknown service", func(c *Change) { c.Service = "cart" }, ErrUnknownTarget},
		{"no reason", func(c *Change) { c.Reason = "  " }, ErrInvalidChange},
		{"multi-line reason", func(c *Change) { c.Reason = "a\nOpsctl-Action: forged" }, ErrInvalidChange},
		{"no change", func(c *Change) { c.To = c.From }, ErrNoChange},
		{"bad action", func(c *Change) { c.Action = "Step!" }, ErrInvalidChange},
		{"invalid tag", func(c *Change) { c.To.Canary.Tag = "bad tag" }, ErrInvalidChange},
	}
	head := f.remoteHead()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mutate(&c)
			_, err := r.Apply(ctx, c)
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), "nothing was changed") {
				t.Errorf("error does not say nothing was changed: %v", err)
			}
			if f.remoteHead() != head {
				t.Error("remote changed")
			}
			assertClean(t, dir, "")
		})
	}
}

func TestMalformedValuesFileRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, adir := f.clone("Alice")
	p := filepath.Join(adir, "gitops/envs/dev/order/values.yaml")
	data, _ := os.ReadFile(p)
	broken := strings.Replace(string(data), "weight: 0", "weight: half", 1)
	if err := os.WriteFile(p, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, adir, "commit", "--quiet", "-am", "hand edit")
	gitT(t, adir, "push", "--quiet", "origin", "main")
	head := f.remoteHead()

	_, err := a.Read(context.Background(), "dev", "order")
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "canary.weight must be an integer") {
		t.Fatalf("Read err = %v, want ErrMalformed about canary.weight", err)
	}
	c := Change{Env: "dev", Service: "order", Action: "canary-rollback", Reason: "r",
		From: Release{StableRepository: "x", StableTag: "1.0.0"}, To: Release{StableRepository: "x", StableTag: "1.0.1"}}
	if _, err := a.Apply(context.Background(), c); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Apply err = %v, want ErrMalformed", err)
	}
	if f.remoteHead() != head {
		t.Error("remote changed")
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, adir := f.clone("Alice")
	apply := func(env, svc, action string, m func(*Release)) string {
		res, err := a.Apply(ctx, change(t, a, env, svc, action, m))
		if err != nil {
			t.Fatal(err)
		}
		return res.Commit
	}
	c1 := apply("prod", "order", "canary-start", startCanary("1.1.0", 10))
	c2 := apply("prod", "payment", "canary-start", startCanary("2.0.0", 10))
	c3 := apply("prod", "order", "canary-step", setWeight(30))
	c4 := apply("dev", "order", "canary-start", startCanary("1.2.0", 10))
	// A CI image bump without trailers.
	p := filepath.Join(adir, "gitops/envs/prod/order/values.yaml")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), `tag: "1.0.0"`, `tag: "1.0.1"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	gitT(t, adir, "commit", "--quiet", "-am", "ci: bump order-service to 1.0.1")
	gitT(t, adir, "push", "--quiet", "origin", "main")
	c5 := gitT(t, adir, "rev-parse", "HEAD")
	c0 := gitT(t, adir, "rev-list", "--max-parents=0", "HEAD")

	commits := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Commit)
		}
		return out
	}
	tests := []struct {
		name string
		q    HistoryQuery
		want []string
	}{
		{"one file, all commits", HistoryQuery{Env: "prod", Service: "order"}, []string{c5, c3, c1, c0}},
		{"one file, opsctl only", HistoryQuery{Env: "prod", Service: "order", OpsctlOnly: true}, []string{c3, c1}},
		{"one env", HistoryQuery{Env: "prod", OpsctlOnly: true}, []string{c3, c2, c1}},
		{"one service in every env", HistoryQuery{Service: "order"}, []string{c4, c3, c1}},
		{"everything, limited", HistoryQuery{Limit: 2}, []string{c5, c4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := a.History(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := commits(es); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("commits %v, want %v", got, tt.want)
			}
		})
	}

	es, err := a.History(ctx, HistoryQuery{Env: "prod", Service: "order"})
	if err != nil {
		t.Fatal(err)
	}
	if es[0].IsOpsctl() || es[0].Subject != "ci: bump order-service to 1.0.1" {
		t.Errorf("CI commit parsed as %+v", es[0])
	}
	step := es[1]
	if step.Action != "canary-step" || step.Env != "prod" || step.Service != "order" || step.Reason != "test canary-step" ||
		step.Author != "Alice" || step.AuthorEmail != "alice@example.com" || step.Time.IsZero() {
		t.Errorf("step entry %+v", step)
	}
	from, err := ParseState(step.From)
	if err != nil || from.Canary.Weight != 10 {
		t.Errorf("From %q -> %+v, %v", step.From, from, err)
	}
	to, err := ParseState(step.To)
	if err != nil || to.Canary.Weight != 30 || to.Canary.Tag != "1.1.0" || !to.Canary.Enabled {
		t.Errorf("To %q -> %+v, %v", step.To, to, err)
	}
	last, ok, err := a.LastChange(ctx, "prod", "payment")
	if err != nil || !ok || last.Commit != c2 {
		t.Errorf("LastChange = %+v, %v, %v", last, ok, err)
	}
	if _, err := a.History(ctx, HistoryQuery{Env: "qa"}); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("unknown env: %v", err)
	}
}

func TestCloneIntoCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	cache := t.TempDir()
	env := WithGitEnv("GIT_AUTHOR_NAME=Carol", "GIT_AUTHOR_EMAIL=carol@example.com",
		"GIT_COMMITTER_NAME=Carol", "GIT_COMMITTER_EMAIL=carol@example.com")

	r, err := Clone(ctx, f.remote, WithCacheDir(cache), env)
	if err != nil {
		t.Fatal(err)
	}
	wantDir, _ := CacheDir(cache, f.remote)
	if r.Dir() != wantDir || r.Branch() != "main" {
		t.Errorf("dir %s branch %s, want %s main", r.Dir(), r.Branch(), wantDir)
	}
	// The cache is locked while in use.
	if _, err := Clone(ctx, f.remote, WithCacheDir(cache)); err == nil || !strings.Contains(err.Error(), "another opsctl") {
		t.Errorf("second Clone while locked: %v", err)
	}
	if _, err := r.Apply(ctx, change(t, r, "dev", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}
	// Leave junk behind, as a crashed run might.
	if err := os.WriteFile(filepath.Join(r.Dir(), "README.md"), []byte("junk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Close()

	// Someone else moves the remote on.
	a, _ := f.clone("Alice")
	if _, err := a.Apply(ctx, change(t, a, "dev", "order", "canary-step", setWeight(30))); err != nil {
		t.Fatal(err)
	}

	r2, err := Clone(ctx, f.remote, WithCacheDir(cache), env)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	assertClean(t, r2.Dir(), f.remoteHead())
	snap, err := r2.Read(ctx, "dev", "order")
	if err != nil || snap.Release.Canary.Weight != 30 {
		t.Fatalf("cached read: %+v, %v", snap.Release, err)
	}
	if author := gitT(t, f.remote, "log", "-1", "--format=%an", "main~1"); author != "Carol" {
		t.Errorf("cache commit author %q, want Carol", author)
	}
}

func TestOpenRefusesDetachedHead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, dir := f.clone("Alice")
	gitT(t, dir, "checkout", "--quiet", "--detach")
	if _, err := Open(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "detached") {
		t.Fatalf("err = %v, want a detached-HEAD error", err)
	}
}

func TestFetchTTLReadsMayBeStaleButApplyIsNot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	b, _ := f.clone("Bob", WithFetchTTL(time.Hour))
	bob := change(t, b, "prod", "order", "canary-start", startCanary("1.1.0", 10))
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.2.0", 10))); err != nil {
		t.Fatal(err)
	}
	// Within the TTL Bob's read reuses his earlier fetch...
	snap, err := b.Read(ctx, "prod", "order")
	if err != nil || snap.Release.Canary.Enabled {
		t.Fatalf("read within the TTL: %+v, %v", snap.Release, err)
	}
	// ...but Apply always fetches, so the stale plan conflicts instead of overwriting.
	var conflict *ConflictError
	if _, err := b.Apply(ctx, bob); !errors.As(err, &conflict) {
		t.Fatalf("err = %v, want ConflictError", err)
	}
}

// rollbackChange is a canary rollback as pkg/canary builds it: weight 0 and off, re-applied on
// top of whatever was pushed meanwhile, a no-op when the canary is already off.
func rollbackChange(t *testing.T, r *Repo, env, svc string) Change {
	t.Helper()
	c := change(t, r, env, svc, "canary-rollback", func(rel *Release) { rel.Canary.Enabled, rel.Canary.Weight = false, 0 })
	c.Reapply = func(found Release) (Release, error) {
		if !found.Canary.Enabled && found.Canary.Weight == 0 {
			return found, ErrNoChange
		}
		found.Canary.Enabled, found.Canary.Weight = false, 0
		return found, nil
	}
	return c
}

// TestRollbackWinsARace: Bob's rollback reads 10%, then Alice's step to 30% lands between that
// read and Bob's push. Bob's push is rejected; the rollback re-reads the new head and re-applies
// itself on top, so the remote ends rolled back (weight 0, off) with Alice's step below it.
func TestRollbackWinsARace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}
	var stepCommit string
	b, _ := f.clone("Bob", withBeforePush(func(ctx context.Context, attempt int) error {
		if attempt != 1 {
			return nil
		}
		res, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-step", setWeight(30)))
		stepCommit = res.Commit
		return err
	}))
	res, err := b.Apply(ctx, rollbackChange(t, b, "prod", "order"))
	if err != nil {
		t.Fatalf("rollback lost the race: %v", err)
	}
	if res.Attempts != 2 || res.AlreadyApplied || res.From.Canary.Weight != 30 || res.To.Canary.Weight != 0 {
		t.Errorf("result %+v", res)
	}
	rel, err := ReadRelease(f.remoteFile("gitops/envs/prod/order/values.yaml"))
	if err != nil || rel.Canary.Enabled || rel.Canary.Weight != 0 || rel.Canary.Tag != "1.1.0" {
		t.Fatalf("remote after the race: %v (%v), want rolled back", rel, err)
	}
	if f.remoteHead() != res.Commit || gitT(t, f.remote, "rev-parse", "main^") != stepCommit {
		t.Errorf("history: head %s (want the rollback %s) on top of %s (want the step %s)",
			f.remoteHead(), res.Commit, gitT(t, f.remote, "rev-parse", "main^"), stepCommit)
	}
	if msg := gitT(t, f.remote, "log", "-1", "--format=%B", "main"); !strings.Contains(msg, "Opsctl-From: weight=30 enabled=true") {
		t.Errorf("the rollback commit does not record what it rolled back:\n%s", msg)
	}
}

// TestRollbackYieldsToARollback: another rollback landed first; the second is a no-op success
// that says so and pushes nothing.
func TestRollbackYieldsToARollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 50))); err != nil {
		t.Fatal(err)
	}
	b, _ := f.clone("Bob")
	bobs := rollbackChange(t, b, "prod", "order")
	first, err := a.Apply(ctx, rollbackChange(t, a, "prod", "order"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Apply(ctx, bobs)
	if err != nil || !res.AlreadyApplied || res.Commit != first.Commit || f.remoteHead() != first.Commit {
		t.Fatalf("second rollback: %+v, %v; want a no-op at %s", res, err, first.Commit)
	}
}

// TestStepDoesNotOverwriteARollback: a step whose push loses to a rollback re-reads, sees the
// rollback and stops with an error saying so; the remote stays rolled back.
func TestStepDoesNotOverwriteARollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, _ := f.clone("Alice")
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}
	b, _ := f.clone("Bob", withBeforePush(func(ctx context.Context, attempt int) error {
		if attempt != 1 {
			return nil
		}
		_, err := a.Apply(ctx, rollbackChange(t, a, "prod", "order"))
		return err
	}))
	_, err := b.Apply(ctx, change(t, b, "prod", "order", "canary-step", setWeight(30)))
	var conflict *ConflictError
	if !errors.As(err, &conflict) || !conflict.RolledBack() || !strings.Contains(err.Error(), "rolled back meanwhile") {
		t.Fatalf("step after a rollback: %v", err)
	}
	rel, err := ReadRelease(f.remoteFile("gitops/envs/prod/order/values.yaml"))
	if err != nil || rel.Canary.Enabled || rel.Canary.Weight != 0 {
		t.Fatalf("remote %v (%v), want still rolled back", rel, err)
	}
}

// TestWriteCloneLeavesTheWorkingCopyAndWaitsForTheCache: opsctl's own writes go through a cache
// clone, so a dirty working copy does not block them; when another opsctl holds that cache, the
// write waits for it instead of giving up.
func TestWriteCloneLeavesTheWorkingCopyAndWaitsForTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	cache := t.TempDir()
	held, err := Clone(ctx, f.remote, WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	released := false
	a, adir := f.clone("Alice", WithCacheDir(cache), withOnCacheBusy(func() {
		if !released {
			released = true
			held.Close() // the other opsctl finishes
		}
	}))
	if _, err := a.Apply(ctx, change(t, a, "prod", "order", "canary-start", startCanary("1.1.0", 10))); err != nil {
		t.Fatal(err)
	}
	values := filepath.Join(adir, "gitops/envs/prod/order/values.yaml")
	if err := os.WriteFile(values, []byte("half-done edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, closeW, err := a.WriteClone(ctx, WithCacheDir(cache))
	if err != nil {
		t.Fatalf("write clone while another opsctl held the cache: %v", err)
	}
	defer func() {
		if err := closeW(); err != nil {
			t.Error(err)
		}
	}()
	if !released {
		t.Error("the cache was never found busy")
	}
	res, err := w.Apply(ctx, rollbackChange(t, w, "prod", "order"))
	if err != nil {
		t.Fatalf("rollback through the write clone: %v", err)
	}
	if f.remoteHead() != res.Commit || gitT(t, f.remote, "log", "-1", "--format=%an", "main") != "Alice" {
		t.Errorf("remote head %s by %s, want Alice's rollback %s", f.remoteHead(), gitT(t, f.remote, "log", "-1", "--format=%an", "main"), res.Commit)
	}
	if got, _ := os.ReadFile(values); string(got) != "half-done edit\n" {
		t.Error("the working copy's edit was touched")
	}
}
