// Package gitopstest gives tests a real GitOps remote: a bare git repository seeded with this
// repository's gitops/ tree, and working copies of it for named people. Everything runs the
// real git CLI in temporary directories, isolated from the machine's and the user's git
// configuration.
package gitopstest

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Remote is a bare repository whose main branch holds a copy of the repository's gitops/ tree.
type Remote struct {
	t testing.TB
	// URL is the bare repository's path, usable as a git URL.
	URL string
}

// isolation is the environment that keeps git away from the machine's and the user's
// configuration and from prompting for credentials.
func isolation() [][2]string {
	return [][2]string{{"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_CONFIG_GLOBAL", os.DevNull}, {"GIT_TERMINAL_PROMPT", "0"}}
}

// Isolate points git at an empty global configuration and no system configuration for the
// rest of the test, so signing, hooks or templates on the machine cannot interfere. When the
// process is already isolated (its TestMain runs the tests with Main), Isolate changes nothing,
// so tests that call t.Parallel, where t.Setenv is refused, can use it.
func Isolate(t testing.TB) {
	t.Helper()
	for _, kv := range isolation() {
		if os.Getenv(kv[0]) != kv[1] {
			t.Setenv(kv[0], kv[1])
		}
	}
}

// Main runs a package's tests (a TestMain calls os.Exit(gitopstest.Main(m, env))) with git
// isolated for the whole test binary and env's variables set, once, before any test starts: the
// package's tests can then run in parallel, where t.Setenv is refused. env, when not nil, is
// given a temporary directory of this run (removed afterwards) for the paths it names, such as
// a cache or a config directory. It returns m.Run's code, or 1 when the set-up failed.
func Main(m *testing.M, env func(dir string) map[string]string) int {
	dir, err := os.MkdirTemp("", "opsctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	vars := map[string]string{}
	for _, kv := range isolation() {
		vars[kv[0]] = kv[1]
	}
	if env != nil {
		maps.Copy(vars, env(dir))
	}
	for k, v := range vars {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintf(os.Stderr, "set %s for the tests: %v\n", k, err)
			return 1
		}
	}
	return m.Run()
}

// Git runs git in dir and fails the test on error; it returns trimmed combined output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// RepoRoot returns the root of this Go module (the directory holding go.mod), searched upwards
// from the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("gitopstest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// NewRemote creates the bare repository, seeded with one commit by "Seeder" holding the
// module's gitops/ tree. It calls Isolate.
func NewRemote(t testing.TB) *Remote {
	t.Helper()
	Isolate(t)
	base := t.TempDir()
	url := filepath.Join(base, "gitops.git")
	Git(t, base, "init", "--quiet", "--bare", "--initial-branch=main", url)
	seed := filepath.Join(base, "seed")
	Git(t, base, "init", "--quiet", "--initial-branch=main", seed)
	configure(t, seed, "Seeder")
	src := filepath.Join(RepoRoot(t), "gitops")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(src), p)
		if err != nil {
			return err
		}
		dst := filepath.Join(seed, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	Git(t, seed, "add", ".")
	Git(t, seed, "commit", "--quiet", "-m", "GitOps tree")
	Git(t, seed, "push", "--quiet", url, "main")
	return &Remote{t: t, URL: url}
}

func configure(t testing.TB, dir, name string) {
	t.Helper()
	Git(t, dir, "config", "user.name", name)
	Git(t, dir, "config", "user.email", strings.ToLower(name)+"@example.com")
	Git(t, dir, "config", "commit.gpgsign", "false")
}

// Clone makes a working copy for a person (commits are authored as "<name>
// <lower-case name>@example.com") and returns its directory.
func (r *Remote) Clone(name string) string {
	r.t.Helper()
	dir := filepath.Join(r.t.TempDir(), strings.ToLower(name))
	Git(r.t, filepath.Dir(dir), "clone", "--quiet", r.URL, dir)
	configure(r.t, dir, name)
	return dir
}

// Head returns the commit at the tip of main.
func (r *Remote) Head() string {
	r.t.Helper()
	return Git(r.t, r.URL, "rev-parse", "main")
}

// File returns a file's content at the tip of main.
func (r *Remote) File(path string) []byte {
	r.t.Helper()
	cmd := exec.Command("git", "--git-dir", r.URL, "show", "main:"+path)
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("gitopstest: show %s: %v", path, err)
	}
	return out
}

// RejectPushes installs a pre-receive hook on the remote that prints message and refuses
// every push.
func (r *Remote) RejectPushes(message string) {
	r.t.Helper()
	script := "#!/bin/sh\necho '" + strings.ReplaceAll(message, "'", `'\''`) + "' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(r.URL, "hooks", "pre-receive"), []byte(script), 0o755); err != nil {
		r.t.Fatal(err)
	}
}
