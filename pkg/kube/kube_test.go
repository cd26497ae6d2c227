package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/config"
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
	if got := Namespace(config.Kube{}, "prod"); got != "come2us-prod" {
		t.Errorf("default namespace %q", got)
	}
	if got := Namespace(config.Kube{Namespace: "sandbox"}, "prod"); got != "sandbox" {
		t.Errorf("configured namespace %q", got)
	}
}
