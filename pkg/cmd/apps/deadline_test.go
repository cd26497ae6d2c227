package apps_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/hangtest"
)

// Every apps command against an argocd-server that accepts connections and never answers ends
// at --argocd-timeout with one line and exit 1. Before, Argo CD's client fell back to gRPC-Web
// and ended the process with "level=fatal ... dial unix .../argocd-*.sock: i/o timeout".
// The test stays serial (it sets the environment and swaps logrus' process-wide logger); the
// commands, each waiting out its timeout, wait side by side.
func TestAppsAgainstHungServerEndAtTheTimeout(t *testing.T) {
	env(t)
	addr := hangtest.Listen(t)
	cfg := configFor(t, addr, token)
	var logs syncBuffer
	l := logrus.StandardLogger()
	old := l.Out
	l.SetOutput(&logs)
	t.Cleanup(func() { l.SetOutput(old) })

	// The group returns once every parallel subtest in it has ended.
	t.Run("commands", func(t *testing.T) {
		for _, args := range [][]string{
			{"apps", "list"},
			{"apps", "get", "order-service-prod"},
			{"apps", "sync", "order-service-prod", "--yes"},
			{"apps", "history", "order-service-prod"},
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				r := run(t, cfg, false, "", append(args, "--argocd-timeout", "1s")...)
				if r.err == nil || cmdutil.ExitCode(r.err) != cmdutil.ExitError {
					t.Fatalf("%v: err %v (exit %d), want exit 1", args, r.err, cmdutil.ExitCode(r.err))
				}
				msg := r.err.Error()
				if msg != "cannot reach Argo CD at "+addr+": it accepted the connection but did not answer within 1s; nothing was changed (check the server, or raise argocd.timeout)" {
					t.Errorf("%v: %q", args, msg)
				}
			})
		}
	})
	if strings.Contains(logs.String(), "level=fatal") {
		t.Errorf("the Argo CD client logged a fatal line:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer that commands running side by side may log to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
