package argocd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func application(t *testing.T, doc string) *v1alpha1.Application {
	t.Helper()
	var a v1alpha1.Application
	if err := yaml.UnmarshalStrict([]byte(doc), &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

func coreFixture(t *testing.T) (*fake.Clientset, *coreApps) {
	t.Helper()
	var objs []runtime.Object
	for _, doc := range allFixtures(t) {
		objs = append(objs, application(t, doc))
	}
	cs := fake.NewSimpleClientset(objs...)
	c := newCore(cs, "https://127.0.0.1:6443", Options{Project: DefaultProject, Actor: "alice@laptop"})
	c.backoff = time.Millisecond
	return cs, c
}

func TestCoreListGet(t *testing.T) {
	t.Parallel()
	_, c := coreFixture(t)
	ctx := context.Background()
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "order-service-prod" || list[1].Name != "payment-service-prod" {
		t.Fatalf("core list = %+v", list)
	}
	a, err := c.Get(ctx, "order-service-prod")
	if err != nil || len(a.Resources) != 3 || len(a.History) != 2 {
		t.Fatalf("core get = %+v, %v", a, err)
	}
	for _, name := range []string{"nope", "monitoring"} {
		_, err = c.Get(ctx, name)
		want := `application "` + name + `" not found in the Kubernetes API at https://127.0.0.1:6443 (project come2us)`
		if !errors.Is(err, ErrAppNotFound) || err.Error() != want {
			t.Fatalf("core get %s = %v", name, err)
		}
	}
}

func TestCoreSyncPatchesTheOperation(t *testing.T) {
	t.Parallel()
	cs, c := coreFixture(t)
	ctx := context.Background()
	a, err := c.Sync(ctx, "order-service-prod", SyncOptions{Prune: true, Revision: "b7c8d9e"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Operation == nil || a.Operation.Phase != PhaseRequested {
		t.Fatalf("operation after core sync = %+v", a.Operation)
	}
	stored, err := cs.ArgoprojV1alpha1().Applications("argocd").Get(ctx, "order-service-prod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	op := stored.Operation
	if op == nil || op.Sync == nil || !op.Sync.Prune || op.Sync.DryRun || op.Sync.Revision != "b7c8d9e" || op.InitiatedBy.Username != "alice@laptop" {
		t.Fatalf("stored operation = %+v", op)
	}
	if stored.Status.Sync.Status != "Synced" || len(stored.Status.Resources) != 3 {
		t.Fatal("the patch touched more than the operation")
	}
	if _, err := c.Sync(ctx, "order-service-prod", SyncOptions{}); !errors.Is(err, ErrOperationInProgress) {
		t.Fatalf("second core sync = %v", err)
	}
	if _, err := c.Sync(ctx, "payment-service-prod", SyncOptions{}); !errors.Is(err, ErrOperationInProgress) {
		t.Fatalf("core sync during a running operation = %v", err)
	}
}

func TestCoreRefreshSetsTheAnnotation(t *testing.T) {
	t.Parallel()
	cs, c := coreFixture(t)
	ctx := context.Background()
	a, err := c.Refresh(ctx, "order-service-prod", true)
	if err != nil {
		t.Fatal(err)
	}
	if !a.RefreshPending {
		t.Fatal("RefreshPending not reported")
	}
	stored, _ := cs.ArgoprojV1alpha1().Applications("argocd").Get(ctx, "order-service-prod", metav1.GetOptions{})
	if got := stored.Annotations[v1alpha1.AnnotationKeyRefresh]; got != "hard" {
		t.Fatalf("refresh annotation = %q", got)
	}
}

func TestCoreWatchAndWait(t *testing.T) {
	t.Parallel()
	cs, c := coreFixture(t)
	ctx := context.Background()
	if _, err := c.Sync(ctx, "order-service-prod", SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	// Play the controller: each state replaces the stored object. Whenever the waiter's
	// watch starts, its first event carries the state current then, so nothing is missed.
	go func() {
		for _, s := range []appState{stateRunning, stateSynced, stateHealthy} {
			a := application(t, s.yaml())
			if _, err := cs.ArgoprojV1alpha1().Applications("argocd").Update(ctx, a, metav1.UpdateOptions{}); err != nil {
				t.Error(err)
			}
		}
	}()
	got, err := Wait(ctx, c, "order-service-prod", WaitFor{Synced: true, Healthy: true, Revision: revNew, OperationDone: true, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != revNew || got.Health != HealthHealthy {
		t.Fatalf("core wait returned %+v", got)
	}
}
