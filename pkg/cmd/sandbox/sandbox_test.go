package sandbox_test

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	sandboxcmd "github.com/come2us/opsctl/pkg/cmd/sandbox"
	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops/gitopstest"
	"github.com/come2us/opsctl/pkg/iostreams"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run"),
		// argo-cd's packages start cache janitors in their package initialisation.
		goleak.IgnoreTopFunction("github.com/patrickmn/go-cache.(*janitor).Run"),
	)
}

// syncBuffer is a buffer the command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o *sandboxcmd.SandboxOptions)
	}{
		{name: "defaults", check: func(t *testing.T, o *sandboxcmd.SandboxOptions) {
			if o.Headless || o.Rate != 4 || o.DeclineRatio != 0.2 || o.NoFaults || o.FaultEvery != 10*time.Minute || o.StateDir != "" {
				t.Fatalf("defaults %+v", o)
			}
		}},
		{name: "headless with state", args: []string{"--headless", "--state", "/tmp/x", "--rate", "0"}, check: func(t *testing.T, o *sandboxcmd.SandboxOptions) {
			if !o.Headless || o.StateDir != "/tmp/x" || o.Rate != 0 {
				t.Fatalf("options %+v", o)
			}
		}},
		{name: "canary fault in both envs", args: []string{"--canary-fault", "order:delay=300ms,errors=0.05"}},
		{name: "canary fault in one env with status", args: []string{"--canary-fault", "prod/payment-service:errors=0.5,status=500"}},
		{name: "rate too high", args: []string{"--rate", "1000"}, wantErr: "--rate 1000"},
		{name: "negative decline ratio", args: []string{"--decline-ratio", "-0.1"}, wantErr: "--decline-ratio"},
		{name: "coupon ratio above 1", args: []string{"--coupon-ratio", "2"}, wantErr: "--coupon-ratio"},
		{name: "port base too high", args: []string{"--port-base", "65533"}, wantErr: "--port-base"},
		{name: "fault period too short", args: []string{"--fault-every", "5s"}, wantErr: "--fault-every"},
		{name: "canary fault without settings", args: []string{"--canary-fault", "order"}, wantErr: "want [ENV/]SERVICE"},
		{name: "canary fault on unknown service", args: []string{"--canary-fault", "cart:errors=0.1"}, wantErr: "cart"},
		{name: "canary fault in unknown env", args: []string{"--canary-fault", "stage/order:errors=0.1"}, wantErr: "stage"},
		{name: "canary fault ratio out of range", args: []string{"--canary-fault", "order:errors=1.5"}, wantErr: "errors=1.5"},
		{name: "canary fault bad delay", args: []string{"--canary-fault", "order:delay=slow"}, wantErr: "delay=slow"},
		{name: "canary fault 2xx status", args: []string{"--canary-fault", "order:errors=0.1,status=204"}, wantErr: "status=204"},
		{name: "canary fault that does nothing", args: []string{"--canary-fault", "order:errors=0"}, wantErr: "nothing to inject"},
		{name: "canary fault unknown setting", args: []string{"--canary-fault", "order:jitter=1s"}, wantErr: "unknown setting"},
		{name: "canary unready", args: []string{"--canary-unready", "prod/payment", "--canary-unready", "order-service"}},
		{name: "canary unready unknown service", args: []string{"--canary-unready", "cart"}, wantErr: "--canary-unready"},
		{name: "canary unready unknown env", args: []string{"--canary-unready", "qa/order"}, wantErr: "--canary-unready"},
		{name: "arguments", args: []string{"now"}, wantErr: "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios, Now: time.Now}
			var got *sandboxcmd.SandboxOptions
			cmd := sandboxcmd.NewCmdSandbox(f, nil, func(o *sandboxcmd.SandboxOptions) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if got != nil {
					t.Fatal("the sandbox would have started")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// TestHeadlessRunWritesAndRemovesTheContext runs `opsctl-sandbox --headless` (what `opsctl
// sandbox` runs) through its root command: it must become ready, write the sandbox context (current, as none was), apply the canary
// fault, and on interrupt stop everything, free its ports and take the temporary context away.
func TestHeadlessRunWritesAndRemovesTheContext(t *testing.T) {
	gitopstest.Isolate(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	ios, _, _, _ := iostreams.Test()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	ios.Out, ios.ErrOut = out, errOut
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now, Output: cmdutil.OutputTable}
	cmd := sandboxcmd.NewCmdStandalone(f, nil)
	cmd.SetArgs([]string{"--config", cfgPath, "--headless", "--rate", "6", "--decline-ratio", "0.5",
		"--canary-fault", "dev/order:errors=0.2", "--canary-unready", "dev/payment"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), "Ready in") {
		select {
		case err := <-done:
			t.Fatalf("the sandbox ended before it was ready: %v\n%s\n%s", err, out, errOut)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 90s:\n%s\n%s", out, errOut)
		}
	}
	t.Logf("%s", out)
	for _, want := range []string{"Canary fault on dev/order-service v2", "Canary pods of payment-service in dev fail readiness"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	name, sc, err := cfg.Resolve("")
	if err != nil || name != "sandbox" {
		t.Fatalf("current context %q (%v), want sandbox", name, err)
	}
	if !sc.Simulated || len(sc.Kafka.Brokers) != 3 || sc.ArgoCD.Server == "" || sc.ArgoCD.Token == "" || !sc.ArgoCD.PlainText ||
		sc.Kube.Kubeconfig == "" || sc.Prometheus.URL == "" || sc.GitOps.Dir == "" || sc.GitOps.Repo == "" || len(sc.Services) != 3 {
		t.Fatalf("sandbox context %+v", sc)
	}
	if strings.Contains(out.String(), sc.ArgoCD.Token) {
		t.Fatal("the Argo CD token was printed")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted sandbox returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the sandbox did not stop within 60s of the interrupt")
	}
	for _, a := range append(sc.Kafka.Brokers, sc.ArgoCD.Server, strings.TrimPrefix(sc.Prometheus.URL, "http://")) {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is still taken after the sandbox stopped: %v", a, err)
			continue
		}
		ln.Close()
	}
	cfg, err = config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Contexts["sandbox"]; ok || cfg.CurrentContext != "" {
		t.Fatalf("after a temporary sandbox: contexts %v, current %q; want both gone", cfg.Names(), cfg.CurrentContext)
	}
}

// TestStartFailureLeavesNothing: a sandbox that cannot start (its ports are taken) says why and
// leaves no context behind.
func TestStartFailureLeavesNothing(t *testing.T) {
	gitopstest.Isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	ios, _, out, _ := iostreams.Test()
	f := &cmdutil.Factory{IOStreams: ios, Now: time.Now, Output: cmdutil.OutputTable}
	cmd := sandboxcmd.NewCmdStandalone(f, nil)
	cmd.SetArgs([]string{"--config", cfgPath, "--headless", "--port-base", strconv.Itoa(port)})
	err = cmd.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start the sandbox") || !strings.Contains(err.Error(), "nothing is left running") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(out.String(), "Ready") {
		t.Fatalf("output claims readiness: %s", out)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Contexts) != 0 {
		t.Fatalf("contexts %v written by a sandbox that never started", cfg.Names())
	}
}
