//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/config"
)

// projectApps are the Applications the ApplicationSets in gitops/argocd/ generate, sorted.
var projectApps = []string{
	"opsctl-agent-dev", "opsctl-agent-prod",
	"order-service-dev", "order-service-prod",
	"payment-service-dev", "payment-service-prod",
	"product-service-dev", "product-service-prod",
}

// requireFeature skips the test, saying why, unless `opsctl <args> --help` mentions text: the
// tier runs against whatever opsctl this checkout builds. With OPSCTL_E2E_REQUIRE_FEATURES=1
// a missing feature fails the test instead.
func requireFeature(t *testing.T, text string, args ...string) {
	t.Helper()
	if !supports(t, text, args...) {
		missing(t, fmt.Sprintf("opsctl in this checkout has no %q in `opsctl %s --help`; this test needs it", text, strings.Join(args, " ")))
	}
}

// missing skips (or, with OPSCTL_E2E_REQUIRE_FEATURES=1, fails) a test whose opsctl feature
// this checkout lacks.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("OPSCTL_E2E_REQUIRE_FEATURES") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// appJSON is the part of `opsctl apps list|get -o json` the tests read.
type appJSON struct {
	Name      string `json:"name"`
	Project   string `json:"project"`
	Sync      string `json:"sync"`
	Health    string `json:"health"`
	Revision  string `json:"revision"`
	Resources []struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
		Sync string `json:"sync"`
	} `json:"resources"`
}

type historyJSON struct {
	ID       int64  `json:"id"`
	Revision string `json:"revision"`
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("decode the output of %s: %v", r, err)
	}
	return v
}

func TestAppsAgainstArgoCDServer(t *testing.T) {
	requireFeature(t, "list", "apps")
	l := newLoop(t)
	for _, app := range projectApps {
		waitAppState(t, l.apps, app, "", 3*time.Minute)
	}
	o := newOperator(t, "alice", nil)

	list := decode[[]appJSON](t, o.mustRun("apps", "list", "-o", "json"))
	var names []string
	for _, a := range list {
		names = append(names, a.Name)
		if a.Project != "come2us" || a.Sync != "Synced" || a.Health != "Healthy" {
			t.Errorf("apps list: %s is project=%s sync=%s health=%s, want come2us Synced Healthy", a.Name, a.Project, a.Sync, a.Health)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, projectApps) {
		t.Errorf("apps list shows %v, want %v (the smoke app is in another project)", names, projectApps)
	}
	table := o.mustRun("apps", "list")
	if !strings.Contains(table.stdout, "order-service-prod") || !strings.Contains(table.stdout, "Healthy") {
		t.Errorf("apps list table lacks the apps:\n%s", table.stdout)
	}

	oneLineError(t, o.run("apps", "get", "nope-service-dev"), `"nope-service-dev" not found`)

	const app = "order-service-dev"
	got := decode[appJSON](t, o.mustRun("apps", "get", app, "-o", "json"))
	kinds := map[string]bool{}
	for _, r := range got.Resources {
		kinds[r.Kind] = true
	}
	for _, k := range []string{"Deployment", "Service", "VirtualService", "DestinationRule", "HorizontalPodAutoscaler", "ServiceMonitor"} {
		if !kinds[k] {
			t.Errorf("apps get %s: no %s among its resources %v", app, k, kinds)
		}
	}

	before := decode[[]historyJSON](t, o.mustRun("apps", "history", app, "-o", "json"))
	o.mustRun("apps", "sync", app, "--yes")
	o.mustRun("apps", "wait", app, "--sync", "--health", "--operation", "--timeout", "2m")
	after := decode[[]historyJSON](t, o.mustRun("apps", "history", app, "-o", "json"))
	if len(after) != len(before)+1 {
		t.Fatalf("apps history has %d entries after a sync, want %d", len(after), len(before)+1)
	}
	now := decode[appJSON](t, o.mustRun("apps", "get", app, "-o", "json"))
	if newest := after[len(after)-1]; newest.Revision != now.Revision {
		t.Errorf("newest history entry is at %s, want the synced revision %s", newest.Revision, now.Revision)
	}
}

func TestAppsCoreModeAgainstTheAPIServer(t *testing.T) {
	requireFeature(t, "--core", "apps")
	// No argocd-server in the config at all: --core must not need one.
	o := newOperator(t, "alice", func(c *config.Context) { c.ArgoCD = config.ArgoCD{Namespace: "argocd"} })
	list := decode[[]appJSON](t, o.mustRun("apps", "list", "--core", "-o", "json"))
	var names []string
	for _, a := range list {
		names = append(names, a.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, projectApps) {
		t.Errorf("apps list --core shows %v, want %v", names, projectApps)
	}
	got := decode[appJSON](t, o.mustRun("apps", "get", "payment-service-prod", "--core", "-o", "json"))
	if got.Name != "payment-service-prod" || got.Sync == "" || got.Health == "" {
		t.Errorf("apps get --core: %+v", got)
	}
}

// oneLineError asserts that a failed run exited 1 with one line on stderr that contains every
// want and none of the transport's noise.
func oneLineError(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit %d, want 1:\n%s", r.code, r)
	}
	msg := strings.TrimSpace(r.stderr)
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("stderr is not one line:\n%s", r)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
	for _, noise := range []string{"rpc error", "code = ", "goroutine", "desc = "} {
		if strings.Contains(msg, noise) {
			t.Errorf("error %q carries transport noise %q", msg, noise)
		}
	}
}

func TestAppsWithAWrongToken(t *testing.T) {
	requireFeature(t, "list", "apps")
	o := newOperator(t, "mallory", func(c *config.Context) { c.ArgoCD.Token = "not-a-real-token" })
	r := o.run("apps", "list")
	oneLineError(t, r, env.ArgoCDServer, "token")
	if r.stdout != "" {
		t.Errorf("a rejected token printed output:\n%s", r.stdout)
	}
}

func TestAppsWithTheServerStopped(t *testing.T) {
	requireFeature(t, "list", "apps")
	// A port nobody listens on any more: what a client sees of a stopped argocd-server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := newOperator(t, "alice", func(c *config.Context) { c.ArgoCD.Server = addr })
	r := o.run("apps", "get", "order-service-prod")
	oneLineError(t, r, addr)
	if !strings.Contains(r.stderr, "reach") && !strings.Contains(r.stderr, "refused") && !strings.Contains(r.stderr, "unreachable") {
		t.Errorf("error does not say the server cannot be reached:\n%s", r)
	}
}
