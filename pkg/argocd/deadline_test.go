package argocd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
	"github.com/come2us/opsctl/pkg/hangtest"
)

// captureLogrus collects what logrus' standard logger writes during the test.
func captureLogrus(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	l := logrus.StandardLogger()
	old := l.Out
	l.SetOutput(&buf)
	t.Cleanup(func() { l.SetOutput(old) })
	return &buf
}

// A server that accepts connections and never answers makes Argo CD's client fall back to
// gRPC-Web and call log.Fatalf, which ended the process ("level=fatal ... dial unix
// .../argocd-*.sock: i/o timeout"). New now returns one clear line at the deadline, and the
// library writes no fatal line. It stays serial: it swaps logrus' standard logger, which is
// process-wide.
func TestNewAgainstSilentServerEndsAtTheDeadline(t *testing.T) {
	addr := hangtest.Listen(t)
	for _, plain := range []bool{true, false} {
		logs := captureLogrus(t)
		o := Options{Server: addr, PlainText: plain, Token: testToken, LocalConfigPath: "-", Timeout: time.Second}
		apps, err := New(context.Background(), o)
		if err == nil {
			apps.Close()
			t.Fatalf("plaintext=%v: New succeeded against a silent server", plain)
		}
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("plaintext=%v: %v, want ErrUnreachable", plain, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "cannot reach Argo CD at "+addr) || !strings.Contains(msg, "did not answer within 1s") || strings.ContainsAny(msg, "\n") {
			t.Errorf("plaintext=%v: message %q", plain, msg)
		}
		if strings.Contains(logs.String(), "level=fatal") {
			t.Errorf("plaintext=%v: the client logged a fatal line:\n%s", plain, logs)
		}
	}
}

// A server that completes the connection but never answers application calls fails each call
// at the deadline; a watch must send its first event within it.
func TestHungApplicationCallsEndAtTheDeadline(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	o := serverOptions(srv)
	o.Timeout = time.Second
	apps := dial(t, o)
	srv.HangApplications()
	ctx := context.Background()
	const app = "order-service-prod"

	_, listErr := apps.List(ctx)
	_, getErr := apps.Get(ctx, app)
	_, refreshErr := apps.Refresh(ctx, app, false)
	_, syncErr := apps.Sync(ctx, app, SyncOptions{})
	watchErr := apps.Watch(ctx, app, func(Event) error { return nil })
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"list":    {listErr, "did not answer within 1s"},
		"get":     {getErr, "did not answer within 1s"},
		"refresh": {refreshErr, "did not answer within 1s"},
		"sync":    {syncErr, "the sync may or may not have started"},
		"watch":   {watchErr, "sent nothing within 1s"},
	} {
		if !errors.Is(tc.err, ErrUnreachable) || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s = %v, want ErrUnreachable saying %q", name, tc.err, tc.want)
		}
	}
	if len(srv.Syncs()) != 0 {
		t.Errorf("a hung server accepted a sync")
	}
}
