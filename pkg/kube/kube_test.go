package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/hangtest"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b, user: u, namespace: ignored}
current-context: ctx-a
`

func TestRESTConfig(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ctx, host, err string
	}{
		{"", "https://a.example:6443", ""},
		{"ctx-b", "https://b.example:6443", ""},
		{"nope", "", `kubeconfig context "nope": context "nope" does not exist`},
	}
	for _, tt := range tests {
		rc, err := RESTConfig(config.Kube{Kubeconfig: path, Context: tt.ctx})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("context %q: err %v, want %q", tt.ctx, err, tt.err)
			}
			continue
		}
		if err != nil || rc.Host != tt.host {
			t.Errorf("context %q: host %v, %v; want %s", tt.ctx, rc, err, tt.host)
		}
	}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	if got := Namespace(config.Kube{}, "prod"); got != "come2us-prod" {
		t.Errorf("default namespace %q", got)
	}
	if got := Namespace(config.Kube{Namespace: "sandbox"}, "prod"); got != "sandbox" {
		t.Errorf("configured namespace %q", got)
	}
}

// An API server that accepts connections and never answers fails a request at the context's
// kube.timeout, even a call that takes no context (discovery). Before, client-go waited forever.
func TestRequestsToHungAPIServerEndAtTheTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := strings.Replace(kubeconfig, "https://a.example:6443", "http://"+hangtest.Listen(t), 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	rc, err := RESTConfig(config.Kube{Kubeconfig: path})
	if err != nil || rc.Timeout != DefaultTimeout {
		t.Fatalf("default timeout %v, %v; want %v", rc.Timeout, err, DefaultTimeout)
	}
	rc, err = RESTConfig(config.Kube{Kubeconfig: path, Timeout: "1s"})
	if err != nil || rc.Timeout != time.Second {
		t.Fatalf("kube.timeout 1s gave %v, %v", rc.Timeout, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	// The request carries the configured timeout (client-go sends it as ?timeout=) and ends
	// at it.
	_, err = cs.Discovery().ServerVersion()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout=1s") {
		t.Fatalf("ServerVersion against a hung API server = %v, want the 1s deadline exceeded", err)
	}
}
