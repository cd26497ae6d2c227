//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	istio "istio.io/client-go/pkg/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The environment's own smoke Application (e2e/testdata/smoke): it proves the loop works
// independently of the project's chart.
const (
	smokeApp       = "e2e-smoke"
	smokeNamespace = "e2e-smoke"
	smokeValues    = "e2e/testdata/smoke/chart/values.yaml"
)

var smokeWeight = regexp.MustCompile(`(?m)^weight: *(\d+)`)

// waitAppState waits until Argo CD reports app Synced and Healthy at revision rev (any revision
// when rev is empty), refreshing it on every poll.
func waitAppState(t testing.TB, apps application.ApplicationServiceClient, app, rev string, timeout time.Duration) {
	t.Helper()
	refresh := string(v1alpha1.RefreshTypeNormal)
	eventually(t, timeout, 500*time.Millisecond, "application "+app+" Synced/Healthy", func(ctx context.Context) (bool, string, error) {
		a, err := apps.Get(ctx, &application.ApplicationQuery{Name: &app, Refresh: &refresh})
		if err != nil {
			return false, "", err
		}
		st := a.Status
		state := fmt.Sprintf("sync=%s health=%s revision=%s", st.Sync.Status, st.Health.Status, st.Sync.Revision)
		if op := st.OperationState; op != nil {
			state += fmt.Sprintf(" operation=%s %q", op.Phase, op.Message)
		}
		ok := st.Sync.Status == v1alpha1.SyncStatusCodeSynced && st.Health.Status == "Healthy" &&
			(rev == "" || st.Sync.Revision == rev)
		return ok, state, nil
	})
}

func TestEnvironmentSmokeApplicationSyncedAndHealthy(t *testing.T) {
	closer, apps, err := env.argoClient(t).NewApplicationClient()
	if err != nil {
		t.Fatalf("application client: %v", err)
	}
	defer closer.Close()
	waitAppState(t, apps, smokeApp, "", 3*time.Minute)

	// Every object of the chart is live, including the Deployments that no kubelet runs.
	ctx := context.Background()
	name := smokeApp
	tree, err := apps.ResourceTree(ctx, &application.ResourcesQuery{ApplicationName: &name})
	if err != nil {
		t.Fatalf("resource tree: %v", err)
	}
	kinds := map[string]int{}
	for _, n := range tree.Nodes {
		if n.Namespace == smokeNamespace {
			kinds[n.Kind]++
		}
	}
	for kind, want := range map[string]int{"Deployment": 2, "HorizontalPodAutoscaler": 2, "Service": 1, "VirtualService": 1, "DestinationRule": 1} {
		if kinds[kind] != want {
			t.Errorf("resource tree has %d %s, want %d (tree: %v)", kinds[kind], kind, want, kinds)
		}
	}
}

// TestEnvironmentPushedWeightReachesLiveVirtualService is the loop opsctl canary relies on:
// a weight committed and pushed to git, then a refresh, ends up in the live VirtualService. It
// logs the push-to-live latency (a figure, not an assertion).
func TestEnvironmentPushedWeightReachesLiveVirtualService(t *testing.T) {
	closer, apps, err := env.argoClient(t).NewApplicationClient()
	if err != nil {
		t.Fatalf("application client: %v", err)
	}
	defer closer.Close()
	waitAppState(t, apps, smokeApp, "", 3*time.Minute)
	mesh, err := istio.NewForConfig(env.restConfig(t))
	if err != nil {
		t.Fatalf("istio client: %v", err)
	}

	repo := cloneRepo(t, env.GitURL)
	m := smokeWeight.FindStringSubmatch(repo.read(smokeValues))
	if m == nil {
		t.Fatalf("%s has no weight", smokeValues)
	}
	current, _ := strconv.Atoi(m[1])
	for _, want := range []int{(current + 30) % 100, 0} {
		repo.replace(smokeValues, smokeWeight, "weight: "+strconv.Itoa(want))
		rev := repo.commitAndPush(fmt.Sprintf("Shift %d%% of smoke traffic to v2", want))
		pushed := time.Now()

		refresh := string(v1alpha1.RefreshTypeNormal)
		name := smokeApp
		if _, err := apps.Get(context.Background(), &application.ApplicationQuery{Name: &name, Refresh: &refresh}); err != nil {
			t.Fatalf("refresh %s: %v", smokeApp, err)
		}
		eventually(t, 2*time.Minute, 50*time.Millisecond, fmt.Sprintf("live VirtualService at weight %d", want), func(ctx context.Context) (bool, string, error) {
			vs, err := mesh.NetworkingV1().VirtualServices(smokeNamespace).Get(ctx, "smoke", metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			got := map[string]int32{}
			for _, r := range vs.Spec.GetHttp() {
				for _, d := range r.GetRoute() {
					got[d.GetDestination().GetSubset()] = d.GetWeight()
				}
			}
			return got["v1"] == int32(100-want) && got["v2"] == int32(want), fmt.Sprintf("weights %v", got), nil
		})
		t.Logf("push-to-live latency (weight %d, commit %.8s): %s", want, rev, time.Since(pushed).Round(time.Millisecond))
		waitAppState(t, apps, smokeApp, rev, time.Minute)
	}
}
