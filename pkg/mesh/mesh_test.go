package mesh

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	apinet "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

const ns = "come2us-prod"

func dest(subset string, weight int32) *apinet.HTTPRouteDestination {
	return &apinet.HTTPRouteDestination{Destination: &apinet.Destination{Host: "order-service", Subset: subset}, Weight: weight}
}

func vs(routes ...*apinet.HTTPRoute) *networkingv1.VirtualService {
	return &networkingv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "order-service", Namespace: ns, Generation: 7},
		Spec:       apinet.VirtualService{Hosts: []string{"order-service"}, Http: routes},
	}
}

func dr(subsets ...string) *networkingv1.DestinationRule {
	d := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "order-service", Namespace: ns}, Spec: apinet.DestinationRule{Host: "order-service"}}
	for _, s := range subsets {
		d.Spec.Subsets = append(d.Spec.Subsets, &apinet.Subset{Name: s, Labels: map[string]string{"version": s}})
	}
	return d
}

func TestRoute(t *testing.T) {
	t.Parallel()
	testerRoute := &apinet.HTTPRoute{Name: "testers", Match: []*apinet.HTTPMatchRequest{{Headers: map[string]*apinet.StringMatch{
		"x-canary": {MatchType: &apinet.StringMatch_Exact{Exact: "1"}}}}}, Route: []*apinet.HTTPRouteDestination{dest("v2", 0)}}
	tests := []struct {
		name     string
		objs     []runtime.Object
		weights  map[string]int32
		problems []string
		err      error
	}{
		{name: "canary at 10%", objs: []runtime.Object{vs(&apinet.HTTPRoute{Route: []*apinet.HTTPRouteDestination{dest("v1", 90), dest("v2", 10)}}), dr("v1", "v2")},
			weights: map[string]int32{"v1": 90, "v2": 10}},
		{name: "header route for testers does not count as the split", objs: []runtime.Object{vs(testerRoute, &apinet.HTTPRoute{Route: []*apinet.HTTPRouteDestination{dest("v1", 100), dest("v2", 0)}}), dr("v1", "v2")},
			weights: map[string]int32{"v1": 100, "v2": 0}},
		{name: "a lone destination takes everything", objs: []runtime.Object{vs(&apinet.HTTPRoute{Route: []*apinet.HTTPRouteDestination{dest("v1", 0)}}), dr("v1")},
			weights: map[string]int32{"v1": 100}},
		{name: "subset missing from the DestinationRule", objs: []runtime.Object{vs(&apinet.HTTPRoute{Route: []*apinet.HTTPRouteDestination{dest("v1", 70), dest("v2", 30)}}), dr("v1")},
			weights:  map[string]int32{"v1": 70, "v2": 30},
			problems: []string{"route sends 30% to subset v2, which the DestinationRule does not define (Envoy answers 503)"}},
		{name: "weights not adding up", objs: []runtime.Object{vs(&apinet.HTTPRoute{Route: []*apinet.HTTPRouteDestination{dest("v1", 90), dest("v2", 5)}}), dr("v1", "v2")},
			weights: map[string]int32{"v1": 90, "v2": 5}, problems: []string{"default route weights add up to 95, not 100"}},
		{name: "no DestinationRule", objs: []runtime.Object{vs(&apinet.HTTPRoute{Route: []*apinet.HTTPRouteDestination{dest("v1", 100)}})},
			weights: map[string]int32{"v1": 100}, problems: []string{"DestinationRule order-service is missing, so subsets are undefined"}},
		{name: "no VirtualService", objs: []runtime.Object{dr("v1", "v2")}, err: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(istiofake.NewSimpleClientset(tt.objs...), kubefake.NewSimpleClientset(), ns)
			got, err := r.Route(context.Background(), "order")
			if tt.err != nil {
				if !errors.Is(err, tt.err) || err.Error() != "VirtualService come2us-prod/order-service: not found" {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Weights, tt.weights) {
				t.Fatalf("weights = %v, want %v", got.Weights, tt.weights)
			}
			if strings.Join(got.Problems, "|") != strings.Join(tt.problems, "|") {
				t.Fatalf("problems = %q, want %q", got.Problems, tt.problems)
			}
			if got.Generation != 7 || got.Service != "order-service" {
				t.Fatalf("route = %+v", got)
			}
		})
	}
}

func int32p(n int32) *int32 { return &n }

func deployment(name string, desired, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       appsv1.DeploymentSpec{Replicas: int32p(desired)},
		Status:     appsv1.DeploymentStatus{ReadyReplicas: ready, UpdatedReplicas: desired, AvailableReplicas: ready},
	}
}

func pod(name, version string, ready bool, waiting string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "order-service", "version": version}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionFalse
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st, Reason: "ContainersNotReady"}}
	cs := corev1.ContainerStatus{Name: "app", Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	if waiting != "" {
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}}
	}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	return p
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	terminating := pod("order-service-v2-old", "v2", false, "")
	now := metav1.Now()
	terminating.DeletionTimestamp = &now
	terminating.Finalizers = []string{"test"}
	tests := []struct {
		name       string
		objs       []runtime.Object
		allReady   bool
		ready, des int
		summary    string
	}{
		{name: "all ready", objs: []runtime.Object{deployment("order-service-v2", 2, 2), pod("order-service-v2-a", "v2", true, ""), pod("order-service-v2-b", "v2", true, ""), pod("order-service-v1-a", "v1", false, "")},
			allReady: true, ready: 2, des: 2, summary: "2/2 pods ready"},
		{name: "one crashing", objs: []runtime.Object{deployment("order-service-v2", 3, 2), pod("order-service-v2-a", "v2", true, ""), pod("order-service-v2-b", "v2", true, ""), pod("order-service-v2-c", "v2", false, "CrashLoopBackOff")},
			ready: 2, des: 3, summary: "2/3 pods ready (order-service-v2-c: CrashLoopBackOff)"},
		{name: "probe failing", objs: []runtime.Object{deployment("order-service-v2", 1, 0), pod("order-service-v2-a", "v2", false, "")},
			ready: 0, des: 1, summary: "0/1 pods ready (order-service-v2-a: readiness probe failing)"},
		{name: "terminating pods do not count", objs: []runtime.Object{deployment("order-service-v2", 1, 1), pod("order-service-v2-a", "v2", true, ""), terminating},
			allReady: true, ready: 1, des: 1, summary: "1/1 pods ready"},
		{name: "pods not yet created", objs: []runtime.Object{deployment("order-service-v2", 2, 0)},
			ready: 0, des: 2, summary: "0/0 pods ready, 2 desired"},
		{name: "no canary deployed", ready: 0, des: 0, summary: "Deployment order-service-v2 not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := New(istiofake.NewSimpleClientset(), kubefake.NewSimpleClientset(tt.objs...), ns)
			rd, err := r.Readiness(context.Background(), "order", CanarySubset)
			if err != nil {
				t.Fatal(err)
			}
			if rd.AllReady() != tt.allReady || rd.Summary() != tt.summary {
				t.Fatalf("AllReady=%v Summary=%q, want %v %q", rd.AllReady(), rd.Summary(), tt.allReady, tt.summary)
			}
			ready, des, err := r.CanaryReady(context.Background(), "order-service")
			if err != nil || ready != tt.ready || des != tt.des {
				t.Fatalf("CanaryReady = %d/%d, %v; want %d/%d", ready, des, err, tt.ready, tt.des)
			}
		})
	}
}
