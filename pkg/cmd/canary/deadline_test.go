package canary_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
)

// silentListener accepts TCP connections and never answers, as a hung server does; it returns
// host:port.
func silentListener(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

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
// check. Before git commands had a deadline this hung forever.
func TestPushToHungRemoteEndsAtGitTimeout(t *testing.T) {
	e := newEnv(t)
	e.seedCanary("prod", "order", gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 30})
	before := e.remote.Head()
	gitopstest.Git(t, e.dir, "remote", "set-url", "--push", "origin", "git://"+silentListener(t)+"/gitops.git")

	r := e.run(nil, "canary", "rollback", "order", "--env", "prod", "--reason", "5xx", "--yes",
		"--gitops-dir", e.dir, "--git-timeout", "2s")
	if r.err == nil {
		t.Fatalf("rollback succeeded against a hung remote:\n%s", r.out)
	}
	msg := r.err.Error()
	for _, want := range []string{"locally, but the push to origin main did not finish in 2s", "may or may not have it", "git log origin/main"} {
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
