//go:build e2e

// Package e2e drives opsctl against a real GitOps loop on this machine: etcd, kube-apiserver and
// Argo CD built from source (e2e/tools), a git daemon serving the GitOps repository, and the
// Istio, Argo CD and ServiceMonitor CRDs. There is no kubelet, so pods never run; argocd-cm
// counts Deployments and HPAs as Healthy (see e2e/README.md). Everything else is the real thing:
// Argo CD renders the chart with Helm, syncs it with server-side apply, and the tests read the
// live objects back through the same client libraries opsctl uses.
//
// Run with `go test -tags e2e ./e2e/...`. TestMain starts the environment with
// e2e/scripts/env up when it is not running and stops it again afterwards (set
// OPSCTL_E2E_KEEP=1 to keep it); an environment that was already running is left alone.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Env is the running environment, as described by the env file that e2e/scripts/env up writes.
type Env struct {
	// RepoRoot is the checkout under test.
	RepoRoot string
	// State is the environment's state directory (logs, kubeconfig, git repository).
	State string
	// Bin holds kubectl, argocd and the other built tools.
	Bin string
	// APIServer is the kube-apiserver URL; Kubeconfig authenticates to it as cluster admin.
	APIServer, Kubeconfig string
	// ArgoCDServer is argocd-server's plaintext gRPC address; ArgoCDToken is the API token of
	// the "opsctl" account (role:admin).
	ArgoCDServer, ArgoCDToken string
	// GitURL is the GitOps repository that every Application syncs from (pushable); GitDir is
	// the bare repository behind it.
	GitURL, GitDir string
	// Opsctl is the opsctl binary built from this checkout for the run.
	Opsctl string
}

// env is the environment shared by every test in the package; TestMain sets it.
var env Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	script := filepath.Join(root, "e2e", "scripts", "env")
	started := false
	if err := exec.Command(script, "status").Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: environment not running; starting it with e2e/scripts/env up")
		up := exec.Command(script, "up")
		up.Stdout, up.Stderr = os.Stderr, os.Stderr
		if err := up.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: e2e/scripts/env up: %v\n", err)
			return 1
		}
		started = true
	}
	if started && os.Getenv("OPSCTL_E2E_KEEP") != "1" {
		defer func() {
			down := exec.Command(script, "down")
			down.Stdout, down.Stderr = os.Stderr, os.Stderr
			if err := down.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: e2e/scripts/env down: %v\n", err)
			}
		}()
	}
	out, err := exec.Command(script, "env").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: reading the env file: %v\n", err)
		return 1
	}
	env, err = parseEnv(out)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	env.RepoRoot = root
	tmp, err := os.MkdirTemp("", "opsctl-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	env.Opsctl = filepath.Join(tmp, "opsctl")
	build := exec.Command("go", "build", "-o", env.Opsctl, "./cmd/opsctl")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building opsctl: %v\n", err)
		return 1
	}
	return m.Run()
}

// parseEnv reads the `export KEY=value` lines of the env file.
func parseEnv(b []byte) (Env, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return Env{}, fmt.Errorf("env file: line %q is not KEY=value", line)
		}
		vars[k] = v
	}
	e := Env{
		State:        vars["OPSCTL_E2E_STATE"],
		Bin:          vars["OPSCTL_E2E_BIN"],
		APIServer:    vars["OPSCTL_E2E_APISERVER"],
		Kubeconfig:   vars["OPSCTL_E2E_KUBECONFIG"],
		ArgoCDServer: vars["OPSCTL_E2E_ARGOCD_SERVER"],
		ArgoCDToken:  vars["OPSCTL_E2E_ARGOCD_TOKEN"],
		GitURL:       vars["OPSCTL_E2E_GIT_URL"],
		GitDir:       vars["OPSCTL_E2E_GIT_DIR"],
	}
	for k, v := range map[string]string{"OPSCTL_E2E_APISERVER": e.APIServer, "OPSCTL_E2E_KUBECONFIG": e.Kubeconfig,
		"OPSCTL_E2E_ARGOCD_SERVER": e.ArgoCDServer, "OPSCTL_E2E_ARGOCD_TOKEN": e.ArgoCDToken, "OPSCTL_E2E_GIT_URL": e.GitURL} {
		if v == "" {
			return Env{}, fmt.Errorf("env file has no %s; restart the environment (e2e/scripts/env down && e2e/scripts/env up)", k)
		}
	}
	return e, nil
}

// restConfig is the cluster-admin client configuration of the environment's apiserver.
func (e Env) restConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig %s: %v", e.Kubeconfig, err)
	}
	return cfg
}

// argoClient connects to argocd-server with the opsctl account's token.
func (e Env) argoClient(t testing.TB) apiclient.Client {
	t.Helper()
	c, err := apiclient.NewClient(&apiclient.ClientOptions{
		ServerAddr: e.ArgoCDServer,
		PlainText:  true,
		AuthToken:  e.ArgoCDToken,
		ConfigPath: filepath.Join(t.TempDir(), "argocd-config"),
	})
	if err != nil {
		t.Fatalf("argo-cd api client for %s: %v", e.ArgoCDServer, err)
	}
	return c
}

// eventually polls check every interval until it reports done or the timeout passes; the
// timeout is a failure bound for a loop that should converge, not a performance assertion.
func eventually(t testing.TB, timeout, interval time.Duration, what string, check func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last := ""
	for {
		done, state, err := check(ctx)
		if err != nil {
			state = err.Error()
		}
		if done {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s; last state: %s", what, timeout, last)
		case <-time.After(interval):
		}
	}
}
