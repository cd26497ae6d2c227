//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/come2us/opsctl/pkg/config"
)

// operator is one person at a terminal: an opsctl config pointing at the environment, and a
// working copy of the GitOps repository of their own.
type operator struct {
	t      testing.TB
	name   string
	home   string
	config string
	repo   *clone
}

// newOperator writes a config whose context "e2e" points opsctl at the environment: the
// operator's own clone as gitops.dir, argocd-server with the opsctl token, the apiserver's
// kubeconfig. mutate may adjust the context (a wrong token, core mode...).
func newOperator(t testing.TB, name string, mutate func(*config.Context)) *operator {
	t.Helper()
	home := t.TempDir()
	repo := cloneRepo(t, env.GitURL)
	ctx := &config.Context{
		GitOps: config.GitOps{Dir: repo.dir, Branch: "main"},
		ArgoCD: config.ArgoCD{Server: env.ArgoCDServer, Token: env.ArgoCDToken, PlainText: true, Namespace: "argocd"},
		Kube:   config.Kube{Kubeconfig: env.Kubeconfig},
	}
	if mutate != nil {
		mutate(ctx)
	}
	b, err := yaml.Marshal(&config.Config{CurrentContext: "e2e", Contexts: map[string]*config.Context{"e2e": ctx}})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	path := filepath.Join(home, "config.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
	return &operator{t: t, name: name, home: home, config: path, repo: repo}
}

// result is one opsctl run.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("opsctl %s (exit %d)\nstdout:\n%sstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs the opsctl binary as this operator, with nothing from the test process's own
// environment that could point it elsewhere (ARGOCD_AUTH_TOKEN, KUBECONFIG, OPSCTL_*).
func (o *operator) run(args ...string) result {
	o.t.Helper()
	cmd := exec.Command(env.Opsctl, args...)
	cmd.Dir = o.home
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + o.home,
		"XDG_CONFIG_HOME=" + filepath.Join(o.home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(o.home, ".cache"),
		"OPSCTL_CONFIG=" + o.config,
		"OPSCTL_ACTOR=" + o.name,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=" + o.name, "GIT_AUTHOR_EMAIL=" + o.name + "@e2e.invalid",
		"GIT_COMMITTER_NAME=" + o.name, "GIT_COMMITTER_EMAIL=" + o.name + "@e2e.invalid",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		o.t.Fatalf("opsctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustRun runs opsctl and fails the test unless it exits 0.
func (o *operator) mustRun(args ...string) result {
	o.t.Helper()
	r := o.run(args...)
	if r.code != 0 {
		o.t.Fatalf("%s", r)
	}
	return r
}
