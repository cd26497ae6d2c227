package argocd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/argocd/argocdtest"
)

const testToken = "s3cret-token"

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func allFixtures(t *testing.T) []string {
	return []string{fixture(t, "order-service-prod"), fixture(t, "payment-service-prod"), fixture(t, "monitoring")}
}

func serverOptions(srv *argocdtest.Server) Options {
	return Options{Server: srv.Addr(), PlainText: true, Token: testToken, Project: DefaultProject, LocalConfigPath: "-"}
}

func dial(t *testing.T, o Options) Apps {
	t.Helper()
	apps, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { apps.Close() })
	return apps
}

func TestServerListAndGet(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	apps := dial(t, serverOptions(srv))
	ctx := context.Background()

	list, err := apps.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range list {
		names = append(names, a.Name)
	}
	if got := strings.Join(names, ","); got != "order-service-prod,payment-service-prod" {
		t.Fatalf("list in project come2us = %s", got)
	}
	pay := list[1]
	if pay.Sync != SyncOutOfSync || pay.Health != HealthProgressing || !pay.Operation.Running() || pay.Operation.InitiatedBy != "bob" {
		t.Fatalf("payment = %+v op %+v", pay, pay.Operation)
	}
	if pay.LastSync != nil {
		t.Fatalf("payment never finished a sync, LastSync = %v", pay.LastSync)
	}

	o, err := apps.Get(ctx, "order-service-prod")
	if err != nil {
		t.Fatal(err)
	}
	if ShortRevision(o.Revision) != "3f2a9c1" || !o.AutoSync || o.DestNamespace != "come2us-prod" {
		t.Fatalf("order = %+v", o)
	}
	if want := time.Date(2026, 11, 24, 10, 0, 30, 0, time.UTC); o.LastSync == nil || !o.LastSync.Equal(want) {
		t.Fatalf("LastSync = %v, want %v", o.LastSync, want)
	}
	if len(o.Resources) != 3 || o.Resources[0].Kind != "Deployment" || o.Resources[0].Health != HealthHealthy ||
		!o.Resources[2].RequiresPruning || o.Resources[2].Sync != SyncOutOfSync {
		t.Fatalf("resources = %+v", o.Resources)
	}
	if len(o.Conditions) != 1 || o.Conditions[0].Type != "SyncError" {
		t.Fatalf("conditions = %+v", o.Conditions)
	}
	if len(o.History) != 2 || o.History[0].ID != 1 || o.History[0].InitiatedBy != "alice" || o.History[1].InitiatedBy != "automated" {
		t.Fatalf("history = %+v", o.History)
	}
	if o.History[1].Source != "https://github.com/come2us/opsctl.git/gitops/charts/saga-service@main" {
		t.Fatalf("history source = %q", o.History[1].Source)
	}

	// Without a project, every application the token may see is listed.
	all := dial(t, func() Options { o := serverOptions(srv); o.Project = ""; return o }())
	list, err = all.List(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("list all = %d apps, %v", len(list), err)
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// jwt builds an unsigned JWT expiring at exp; enough for the local expiry check.
func jwt(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"admin","exp":%d}`, exp.Unix()))) + ".c2ln"
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	dead := closedAddr(t)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		opts func(o *Options)
		call func(Apps) error
		want string
		is   error
	}{
		{
			name: "unreachable server",
			opts: func(o *Options) { o.Server = dead },
			want: "cannot reach Argo CD at " + dead + ": connection refused",
			is:   ErrUnreachable,
		},
		{
			name: "wrong token",
			opts: func(o *Options) { o.Token = "not-the-token" },
			want: "Argo CD at " + srv.Addr() + " rejected the token: invalid token (invalid session: token signature is invalid); run `argocd login " + srv.Addr() + "` or set ARGOCD_AUTH_TOKEN",
			is:   ErrUnauthenticated,
		},
		{
			name: "no token",
			opts: func(o *Options) { o.Token = "" },
			want: "Argo CD at " + srv.Addr() + " rejected the token: no token was sent; run `argocd login " + srv.Addr() + "` or set ARGOCD_AUTH_TOKEN",
			is:   ErrUnauthenticated,
		},
		{
			name: "token expired says the server",
			opts: func(o *Options) { o.Token = argocdtest.ExpiredToken },
			want: "Argo CD at " + srv.Addr() + " rejected the token: it has expired; run `argocd login " + srv.Addr() + "` or set ARGOCD_AUTH_TOKEN",
			is:   ErrTokenExpired,
		},
		{
			name: "token expired by its own claims",
			opts: func(o *Options) { o.Token = jwt(now.Add(-time.Hour)) },
			want: "the token for Argo CD at " + srv.Addr() + " expired at 2026-11-24T11:00:00Z; run `argocd login " + srv.Addr() + "` or set ARGOCD_AUTH_TOKEN",
			is:   ErrTokenExpired,
		},
		{
			name: "unknown app",
			call: func(a Apps) error { _, err := a.Get(context.Background(), "nope-service-prod"); return err },
			want: `application "nope-service-prod" not found in Argo CD at ` + srv.Addr() + " (project come2us)",
			is:   ErrAppNotFound,
		},
		{
			name: "app of another project",
			call: func(a Apps) error { _, err := a.Sync(context.Background(), "monitoring", SyncOptions{}); return err },
			want: `application "monitoring" not found in Argo CD at ` + srv.Addr() + " (project come2us)",
			is:   ErrAppNotFound,
		},
		{
			name: "unknown app without a project is ambiguous",
			opts: func(o *Options) { o.Project = "" },
			call: func(a Apps) error { _, err := a.Get(context.Background(), "nope-service-prod"); return err },
			want: "get nope-service-prod: permission denied by Argo CD at " + srv.Addr() + " (Argo CD also answers this for an application that does not exist)",
			is:   ErrPermissionDenied,
		},
		{
			name: "no server",
			opts: func(o *Options) { o.Server = "" },
			want: "no Argo CD server configured: set argocd.server in the opsctl context, run `argocd login`, or use --core",
			is:   ErrNoServer,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := serverOptions(srv)
			o.Now = func() time.Time { return now }
			if tt.opts != nil {
				tt.opts(&o)
			}
			apps, err := New(context.Background(), o)
			if err == nil {
				defer apps.Close()
				call := tt.call
				if call == nil {
					call = func(a Apps) error { _, err := a.List(context.Background()); return err }
				}
				err = call(apps)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n got: %s\nwant: %s", err, tt.want)
			}
			if strings.ContainsAny(err.Error(), "\n") || strings.Contains(err.Error(), "rpc error") {
				t.Fatalf("error is not one clean line: %q", err)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestServerSyncAndRefresh(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	srv.OnRefresh = func(app string, hard bool) {
		doc := strings.ReplaceAll(fixture(t, "order-service-prod"), "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", "4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a")
		if err := srv.Apply(doc); err != nil {
			t.Error(err)
		}
	}
	apps := dial(t, serverOptions(srv))
	ctx := context.Background()

	a, err := apps.Refresh(ctx, "order-service-prod", false)
	if err != nil {
		t.Fatal(err)
	}
	if ShortRevision(a.Revision) != "4a4a4a4" {
		t.Fatalf("refresh did not return the refreshed state: %s", a.Revision)
	}
	if got := srv.Refreshes(); len(got) != 1 || got[0] != "order-service-prod" {
		t.Fatalf("refreshes = %v", got)
	}

	a, err = apps.Sync(ctx, "order-service-prod", SyncOptions{Prune: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Operation == nil || a.Operation.Phase != PhaseRequested || !a.Operation.Prune || !a.Operation.DryRun {
		t.Fatalf("operation after sync = %+v", a.Operation)
	}
	if got := srv.Syncs(); len(got) != 1 || !got[0].Prune || !got[0].DryRun || got[0].Project != "come2us" {
		t.Fatalf("syncs = %+v", got)
	}
	_, err = apps.Sync(ctx, "order-service-prod", SyncOptions{})
	if !errors.Is(err, ErrOperationInProgress) || err.Error() != "sync order-service-prod: another operation is already in progress; nothing was started" {
		t.Fatalf("second sync = %v", err)
	}
	// payment-service-prod has an operation running.
	if _, err := apps.Sync(ctx, "payment-service-prod", SyncOptions{}); !errors.Is(err, ErrOperationInProgress) {
		t.Fatalf("sync during a running operation = %v", err)
	}
}

// TestArgoCDConfigFallback stays serial: it clears the ARGOCD_* variables with t.Setenv.
func TestArgoCDConfigFallback(t *testing.T) {
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	cfg := fmt.Sprintf(`contexts:
- name: other
  server: other.example.com
  user: other.example.com
- name: %[1]s
  server: %[1]s
  user: %[1]s
current-context: %[1]s
servers:
- server: other.example.com
  grpc-web-root-path: ""
- server: %[1]s
  plain-text: true
  grpc-web-root-path: ""
users:
- name: other.example.com
  auth-token: wrong
- name: %[1]s
  auth-token: %[2]s
`, srv.Addr(), testToken)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ARGOCD_AUTH_TOKEN", "")
	t.Setenv("ARGOCD_SERVER", "")

	// Nothing in the opsctl context: the argocd CLI's current context gives server, TLS mode and token.
	apps := dial(t, Options{LocalConfigPath: path, Project: DefaultProject})
	if list, err := apps.List(context.Background()); err != nil || len(list) != 2 {
		t.Fatalf("list through the argocd CLI login = %d, %v", len(list), err)
	}
	// A server in the opsctl context but no token: the CLI's token for that server.
	apps = dial(t, Options{Server: srv.Addr(), PlainText: true, LocalConfigPath: path, Project: DefaultProject})
	if _, err := apps.List(context.Background()); err != nil {
		t.Fatalf("list with the CLI's token for the same server: %v", err)
	}

	// The CLI refuses a config file others can read, and so do we, saying which file.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Options{LocalConfigPath: path})
	if err == nil || !strings.HasPrefix(err.Error(), "argocd CLI config "+path+": config file has incorrect permission flags") {
		t.Fatalf("world-readable CLI config = %v", err)
	}
}

// TestServerRollback: a rollback of an application that syncs itself is refused before any
// request is sent, with what to do instead; an unknown history entry is refused naming the
// entries; otherwise Argo CD is asked to sync the entry's revision.
func TestServerRollback(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	apps := dial(t, serverOptions(srv))
	ctx := context.Background()

	_, err := apps.Rollback(ctx, "order-service-prod", 1, RollbackOptions{})
	if !errors.Is(err, ErrAutoSync) || !strings.Contains(err.Error(), "auto-sync is on") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("rollback with auto-sync = %v", err)
	}
	if got := srv.Syncs(); len(got) != 0 {
		t.Fatalf("a refused rollback reached Argo CD: %+v", got)
	}

	manual := strings.Replace(fixture(t, "order-service-prod"), "    automated:\n      prune: true\n      selfHeal: true\n", "", 1)
	if manual == fixture(t, "order-service-prod") {
		t.Fatal("the fixture's automated policy was not removed")
	}
	if err := srv.Apply(manual); err != nil {
		t.Fatal(err)
	}
	_, err = apps.Rollback(ctx, "order-service-prod", 9, RollbackOptions{})
	if err == nil || !strings.Contains(err.Error(), "no history entry 9 (entries: 1, 2)") {
		t.Fatalf("rollback to an unknown entry = %v", err)
	}
	a, err := apps.Rollback(ctx, "order-service-prod", 1, RollbackOptions{Prune: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.Operation == nil || a.Operation.Revision != "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c" || !a.Operation.Prune {
		t.Fatalf("operation after the rollback = %+v", a.Operation)
	}
	if got := srv.Syncs(); len(got) != 1 || got[0].RollbackID != 1 || got[0].Revision != "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c" {
		t.Fatalf("requests = %+v", got)
	}
}

// TestServerResourcesAndRevisions: the states of managed objects come back as YAML with a diff
// from git to live; a revision's commit with its author and subject.
func TestServerResourcesAndRevisions(t *testing.T) {
	t.Parallel()
	srv := argocdtest.Start(t, testToken, allFixtures(t)...)
	srv.SetResources("order-service-prod",
		argocdtest.Resource{Group: "apps", Kind: "Deployment", Namespace: "come2us-prod", Name: "order-service-v1",
			Target: "spec:\n  replicas: 3\n", Live: "spec:\n  replicas: 2\n"},
		argocdtest.Resource{Kind: "Service", Namespace: "come2us-prod", Name: "order-service",
			Target: "spec:\n  port: 80\n", Live: "spec:\n  port: 80\n"},
	)
	date := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	srv.SetCommit("0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c", argocdtest.Commit{Author: "Alice <alice@example.com>", Date: date, Message: "canary order/prod: 1.1.0 10% -> 30%\n\nphase 0 met\n"})
	apps := dial(t, serverOptions(srv))
	ctx := context.Background()

	rs, err := apps.ManagedResources(ctx, "order-service-prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Kind != "Deployment" || !rs[0].Modified || rs[1].Modified {
		t.Fatalf("resources = %+v", rs)
	}
	if d := rs[0].Diff(); !strings.Contains(d, "--- git/Deployment.apps/order-service-v1") || !strings.Contains(d, "-  replicas: 3\n+  replicas: 2\n") {
		t.Fatalf("diff:\n%s", d)
	}
	if d := rs[1].Diff(); d != "" {
		t.Fatalf("an object in sync has a diff:\n%s", d)
	}
	if rs[1].Live != "spec:\n  port: 80\n" {
		t.Fatalf("live YAML %q", rs[1].Live)
	}

	r, err := apps.RevisionInfo(ctx, "order-service-prod", "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c")
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject() != "canary order/prod: 1.1.0 10% -> 30%" || r.Author != "Alice <alice@example.com>" || !r.Date.Equal(date) {
		t.Fatalf("revision = %+v", r)
	}
	if _, err := apps.RevisionInfo(ctx, "order-service-prod", "ffffffffffffffffffffffffffffffffffffffff"); err == nil || !strings.Contains(err.Error(), "revision fffffff of order-service-prod") {
		t.Fatalf("unknown revision = %v", err)
	}
}
