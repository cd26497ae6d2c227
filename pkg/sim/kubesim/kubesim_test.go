package kubesim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argoclient "github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	networkingapi "istio.io/api/networking/v1"
	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func start(t *testing.T) (*Server, *rest.Config) {
	t.Helper()
	s := New()
	s.Token = "sandbox-token"
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := s.WriteKubeconfig(kc, url, "sandbox", "come2us-dev"); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

func TestIstioClientRoundTrip(t *testing.T) {
	_, cfg := start(t)
	ic := istioclient.NewForConfigOrDie(cfg)
	ctx := context.Background()
	vs := &istiov1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "order-service", Namespace: "come2us-dev"},
		Spec: networkingapi.VirtualService{Hosts: []string{"order-service"}, Http: []*networkingapi.HTTPRoute{{
			Route: []*networkingapi.HTTPRouteDestination{
				{Destination: &networkingapi.Destination{Host: "order-service", Subset: "v1"}, Weight: 90},
				{Destination: &networkingapi.Destination{Host: "order-service", Subset: "v2"}, Weight: 10},
			}}}},
	}
	if _, err := ic.NetworkingV1().VirtualServices("come2us-dev").Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := ic.NetworkingV1().VirtualServices("come2us-dev").Get(ctx, "order-service", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := got.Spec.Http[0].Route[1].Weight; w != 10 || got.ResourceVersion == "" {
		t.Fatalf("weight %d rv %q", w, got.ResourceVersion)
	}
	patch := []byte(`[{"op":"replace","path":"/spec/http/0/route/0/weight","value":70},{"op":"replace","path":"/spec/http/0/route/1/weight","value":30}]`)
	if _, err := ic.NetworkingV1().VirtualServices("come2us-dev").Patch(ctx, "order-service", types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ = ic.NetworkingV1().VirtualServices("come2us-dev").Get(ctx, "order-service", metav1.GetOptions{})
	if got.Spec.Http[0].Route[1].Weight != 30 || got.Generation != 2 {
		t.Fatalf("after patch: weight %d generation %d", got.Spec.Http[0].Route[1].Weight, got.Generation)
	}
	stale := got.DeepCopy()
	stale.ResourceVersion = "1"
	if _, err := ic.NetworkingV1().VirtualServices("come2us-dev").Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := ic.NetworkingV1().VirtualServices("come2us-dev").Get(ctx, "nope", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("missing object: %v", err)
	}
}

func TestTypedListWithSelectorAndAuth(t *testing.T) {
	s, cfg := start(t)
	kc := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	for _, p := range []struct{ name, version string }{{"a", "v1"}, {"b", "v2"}, {"c", "v2"}} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"app": "order-service", "version": p.version}}}
		if _, err := kc.CoreV1().Pods("come2us-dev").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pods, err := kc.CoreV1().Pods("come2us-dev").List(ctx, metav1.ListOptions{LabelSelector: "app=order-service,version=v2"})
	if err != nil || len(pods.Items) != 2 {
		t.Fatalf("list: %d items, %v", len(pods.Items), err)
	}
	bad := rest.CopyConfig(cfg)
	bad.BearerToken = "wrong"
	if _, err := kubernetes.NewForConfigOrDie(bad).CoreV1().Pods("x").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("wrong token: %v", err)
	}
	if n := len(s.List(corev1.SchemeGroupVersion.WithResource("pods"), "", nil)); n != 3 {
		t.Fatalf("in-process list: %d", n)
	}
}

func TestArgoApplicationsWatch(t *testing.T) {
	_, cfg := start(t)
	ac := argoclient.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := ac.ArgoprojV1alpha1().Applications("argocd").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	app := &argov1.Application{ObjectMeta: metav1.ObjectMeta{Name: "order-service-dev", Namespace: "argocd"},
		Spec: argov1.ApplicationSpec{Project: "come2us"}}
	if _, err := ac.ArgoprojV1alpha1().Applications("argocd").Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		got, ok := ev.Object.(*argov1.Application)
		if !ok || got.Name != "order-service-dev" || ev.Type != "ADDED" {
			t.Fatalf("event %v %T", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	patch := []byte(`{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}`)
	got, err := ac.ArgoprojV1alpha1().Applications("argocd").Patch(ctx, "order-service-dev", types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil || got.Annotations["argocd.argoproj.io/refresh"] != "normal" {
		t.Fatalf("patch: %v %v", got, err)
	}
}

func TestUpdateOfDeletedObjectDoesNotRecreateIt(t *testing.T) {
	s := New()
	pod := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "p", "namespace": "ns"}}}
	stored, err := s.Apply(pod)
	if err != nil {
		t.Fatal(err)
	}
	gvr := corev1.SchemeGroupVersion.WithResource("pods")
	if err := s.Delete(gvr, "ns", "p"); err != nil {
		t.Fatal(err)
	}
	// A writer still holding the old copy updates its status.
	stored.Object["status"] = map[string]any{"phase": "Running"}
	if _, err := s.Apply(stored); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a deleted object = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(gvr, "ns", "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the deleted object came back: %v", err)
	}
	// Without a resourceVersion, Apply still creates.
	if _, err := s.Apply(pod); err != nil {
		t.Fatal(err)
	}
}
