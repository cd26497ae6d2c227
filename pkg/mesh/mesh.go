// Package mesh reads what Envoy is told to do right now: the live VirtualService weights of a
// service's subsets and the DestinationRule that defines them (through Istio's client-go), and
// whether the pods behind the canary subset are ready (through Kubernetes' client-go).
//
// Git says what the weights should be and Argo CD says what it applied; this package says what
// is live, so `opsctl canary status` can tell the three apart and canary gates can see pods that
// fail readiness.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/kube"
)

// Subsets of every service: v1 is stable, v2 the canary.
const (
	StableSubset = "v1"
	CanarySubset = "v2"
)

// ErrNotFound means the VirtualService or DestinationRule of a service does not exist.
var ErrNotFound = errors.New("not found")

// AppName is the Kubernetes name of a service given by its CLI key ("order" → "order-service");
// a name already ending in "-service" is returned as is.
func AppName(service string) string {
	if strings.HasSuffix(service, "-service") {
		return service
	}
	return service + "-service"
}

// Reader reads one namespace's mesh objects and workloads.
type Reader struct {
	istio     istioclient.Interface
	kube      kubernetes.Interface
	namespace string
}

// New returns a Reader on the given clients for namespace.
func New(istio istioclient.Interface, kube kubernetes.Interface, namespace string) *Reader {
	return &Reader{istio: istio, kube: kube, namespace: namespace}
}

// FromConfig builds a Reader for env from an opsctl context's kube section: its kubeconfig and
// context, and its namespace or come2us-<env>.
func FromConfig(k config.Kube, env string) (*Reader, error) {
	rc, err := kube.RESTConfig(k)
	if err != nil {
		return nil, err
	}
	ic, err := istioclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("istio client: %w", err)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return New(ic, kc, kube.Namespace(k, env)), nil
}

// Namespace is the namespace the Reader looks in.
func (r *Reader) Namespace() string { return r.namespace }

// Route is the live traffic split of one service.
type Route struct {
	Service   string `json:"service"`
	Namespace string `json:"namespace"`
	// Weights is the split of the default route (the catch-all HTTP route Envoy uses for
	// ordinary traffic) per subset, in percent.
	Weights map[string]int32 `json:"weights"`
	// Routes are all HTTP routes of the VirtualService, in order.
	Routes []HTTPRoute `json:"routes"`
	// Subsets are the DestinationRule's subsets (nil when it is missing).
	Subsets []Subset `json:"subsets"`
	// Problems are inconsistencies Envoy would act on badly: a route to a subset the
	// DestinationRule does not define, weights that do not add up to 100, a missing
	// DestinationRule.
	Problems []string `json:"problems,omitempty"`
	// Generation is the VirtualService's metadata.generation, to tell one edit from the next.
	Generation int64 `json:"generation"`
}

// Weight is the default route's weight of subset (0 when it gets no traffic).
func (r Route) Weight(subset string) int32 { return r.Weights[subset] }

// HTTPRoute is one HTTP route of a VirtualService.
type HTTPRoute struct {
	Name string `json:"name,omitempty"`
	// Match is true when the route only applies to requests matching conditions (headers,
	// URIs); the default route has none.
	Match        bool          `json:"match"`
	Destinations []Destination `json:"destinations"`
}

// Destination is one weighted destination of a route.
type Destination struct {
	Host   string `json:"host"`
	Subset string `json:"subset,omitempty"`
	Weight int32  `json:"weight"`
}

// Subset is one DestinationRule subset.
type Subset struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
}

// Route reads the VirtualService and DestinationRule named after service (both
// "<svc>-service").
func (r *Reader) Route(ctx context.Context, service string) (Route, error) {
	name := AppName(service)
	out := Route{Service: name, Namespace: r.namespace, Weights: map[string]int32{}}
	vs, err := r.istio.NetworkingV1().VirtualServices(r.namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return out, fmt.Errorf("VirtualService %s/%s: %w", r.namespace, name, ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("read VirtualService %s/%s: %w", r.namespace, name, err)
	}
	out.Generation = vs.Generation
	for _, h := range vs.Spec.GetHttp() {
		hr := HTTPRoute{Name: h.GetName(), Match: len(h.GetMatch()) > 0}
		for _, d := range h.GetRoute() {
			hr.Destinations = append(hr.Destinations, Destination{
				Host: d.GetDestination().GetHost(), Subset: d.GetDestination().GetSubset(), Weight: d.GetWeight(),
			})
		}
		// Istio: a lone destination without a weight gets all the traffic.
		if len(hr.Destinations) == 1 && hr.Destinations[0].Weight == 0 {
			hr.Destinations[0].Weight = 100
		}
		out.Routes = append(out.Routes, hr)
	}
	def := defaultRoute(out.Routes)
	if def == nil {
		out.Problems = append(out.Problems, "the VirtualService has no HTTP route")
	} else {
		var sum int32
		for _, d := range def.Destinations {
			out.Weights[subsetKey(d.Subset)] += d.Weight
			sum += d.Weight
		}
		if sum != 100 {
			out.Problems = append(out.Problems, fmt.Sprintf("default route weights add up to %d, not 100", sum))
		}
	}

	dr, err := r.istio.NetworkingV1().DestinationRules(r.namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		out.Problems = append(out.Problems, fmt.Sprintf("DestinationRule %s is missing, so subsets are undefined", name))
		return out, nil
	case err != nil:
		return out, fmt.Errorf("read DestinationRule %s/%s: %w", r.namespace, name, err)
	}
	defined := map[string]bool{}
	for _, s := range dr.Spec.GetSubsets() {
		out.Subsets = append(out.Subsets, Subset{Name: s.GetName(), Labels: s.GetLabels()})
		defined[s.GetName()] = true
	}
	for _, hr := range out.Routes {
		for _, d := range hr.Destinations {
			if d.Subset != "" && !defined[d.Subset] && d.Weight > 0 {
				out.Problems = append(out.Problems, fmt.Sprintf("route sends %d%% to subset %s, which the DestinationRule does not define (Envoy answers 503)", d.Weight, d.Subset))
			}
		}
	}
	return out, nil
}

// defaultRoute is the last HTTP route without match conditions (Envoy's catch-all), else the
// last route.
func defaultRoute(routes []HTTPRoute) *HTTPRoute {
	for i := len(routes) - 1; i >= 0; i-- {
		if !routes[i].Match {
			return &routes[i]
		}
	}
	if len(routes) > 0 {
		return &routes[len(routes)-1]
	}
	return nil
}

func subsetKey(s string) string {
	if s == "" {
		return "(no subset)"
	}
	return s
}

// Readiness is the state of one version's Deployment and pods.
type Readiness struct {
	Deployment string `json:"deployment"`
	// Exists is false when the Deployment is absent (no canary deployed).
	Exists bool `json:"exists"`
	// Desired, Ready, Updated and Available are the Deployment's replica counts.
	Desired   int32 `json:"desired"`
	Ready     int32 `json:"ready"`
	Updated   int32 `json:"updated"`
	Available int32 `json:"available"`
	// Pods are the version's pods that are not being deleted.
	Pods []PodReadiness `json:"pods"`
}

// PodReadiness is one pod's Ready condition.
type PodReadiness struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
	// Reason says why a pod is not ready (CrashLoopBackOff, ImagePullBackOff, a failing
	// readiness probe...).
	Reason string `json:"reason,omitempty"`
}

// ReadyPods counts the pods whose Ready condition is true.
func (rd Readiness) ReadyPods() int {
	n := 0
	for _, p := range rd.Pods {
		if p.Ready {
			n++
		}
	}
	return n
}

// AllReady reports whether the version is fully up: the Deployment exists, wants at least one
// replica, has them all ready, and every pod of the version is Ready.
func (rd Readiness) AllReady() bool {
	return rd.Exists && rd.Desired > 0 && rd.Ready >= rd.Desired && len(rd.Pods) > 0 && rd.ReadyPods() == len(rd.Pods)
}

// Summary is e.g. "2/3 pods ready (order-service-v2-abc: CrashLoopBackOff)".
func (rd Readiness) Summary() string {
	if !rd.Exists {
		return "Deployment " + rd.Deployment + " not found"
	}
	s := fmt.Sprintf("%d/%d pods ready", rd.ReadyPods(), len(rd.Pods))
	if rd.Desired != int32(len(rd.Pods)) {
		s += fmt.Sprintf(", %d desired", rd.Desired)
	}
	for _, p := range rd.Pods {
		if !p.Ready {
			s += fmt.Sprintf(" (%s: %s)", p.Name, p.Reason)
			break
		}
	}
	return s
}

// Readiness reads the Deployment <svc>-service-<version> and the pods labelled
// app=<svc>-service,version=<version>.
func (r *Reader) Readiness(ctx context.Context, service, version string) (Readiness, error) {
	app := AppName(service)
	out := Readiness{Deployment: app + "-" + version}
	d, err := r.kube.AppsV1().Deployments(r.namespace).Get(ctx, out.Deployment, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return out, fmt.Errorf("read Deployment %s/%s: %w", r.namespace, out.Deployment, err)
	default:
		out.Exists = true
		out.Desired = desired(d)
		out.Ready, out.Updated, out.Available = d.Status.ReadyReplicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas
	}
	sel := labels.SelectorFromSet(labels.Set{"app": app, "version": version})
	pods, err := r.kube.CoreV1().Pods(r.namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return out, fmt.Errorf("list pods %s in %s: %w", sel, r.namespace, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		out.Pods = append(out.Pods, podReadiness(p))
	}
	sort.Slice(out.Pods, func(i, j int) bool { return out.Pods[i].Name < out.Pods[j].Name })
	return out, nil
}

// CanaryReady reports how many canary (v2) pods are ready out of how many the canary needs:
// the larger of the Deployment's desired replicas and its existing pods.
func (r *Reader) CanaryReady(ctx context.Context, service string) (ready, desired int, err error) {
	rd, err := r.Readiness(ctx, service, CanarySubset)
	if err != nil {
		return 0, 0, err
	}
	desired = len(rd.Pods)
	if int(rd.Desired) > desired {
		desired = int(rd.Desired)
	}
	return rd.ReadyPods(), desired, nil
}

func desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func podReadiness(p *corev1.Pod) PodReadiness {
	pr := PodReadiness{Name: p.Name}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			pr.Ready = c.Status == corev1.ConditionTrue
			if !pr.Ready {
				pr.Reason = c.Reason
			}
		}
	}
	if pr.Ready {
		return pr
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			pr.Reason = cs.State.Waiting.Reason
			return pr
		case cs.State.Terminated != nil && cs.State.Terminated.Reason != "":
			pr.Reason = cs.State.Terminated.Reason
			return pr
		case !cs.Ready && cs.State.Running != nil:
			pr.Reason = "readiness probe failing"
		}
	}
	if pr.Reason == "" {
		pr.Reason = string(p.Status.Phase)
	}
	return pr
}
