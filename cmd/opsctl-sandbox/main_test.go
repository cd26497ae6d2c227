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
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OPSCTL_SANDBOX_TEST_MAIN=1",
		"OPSCTL_SANDBOX_TEST_ARGS=--config "+cfgPath+" --headless --rate 0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
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
