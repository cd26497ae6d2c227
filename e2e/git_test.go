//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// clone is a working copy of the environment's GitOps repository, as an operator has one.
type clone struct {
	t   testing.TB
	dir string
}

// cloneRepo clones the GitOps repository into a temporary directory.
func cloneRepo(t testing.TB, url string) *clone {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gitops")
	c := &clone{t: t, dir: dir}
	c.git("", "clone", "-q", url, dir)
	c.git(dir, "config", "user.name", "opsctl e2e")
	c.git(dir, "config", "user.email", "opsctl-e2e@localhost")
	return c
}

// git runs git in dir and returns its trimmed output; a failure fails the test.
func (c *clone) git(dir string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// read returns a file of the working copy.
func (c *clone) read(path string) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, path))
	if err != nil {
		c.t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// replace rewrites the first match of re in path with repl (a regexp replacement template).
func (c *clone) replace(path string, re *regexp.Regexp, repl string) {
	c.t.Helper()
	old := c.read(path)
	loc := re.FindStringSubmatchIndex(old)
	if loc == nil {
		c.t.Fatalf("%s: no match for %s", path, re)
	}
	var b []byte
	b = re.ExpandString(b, repl, old, loc)
	updated := old[:loc[0]] + string(b) + old[loc[1]:]
	if err := os.WriteFile(filepath.Join(c.dir, path), []byte(updated), 0o644); err != nil {
		c.t.Fatalf("write %s: %v", path, err)
	}
}

// commitAndPush commits every change with message msg and pushes main; it returns the commit.
func (c *clone) commitAndPush(msg string) string {
	c.t.Helper()
	c.git(c.dir, "commit", "-q", "-am", msg)
	c.git(c.dir, "push", "-q", "origin", "HEAD:main")
	return c.git(c.dir, "rev-parse", "HEAD")
}
