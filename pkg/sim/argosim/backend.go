package argosim

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"

	settingspkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/settings"
	versionpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/version"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// The simulator as the API's Backend: Applications are the objects in the simulated cluster,
// refreshes and operations go to the controller, revisions to the git repository.

// SimulatedVersion is the version the simulated server reports.
const SimulatedVersion = "v3.6.1+simulated"

// apiConfig is how the simulator presents itself on the wire: it says "simulated".
func (s *Server) apiConfig() APIConfig {
	return APIConfig{
		Token: s.cfg.Token,
		Version: &versionpkg.VersionMessage{
			Version:        SimulatedVersion,
			GoVersion:      runtime.Version(),
			Compiler:       runtime.Compiler,
			Platform:       "simulated/" + runtime.GOOS + "-" + runtime.GOARCH,
			HelmVersion:    "v4 (in-process, simulated)",
			ExtraBuildInfo: "simulated Argo CD of opsctl sandbox: renders the local GitOps repository with Helm and applies it to an in-memory cluster",
		},
		Settings: func() *settingspkg.Settings {
			return &settingspkg.Settings{
				URL:                 "grpc://" + s.addr + " (simulated)",
				AppLabelKey:         "app.kubernetes.io/instance",
				TrackingMethod:      "annotation",
				ControllerNamespace: s.appNamespace,
				UiBannerContent:     "Simulated Argo CD (opsctl sandbox): nothing here reaches a real cluster",
				UiBannerPermanent:   true,
				InstallationID:      "opsctl-sandbox-simulated",
				UserLoginsDisabled:  true,
			}
		},
	}
}

// backend is the Server seen as the API's Backend; its methods are not the Server's own API.
type backend Server

// Applications returns the Applications stored in the cluster.
func (b *backend) Applications(context.Context) ([]*v1alpha1.Application, error) {
	return (*Server)(b).listApps()
}

// Application returns one Application stored in the cluster.
func (b *backend) Application(_ context.Context, name string) (*v1alpha1.Application, error) {
	return (*Server)(b).getApp(name)
}

// Refresh has the controller compare the Application with git again, and waits for it.
func (b *backend) Refresh(ctx context.Context, name string, hard bool) error {
	return (*Server)(b).refresh(ctx, name, hard)
}

// Operate sets the operation on the Application unless one runs, and wakes the controller.
func (b *backend) Operate(ctx context.Context, req OperationRequest) (*v1alpha1.Application, error) {
	s := (*Server)(b)
	out, err := s.updateApp(ctx, req.App, func(app *v1alpha1.Application) (bool, error) {
		if app.Operation != nil || (app.Status.OperationState != nil && !app.Status.OperationState.Phase.Completed()) {
			return false, ErrOperationInProgress
		}
		op := req.Operation
		app.Operation = &op
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.enqueue(req.App, false, false)
	return out, nil
}

// ResolveRevision resolves a revision with git.
func (b *backend) ResolveRevision(ctx context.Context, revision string) (string, error) {
	commit, err := b.git.resolve(ctx, revision)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnknownRevision, err)
	}
	return commit, nil
}

// RevisionMetadata reads a commit of the repository.
func (b *backend) RevisionMetadata(ctx context.Context, revision string) (*v1alpha1.RevisionMetadata, error) {
	commit, err := b.ResolveRevision(ctx, revision)
	if err != nil {
		return nil, err
	}
	ci, err := b.git.info(ctx, commit)
	if err != nil {
		return nil, err
	}
	date := metav1.NewTime(ci.Date)
	return &v1alpha1.RevisionMetadata{Author: ci.Author, Date: &date, Message: ci.Message, Tags: ci.Tags}, nil
}

// publish tells the API's watchers of a change to an Application object in the cluster.
func (s *Server) publish(ev kubesim.Event) {
	if s.api == nil || s.api.Watchers() == 0 {
		return
	}
	if ev.Kind.Group != "argoproj.io" || ev.Kind.Kind != "Application" || ev.Object.GetNamespace() != s.appNamespace {
		return
	}
	app, err := toApplication(ev.Object)
	if err != nil {
		s.log.Error("an Application in the cluster cannot be decoded; watchers do not see this change", "app", ev.Object.GetName(), "err", err)
		return
	}
	s.api.Publish(watch.EventType(ev.Type), app)
}

// ResourceTree returns the Application's live objects and, under each Deployment, its Pods.
func (b *backend) ResourceTree(_ context.Context, app *v1alpha1.Application) (*v1alpha1.ApplicationTree, error) {
	s := (*Server)(b)
	tree := &v1alpha1.ApplicationTree{}
	live := s.liveObjects(app.Name)
	for _, id := range sortedKeys(live) {
		o := live[id]
		k, ok := s.kube.KindFor(o.GetAPIVersion(), o.GetKind())
		if !ok {
			continue
		}
		tree.Nodes = append(tree.Nodes, node(k, o, nil))
		if k.Group == "apps" && k.Kind == "Deployment" {
			parent := v1alpha1.ResourceRef{Group: k.Group, Version: k.Version, Kind: k.Kind, Namespace: o.GetNamespace(), Name: o.GetName(), UID: string(o.GetUID())}
			for _, p := range s.kube.List(gvrPod, o.GetNamespace(), nil) {
				if ownedBy(p, o) {
					pk, _ := s.kube.KindFor("v1", "Pod")
					tree.Nodes = append(tree.Nodes, node(pk, p, []v1alpha1.ResourceRef{parent}))
				}
			}
		}
	}
	return tree, nil
}

func node(k kubesim.Kind, o *unstructured.Unstructured, parents []v1alpha1.ResourceRef) v1alpha1.ResourceNode {
	created := o.GetCreationTimestamp()
	n := v1alpha1.ResourceNode{
		ResourceRef:     v1alpha1.ResourceRef{Group: k.Group, Version: k.Version, Kind: k.Kind, Namespace: o.GetNamespace(), Name: o.GetName(), UID: string(o.GetUID())},
		ParentRefs:      parents,
		ResourceVersion: o.GetResourceVersion(),
		Health:          resourceHealth(o),
		Images:          podImages(o),
	}
	if !created.IsZero() {
		n.CreatedAt = &created
	}
	if k.Kind == "Pod" {
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "containers")
		for _, c := range containers {
			if m, ok := c.(map[string]any); ok {
				if img, ok := m["image"].(string); ok {
					n.Images = append(n.Images, img)
				}
			}
		}
		phase, _, _ := unstructured.NestedString(o.Object, "status", "phase")
		ready := 0
		if podReady(o) {
			ready = len(containers)
		}
		n.Info = []v1alpha1.InfoItem{
			{Name: "Status Reason", Value: phase},
			{Name: "Node", Value: "sandbox-node (simulated)"},
			{Name: "Containers", Value: fmt.Sprintf("%d/%d", ready, len(containers))},
		}
	}
	return n
}

// ManagedResources returns, per managed object, its rendered and live state and whether they
// differ, for the target revision.
func (b *backend) ManagedResources(ctx context.Context, app *v1alpha1.Application) ([]*v1alpha1.ResourceDiff, error) {
	s := (*Server)(b)
	cmp := s.compare(ctx, app)
	if cmp.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrComparison, cmp.err)
	}
	var out []*v1alpha1.ResourceDiff
	wanted := map[string]bool{}
	for _, d := range cmp.manifests.objects {
		id := d.obj.GetAnnotations()[annotationTrackingID]
		wanted[id] = true
		l := cmp.live[id]
		rd := &v1alpha1.ResourceDiff{Group: d.kind.Group, Kind: d.kind.Kind, Namespace: d.obj.GetNamespace(), Name: d.obj.GetName(),
			TargetState: jsonOf(d.obj), PredictedLiveState: jsonOf(d.obj), Modified: !inSync(d, l, app.Spec.IgnoreDifferences)}
		if l != nil {
			rd.LiveState, rd.ResourceVersion = jsonOf(l), l.GetResourceVersion()
			// As argocd-server: the normalised live state (without status) and the state a sync
			// would leave — the live object with git's fields over it — so a diff shows only
			// what git sets differently, not what the API server adds.
			rd.NormalizedLiveState, rd.PredictedLiveState = predicted(d, l)
		}
		out = append(out, rd)
	}
	for _, id := range sortedKeys(cmp.live) {
		l := cmp.live[id]
		if wanted[id] {
			continue
		}
		k, _ := s.kube.KindFor(l.GetAPIVersion(), l.GetKind())
		out = append(out, &v1alpha1.ResourceDiff{Group: k.Group, Kind: k.Kind, Namespace: l.GetNamespace(), Name: l.GetName(),
			LiveState: jsonOf(l), NormalizedLiveState: jsonOf(l), ResourceVersion: l.GetResourceVersion(), Modified: true})
	}
	return out, nil
}

func jsonOf(o *unstructured.Unstructured) string {
	b, err := json.Marshal(o.Object)
	if err != nil {
		return ""
	}
	return string(b)
}
