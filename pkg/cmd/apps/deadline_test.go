package apps_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/hangtest"
)

// Every apps command against an argocd-server that accepts connections and never answers ends
// at --argocd-timeout with one line and exit 1. Before, Argo CD's client fell back to gRPC-Web
// and ended the process with "level=fatal ... dial unix .../argocd-*.sock: i/o timeout".
func TestAppsAgainstHungServerEndAtTheTimeout(t *testing.T) {
	env(t)
	addr := hangtest.Listen(t)
	cfg := configFor(t, addr, token)
	var logs bytes.Buffer
	l := logrus.StandardLogger()
	old := l.Out
	l.SetOutput(&logs)
	t.Cleanup(func() { l.SetOutput(old) })

	for _, args := range [][]string{
		{"apps", "list"},
		{"apps", "get", "order-service-prod"},
		{"apps", "sync", "order-service-prod", "--yes"},
		{"apps", "history", "order-service-prod"},
	} {
		r := run(t, cfg, false, "", append(args, "--argocd-timeout", "1s")...)
		if r.err == nil || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
			t.Errorf("%v: err %v (exit %d), want exit 1", args, r.err, cmdutil.ExitCode(r.err))
			continue
		}
		msg := r.err.Error()
		if msg != "cannot reach Argo CD at "+addr+": it accepted the connection but did not answer within 1s; nothing was changed (check the server, or raise argocd.timeout)" {
			t.Errorf("%v: %q", args, msg)
		}
	}
	if strings.Contains(logs.String(), "level=fatal") {
		t.Errorf("the Argo CD client logged a fatal line:\n%s", logs.String())
	}
}
