package argosim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"

	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	sessionpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/session"
	settingspkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/settings"
	versionpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/version"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// argocd-server's gRPC API, as argo-cd v3's generated service interfaces.
//
// Application service: List, Get (with refresh), Sync (prune, dryRun, revision), Watch,
// ResourceTree, ManagedResources, RevisionMetadata and Rollback. Version (what the API client calls
// when it connects), Settings.Get and Session.GetUserInfo answer too, and say "simulated".
// Everything else answers Unimplemented.
//
// Authentication: every call except Version, Settings.Get and Session.GetUserInfo must carry
// the configured token, in the "token" metadata the argo-cd API client sends, as
// "authorization: Bearer <token>", or in the argocd.token cookie (grpc-gateway), with
// argocd-server's own messages when it does not.

// SimulatedVersion is the version the simulated server reports.
const SimulatedVersion = "v3.6.1+simulated"

// sandboxUser is the user every valid token belongs to.
const sandboxUser = "admin"

func (s *Server) newGRPCServer() *grpc.Server {
	gs := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := s.authorize(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	)
	applicationpkg.RegisterApplicationServiceServer(gs, &appAPI{s: s})
	versionpkg.RegisterVersionServiceServer(gs, &versionAPI{})
	settingspkg.RegisterSettingsServiceServer(gs, &settingsAPI{s: s})
	sessionpkg.RegisterSessionServiceServer(gs, &sessionAPI{s: s})
	return gs
}

// publicMethods answer without a token, as on argocd-server.
var publicMethods = []string{
	"/version.VersionService/Version",
	"/cluster.SettingsService/Get",
	"/session.SessionService/GetUserInfo",
}

func (s *Server) authorize(ctx context.Context, method string) error {
	if slices.Contains(publicMethods, method) {
		return nil
	}
	return s.checkToken(ctx)
}

func (s *Server) checkToken(ctx context.Context) error {
	tok := tokenOf(ctx)
	if tok == "" {
		return status.Error(codes.Unauthenticated, "no session information")
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) != 1 {
		return status.Error(codes.Unauthenticated, "invalid session: token signature is invalid")
	}
	return nil
}

// tokenOf finds the token where argocd-server looks for it.
func tokenOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("token"); len(v) > 0 && v[0] != "" {
		return v[0]
	}
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok && t != "" {
			return strings.TrimSpace(t)
		}
	}
	for _, key := range []string{"grpcgateway-cookie", "cookie"} {
		for _, v := range md.Get(key) {
			header := http.Header{"Cookie": {v}}
			if c, err := (&http.Request{Header: header}).Cookie("argocd.token"); err == nil && c.Value != "" {
				return c.Value
			}
		}
	}
	return ""
}

type versionAPI struct {
	versionpkg.UnimplementedVersionServiceServer
}

// Version says which Argo CD this is: a simulation.
func (versionAPI) Version(context.Context, *emptypb.Empty) (*versionpkg.VersionMessage, error) {
	return &versionpkg.VersionMessage{
		Version:        SimulatedVersion,
		GoVersion:      runtime.Version(),
		Compiler:       runtime.Compiler,
		Platform:       "simulated/" + runtime.GOOS + "-" + runtime.GOARCH,
		HelmVersion:    "v4 (in-process, simulated)",
		ExtraBuildInfo: "simulated Argo CD of opsctl sandbox: renders the local GitOps repository with Helm and applies it to an in-memory cluster",
	}, nil
}

type settingsAPI struct {
	settingspkg.UnimplementedSettingsServiceServer
	s *Server
}

// Get returns the settings a client reads before it logs in.
func (a *settingsAPI) Get(context.Context, *settingspkg.SettingsQuery) (*settingspkg.Settings, error) {
	return &settingspkg.Settings{
		URL:                 "grpc://" + a.s.addr + " (simulated)",
		AppLabelKey:         "app.kubernetes.io/instance",
		TrackingMethod:      "annotation",
		ControllerNamespace: a.s.appNamespace,
		UiBannerContent:     "Simulated Argo CD (opsctl sandbox): nothing here reaches a real cluster",
		UiBannerPermanent:   true,
		InstallationID:      "opsctl-sandbox-simulated",
		UserLoginsDisabled:  true,
	}, nil
}

type sessionAPI struct {
	sessionpkg.UnimplementedSessionServiceServer
	s *Server
}

// GetUserInfo reports whether the caller's token is valid, like argocd-server.
func (a *sessionAPI) GetUserInfo(ctx context.Context, _ *sessionpkg.GetUserInfoRequest) (*sessionpkg.GetUserInfoResponse, error) {
	if a.s.checkToken(ctx) != nil {
		return &sessionpkg.GetUserInfoResponse{LoggedIn: false}, nil
	}
	return &sessionpkg.GetUserInfoResponse{LoggedIn: true, Username: sandboxUser, Iss: "argocd (simulated)"}, nil
}

type appAPI struct {
	applicationpkg.UnimplementedApplicationServiceServer
	s *Server
}

func projectsOf(q *applicationpkg.ApplicationQuery) []string {
	return append(append([]string(nil), q.Projects...), q.Project...)
}

func inProjects(a *v1alpha1.Application, projects []string) bool {
	return len(projects) == 0 || slices.Contains(projects, a.Spec.GetProject())
}

// lookupIn finds an Application as argocd-server does for a caller who may see every project
// (namespace, when the query names one, is the Applications' namespace): unknown with a
// project named is NotFound; without one it is PermissionDenied, so the answer does not reveal
// whether an application exists.
func (a *appAPI) lookupIn(namespace, name, project string) (*v1alpha1.Application, error) {
	app, err := a.s.getApp(name)
	if err == nil && namespace != "" && namespace != app.Namespace {
		err = errAppNotFound
	}
	if err == nil && (project == "" || app.Spec.GetProject() == project) {
		return app, nil
	}
	if err != nil && !errors.Is(err, errAppNotFound) {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if project == "" {
		return nil, status.Error(codes.PermissionDenied, "permission denied")
	}
	nf := apierrors.NewNotFound(gvrApplication.GroupResource(), name)
	return nil, status.Error(codes.NotFound, nf.Error())
}

func oneProject(projects []string) string {
	if len(projects) == 1 {
		return projects[0]
	}
	return ""
}

// matcher returns the filter of a List or Watch query.
func matcher(q *applicationpkg.ApplicationQuery) (func(*v1alpha1.Application) bool, error) {
	sel := labels.Everything()
	if q.Selector != nil && *q.Selector != "" {
		var err error
		if sel, err = labels.Parse(*q.Selector); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "selector %q: %v", *q.Selector, err)
		}
	}
	projects := projectsOf(q)
	return func(a *v1alpha1.Application) bool {
		if q.GetAppNamespace() != "" && a.Namespace != q.GetAppNamespace() {
			return false
		}
		if q.GetName() != "" && a.Name != q.GetName() {
			return false
		}
		if len(q.Names) > 0 && !slices.Contains(q.Names, a.Name) && !slices.Contains(q.Names, a.Namespace+"/"+a.Name) {
			return false
		}
		if q.GetRepo() != "" && a.Spec.GetSource().RepoURL != q.GetRepo() {
			return false
		}
		return inProjects(a, projects) && sel.Matches(labels.Set(a.Labels))
	}, nil
}

// List returns the Applications matching the query, sorted by name.
func (a *appAPI) List(_ context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.ApplicationList, error) {
	match, err := matcher(q)
	if err != nil {
		return nil, err
	}
	apps, err := a.s.listApps()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	out := &v1alpha1.ApplicationList{}
	for _, app := range apps {
		if match(app) {
			out.Items = append(out.Items, *app)
		}
	}
	return out, nil
}

// Get returns one Application; with refresh set ("normal" or "hard") it first waits for the
// controller to compare it with git again, as argocd-server does.
func (a *appAPI) Get(ctx context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.Application, error) {
	name, project, ns := q.GetName(), oneProject(projectsOf(q)), q.GetAppNamespace()
	if _, err := a.lookupIn(ns, name, project); err != nil {
		return nil, err
	}
	if r := q.GetRefresh(); r != "" {
		if r != string(v1alpha1.RefreshTypeNormal) && r != string(v1alpha1.RefreshTypeHard) {
			return nil, status.Errorf(codes.InvalidArgument, "refresh %q: want normal or hard", r)
		}
		if err := a.s.refresh(ctx, name, r == string(v1alpha1.RefreshTypeHard)); err != nil {
			return nil, statusOf(err)
		}
	}
	return a.lookupIn(ns, name, project)
}

func statusOf(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, "the simulated Argo CD is shutting down")
	}
	return status.Error(codes.Internal, err.Error())
}

// Sync requests a sync operation, which the controller runs; it returns the Application with
// the operation set, as argocd-server does, or FailedPrecondition while another runs.
func (a *appAPI) Sync(ctx context.Context, req *applicationpkg.ApplicationSyncRequest) (*v1alpha1.Application, error) {
	name := req.GetName()
	app, err := a.lookupIn(req.GetAppNamespace(), name, req.GetProject())
	if err != nil {
		return nil, err
	}
	if len(req.Resources) > 0 || len(req.Manifests) > 0 || len(req.Revisions) > 0 || len(req.SourcePositions) > 0 {
		return nil, status.Error(codes.InvalidArgument, "partial syncs, local manifests and multi-source revisions are not supported by the simulated Argo CD")
	}
	rev := req.GetRevision()
	target := app.Spec.GetSource().TargetRevision
	if rev != "" && rev != target && app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.IsAutomatedSyncEnabled() {
		commit, err := a.s.git.resolve(ctx, rev)
		targetCommit, terr := a.s.git.resolve(ctx, revisionOrHead(target))
		if err != nil || terr != nil || commit != targetCommit {
			return nil, status.Errorf(codes.FailedPrecondition, "Cannot sync to %s: auto-sync currently set to %s", rev, target)
		}
	}
	op := v1alpha1.Operation{
		Sync:        &v1alpha1.SyncOperation{Revision: rev, Prune: req.GetPrune(), DryRun: req.GetDryRun()},
		InitiatedBy: v1alpha1.OperationInitiator{Username: sandboxUser},
	}
	if req.SyncOptions != nil {
		op.Sync.SyncOptions = req.SyncOptions.Items
	}
	if req.RetryStrategy != nil {
		op.Retry = *req.RetryStrategy
	}
	return a.start(ctx, name, op)
}

var errInProgress = errors.New("another operation is already in progress")

// start sets op on the Application unless an operation runs, and wakes the controller.
func (a *appAPI) start(ctx context.Context, name string, op v1alpha1.Operation) (*v1alpha1.Application, error) {
	out, err := a.s.updateApp(ctx, name, func(app *v1alpha1.Application) (bool, error) {
		if app.Operation != nil || (app.Status.OperationState != nil && !app.Status.OperationState.Phase.Completed()) {
			return false, errInProgress
		}
		app.Operation = &op
		return true, nil
	})
	if errors.Is(err, errInProgress) {
		return nil, status.Error(codes.FailedPrecondition, "another operation is already in progress")
	}
	if err != nil {
		return nil, statusOf(err)
	}
	a.s.enqueue(name, false, false)
	return out, nil
}

// Rollback syncs the revision of a history entry, as argocd-server does: refused while
// auto-sync is on, for an unknown entry, and while another operation runs.
func (a *appAPI) Rollback(ctx context.Context, req *applicationpkg.ApplicationRollbackRequest) (*v1alpha1.Application, error) {
	name := req.GetName()
	app, err := a.lookupIn(req.GetAppNamespace(), name, req.GetProject())
	if err != nil {
		return nil, err
	}
	if app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.IsAutomatedSyncEnabled() {
		return nil, status.Error(codes.FailedPrecondition, "rollback cannot be initiated when auto-sync is enabled")
	}
	var h *v1alpha1.RevisionHistory
	for i := range app.Status.History {
		if app.Status.History[i].ID == req.GetId() {
			h = &app.Status.History[i]
		}
	}
	if h == nil {
		return nil, status.Errorf(codes.InvalidArgument, "application %s does not have deployment with id %v", name, req.GetId())
	}
	src := h.Source
	op := v1alpha1.Operation{
		Sync:        &v1alpha1.SyncOperation{Revision: h.Revision, Source: &src, Prune: req.GetPrune(), DryRun: req.GetDryRun()},
		InitiatedBy: v1alpha1.OperationInitiator{Username: sandboxUser},
	}
	return a.start(ctx, name, op)
}

// Watch streams an ADDED event per matching Application, then every change, until the client
// goes away or the server stops.
func (a *appAPI) Watch(q *applicationpkg.ApplicationQuery, ws applicationpkg.ApplicationService_WatchServer) error {
	match, err := matcher(q)
	if err != nil {
		return err
	}
	// Subscribe before listing so nothing in between is missed (a duplicate is harmless).
	events, cancel := a.s.kube.Watch()
	defer cancel()
	apps, err := a.s.listApps()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	for _, app := range apps {
		if match(app) {
			if err := ws.Send(&v1alpha1.ApplicationWatchEvent{Type: "ADDED", Application: *app}); err != nil {
				return err
			}
		}
	}
	for {
		select {
		case <-ws.Context().Done():
			return nil
		case <-a.s.done:
			return nil
		case ev, ok := <-events:
			if !ok {
				// The store dropped this watcher: end the stream; the client re-opens it.
				return nil
			}
			if ev.Kind.Group != "argoproj.io" || ev.Kind.Kind != "Application" || ev.Object.GetNamespace() != a.s.appNamespace {
				continue
			}
			app, err := toApplication(ev.Object)
			if err != nil || !match(app) {
				continue
			}
			if err := ws.Send(&v1alpha1.ApplicationWatchEvent{Type: watch.EventType(ev.Type), Application: *app}); err != nil {
				return err
			}
		}
	}
}

func resourcesQueryApp(a *appAPI, q *applicationpkg.ResourcesQuery) (*v1alpha1.Application, error) {
	return a.lookupIn(q.GetAppNamespace(), q.GetApplicationName(), q.GetProject())
}

// ResourceTree returns the Application's live objects and, under each Deployment, its Pods.
func (a *appAPI) ResourceTree(_ context.Context, q *applicationpkg.ResourcesQuery) (*v1alpha1.ApplicationTree, error) {
	app, err := resourcesQueryApp(a, q)
	if err != nil {
		return nil, err
	}
	tree := &v1alpha1.ApplicationTree{}
	live := a.s.liveObjects(app.Name)
	for _, id := range sortedKeys(live) {
		o := live[id]
		k, ok := a.s.kube.KindFor(o.GetAPIVersion(), o.GetKind())
		if !ok {
			continue
		}
		tree.Nodes = append(tree.Nodes, node(k, o, nil))
		if k.Group == "apps" && k.Kind == "Deployment" {
			parent := v1alpha1.ResourceRef{Group: k.Group, Version: k.Version, Kind: k.Kind, Namespace: o.GetNamespace(), Name: o.GetName(), UID: string(o.GetUID())}
			for _, p := range a.s.kube.List(gvrPod, o.GetNamespace(), nil) {
				if ownedBy(p, o) {
					pk, _ := a.s.kube.KindFor("v1", "Pod")
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
func (a *appAPI) ManagedResources(ctx context.Context, q *applicationpkg.ResourcesQuery) (*applicationpkg.ManagedResourcesResponse, error) {
	app, err := resourcesQueryApp(a, q)
	if err != nil {
		return nil, err
	}
	cmp := a.s.compare(ctx, app)
	if cmp.err != nil {
		return nil, status.Errorf(codes.Unknown, "ComparisonError: %v", cmp.err)
	}
	keep := func(group, kind, namespace, name string) bool {
		return (q.Group == nil || *q.Group == group) && (q.Kind == nil || *q.Kind == kind) &&
			(q.Namespace == nil || *q.Namespace == namespace) && (q.Name == nil || *q.Name == name)
	}
	out := &applicationpkg.ManagedResourcesResponse{}
	wanted := map[string]bool{}
	for _, d := range cmp.manifests.objects {
		id := d.obj.GetAnnotations()[annotationTrackingID]
		wanted[id] = true
		if !keep(d.kind.Group, d.kind.Kind, d.obj.GetNamespace(), d.obj.GetName()) {
			continue
		}
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
		out.Items = append(out.Items, rd)
	}
	for _, id := range sortedKeys(cmp.live) {
		l := cmp.live[id]
		k, _ := a.s.kube.KindFor(l.GetAPIVersion(), l.GetKind())
		if wanted[id] || !keep(k.Group, k.Kind, l.GetNamespace(), l.GetName()) {
			continue
		}
		out.Items = append(out.Items, &v1alpha1.ResourceDiff{Group: k.Group, Kind: k.Kind, Namespace: l.GetNamespace(), Name: l.GetName(),
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

// RevisionMetadata returns the author, date, message and tags of a commit of the repository.
func (a *appAPI) RevisionMetadata(ctx context.Context, q *applicationpkg.RevisionMetadataQuery) (*v1alpha1.RevisionMetadata, error) {
	if _, err := a.lookupIn(q.GetAppNamespace(), q.GetName(), q.GetProject()); err != nil {
		return nil, err
	}
	commit, err := a.s.git.resolve(ctx, q.GetRevision())
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	ci, err := a.s.git.info(ctx, commit)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	date := metav1.NewTime(ci.Date)
	return &v1alpha1.RevisionMetadata{Author: ci.Author, Date: &date, Message: ci.Message, Tags: ci.Tags}, nil
}
