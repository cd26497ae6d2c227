package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/sim/sandbox"
)

// TestMain lets the test binary act as opsctl-sandbox in a child process (the helper-process
// pattern of os/exec's own tests), so a signal can reach the real main.
func TestMain(m *testing.M) {
	if os.Getenv("OPSCTL_SANDBOX_TEST_MAIN") == "1" {
		os.Args = append([]string{"opsctl-sandbox"}, strings.Fields(os.Getenv("OPSCTL_SANDBOX_TEST_ARGS"))...)
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// TestHangupRemovesTheContext: closing the terminal (SIGHUP, as `tmux kill-session` sends) stops
// the sandbox as Ctrl-C does, and its context leaves the user's config file with it, so no
// current-context is left pointing at brokers that are gone.
func TestHangupRemovesTheContext(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole sandbox")
	}
	gitopstest.Isolate(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cmd, sc := startSandbox(t, "--config "+cfgPath+" --headless --rate 0")
	ready := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Ready in") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("the sandbox ended before it was ready: %v", sc.Err())
	}
	c, err := config.Load(cfgPath)
	if err != nil || c.Contexts["sandbox"] == nil || c.CurrentContext != "sandbox" {
		t.Fatalf("while running, the config holds %+v (%v); want the sandbox context, current", c, err)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGHUP the sandbox exited with %v; want a clean stop", err)
	}
	c, err = config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Contexts["sandbox"] != nil || c.CurrentContext == "sandbox" {
		t.Fatalf("after SIGHUP the config still holds the sandbox context (current %q)", c.CurrentContext)
	}
}

// TestKillLeavesTheUserConfigAlone: a sandbox killed with SIGKILL runs no cleanup at all, so it
// must never have written into the user's config file: it keeps its context in a config file of
// its own, in its state directory, and the next sandbox removes that directory.
func TestKillLeavesTheUserConfigAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole sandbox")
	}
	gitopstest.Isolate(t)
	userCfg := filepath.Join(t.TempDir(), "config.yaml")
	tmp := t.TempDir()
	cmd, sc := startSandbox(t, "--headless --rate 0", "OPSCTL_CONFIG="+userCfg, "TMPDIR="+tmp)
	var ownCfg string
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export OPSCTL_CONFIG="); ok {
			ownCfg = p
			break
		}
	}
	if ownCfg == "" {
		t.Fatalf("the sandbox did not say which config file to use: %v", sc.Err())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	c, err := config.Load(ownCfg)
	if err != nil || c.Contexts["sandbox"] == nil || c.CurrentContext != "sandbox" {
		t.Fatalf("the sandbox's own config %s holds %+v (%v); want the sandbox context, current", ownCfg, c, err)
	}
	if _, err := os.Stat(userCfg); !os.IsNotExist(err) {
		t.Fatalf("while running, the sandbox wrote the user's config file %s (%v)", userCfg, err)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(userCfg); !os.IsNotExist(err) {
		t.Fatalf("after kill -9 the user's config file %s exists (%v)", userCfg, err)
	}
	state := filepath.Dir(ownCfg)
	if stale := sandbox.StaleTempDirs(tmp); len(stale) != 1 || stale[0] != state {
		t.Fatalf("stale temporary state = %v, want the killed sandbox's %s, for the next sandbox to remove", stale, state)
	}
}

// startSandbox runs the real main with args in a child process (the test binary, see TestMain)
// and returns it with a scanner of its standard output; the child is killed when the test ends.
func startSandbox(t *testing.T, args string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), "OPSCTL_SANDBOX_TEST_MAIN=1", "OPSCTL_SANDBOX_TEST_ARGS="+args)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}
