package argosim

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
)

// argocd-server's gRPC API, as argo-cd v3's generated service interfaces, over a Backend. This
// is the one implementation of that wire in the repository: the simulator serves it over its
// controller and cluster, and pkg/argocd/argocdtest over a store of fixtures, so what opsctl's
// tests exercise and what the sandbox answers cannot drift apart.
//
// Application service: List, Get (with refresh), Sync (prune, dryRun, revision), Watch,
// ResourceTree, ManagedResources, RevisionMetadata and Rollback. Version (what the API client
// calls when it connects), Settings.Get and Session.GetUserInfo answer too. Everything else
// answers Unimplemented.
//
// Authentication: every call except Version, Settings.Get and Session.GetUserInfo must carry
// the configured token, in the "token" metadata the argo-cd API client sends, as
// "authorization: Bearer <token>", or in the argocd.token cookie (grpc-gateway), with
// argocd-server's own messages when it does not.

// The Backend's errors that argocd-server answers with their own codes; anything else is
// Internal.
var (
	// ErrAppNotFound: the Application does not exist (NotFound or PermissionDenied, as
	// argocd-server's RBAC-aware lookup answers).
	ErrAppNotFound = errors.New("application not found")
	// ErrOperationInProgress: a sync or rollback was refused because another runs
	// (FailedPrecondition).
	ErrOperationInProgress = errors.New("another operation is already in progress")
	// ErrUnknownRevision: git does not know the revision (NotFound).
	ErrUnknownRevision = errors.New("unknown revision")
	// ErrComparison: the Application could not be compared with git (Unknown, as
	// argocd-server's ComparisonError).
	ErrComparison = errors.New("ComparisonError")
	// ErrClosed is returned by calls made after Close (Unavailable).
	ErrClosed = errors.New("argosim: closed")
)

// Backend is what the API serves: the Applications, and what argocd-server asks the
// application controller and the repo server. The API owns everything on the wire
// (authentication, argocd-server's codes and messages, the watch fan-out); a Backend only
// answers for its Applications and tells the API of changes through Publish.
type Backend interface {
	// Applications returns every Application, sorted by name; the caller owns the copies.
	Applications(ctx context.Context) ([]*v1alpha1.Application, error)
	// Application returns one Application (the caller's copy), or an error wrapping
	// ErrAppNotFound.
	Application(ctx context.Context, name string) (*v1alpha1.Application, error)
	// Refresh returns once the controller has compared the Application with git again.
	Refresh(ctx context.Context, name string, hard bool) error
	// Operate sets an accepted sync or rollback as the Application's operation, unless one is
	// requested or running (ErrOperationInProgress), and has the controller run it. It returns
	// the Application with the operation set.
	Operate(ctx context.Context, req OperationRequest) (*v1alpha1.Application, error)
	// ResolveRevision returns the commit a revision names, or an error wrapping
	// ErrUnknownRevision.
	ResolveRevision(ctx context.Context, revision string) (string, error)
	// RevisionMetadata returns a commit's author, date, message and tags, or an error wrapping
	// ErrUnknownRevision.
	RevisionMetadata(ctx context.Context, revision string) (*v1alpha1.RevisionMetadata, error)
	// ResourceTree returns the Application's live objects.
	ResourceTree(ctx context.Context, app *v1alpha1.Application) (*v1alpha1.ApplicationTree, error)
	// ManagedResources returns, per managed object, its target and live state and whether they
	// differ; the API filters them by the query.
	ManagedResources(ctx context.Context, app *v1alpha1.Application) ([]*v1alpha1.ResourceDiff, error)
}

// OperationRequest is a sync or rollback the API accepted, for the Backend to start.
type OperationRequest struct {
	// App and Project name the Application (Project as the request gave it, "" for none).
	App, Project string
	// RollbackID is the history entry of a rollback; 0 for a sync.
	RollbackID int64
	// Operation is what argocd-server would set on the Application.
	Operation v1alpha1.Operation
}

// APIConfig configures an API.
type APIConfig struct {
	// Token is the only token accepted. Required.
	Token string
	// ExpiredToken, when set, is a token rejected as expired, with argocd-server's message.
	ExpiredToken string
	// Version is the version answer; nil answers Unimplemented.
	Version *versionpkg.VersionMessage
	// Settings returns the settings a client reads before it logs in; nil answers
	// Unimplemented.
	Settings func() *settingspkg.Settings
}

// User is the user every valid token belongs to, and who initiates the operations the API
// starts.
const User = "admin"

// watchBuffer is how many events a watcher may fall behind before it is dropped.
const watchBuffer = 256

// API serves argocd-server's gRPC API over a Backend.
type API struct {
	b   Backend
	cfg APIConfig
	gs  *grpc.Server

	mu      sync.Mutex
	subs    map[chan *v1alpha1.ApplicationWatchEvent]struct{}
	done    chan struct{}
	stopped bool
}

// NewAPI returns an API over b; Serve serves it.
func NewAPI(b Backend, cfg APIConfig) *API {
	a := &API{b: b, cfg: cfg, subs: map[chan *v1alpha1.ApplicationWatchEvent]struct{}{}, done: make(chan struct{})}
	a.gs = grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := a.authorize(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := a.authorize(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	)
	applicationpkg.RegisterApplicationServiceServer(a.gs, &appService{api: a, b: b})
	versionpkg.RegisterVersionServiceServer(a.gs, &versionService{cfg: cfg.Version})
	settingspkg.RegisterSettingsServiceServer(a.gs, &settingsService{settings: cfg.Settings})
	sessionpkg.RegisterSessionServiceServer(a.gs, &sessionService{api: a})
	return a
}

// Serve serves on ln until Stop; it returns nil once stopped.
func (a *API) Serve(ln net.Listener) error {
	if err := a.gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Stop ends every stream and stops serving; it is safe to call twice.
func (a *API) Stop() {
	a.mu.Lock()
	if !a.stopped {
		a.stopped = true
		close(a.done)
	}
	a.mu.Unlock()
	a.gs.Stop()
}

// Publish tells the watchers an Application changed (typ is ADDED, MODIFIED or DELETED). A
// watcher too far behind is dropped, which ends its stream so that the client opens it again
// and starts from the current state, rather than losing events unseen. Backends call Publish
// in the order the changes happened.
func (a *API) Publish(typ watch.EventType, app *v1alpha1.Application) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.subs) == 0 {
		return
	}
	// One copy for every watcher: the streams only read it.
	ev := &v1alpha1.ApplicationWatchEvent{Type: typ, Application: *app.DeepCopy()}
	for ch := range a.subs {
		select {
		case ch <- ev:
		default:
			delete(a.subs, ch)
			close(ch)
		}
	}
}

// Watchers is the number of open watch streams.
func (a *API) Watchers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.subs)
}

func (a *API) subscribe() chan *v1alpha1.ApplicationWatchEvent {
	ch := make(chan *v1alpha1.ApplicationWatchEvent, watchBuffer)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.subs[ch] = struct{}{}
	return ch
}

func (a *API) unsubscribe(ch chan *v1alpha1.ApplicationWatchEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.subs[ch]; ok {
		delete(a.subs, ch)
		close(ch)
	}
}

// publicMethods answer without a token, as on argocd-server.
var publicMethods = []string{
	"/version.VersionService/Version",
	"/cluster.SettingsService/Get",
	"/session.SessionService/GetUserInfo",
}

func (a *API) authorize(ctx context.Context, method string) error {
	if slices.Contains(publicMethods, method) {
		return nil
	}
	return a.checkToken(ctx)
}

func (a *API) checkToken(ctx context.Context) error {
	tok := tokenOf(ctx)
	switch {
	case tok == "":
		return status.Error(codes.Unauthenticated, "no session information")
	case a.cfg.ExpiredToken != "" && tok == a.cfg.ExpiredToken:
		return status.Error(codes.Unauthenticated, "invalid session: token has invalid claims: token is expired")
	case subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.Token)) != 1:
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

// statusOf maps a Backend's error to argocd-server's code for it.
func statusOf(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrClosed):
		return status.Error(codes.Unavailable, "argocd-server is shutting down")
	case errors.Is(err, ErrOperationInProgress):
		return status.Error(codes.FailedPrecondition, ErrOperationInProgress.Error())
	case errors.Is(err, ErrUnknownRevision):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrComparison):
		return status.Error(codes.Unknown, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

type versionService struct {
	versionpkg.UnimplementedVersionServiceServer
	cfg *versionpkg.VersionMessage
}

// Version answers the API client's connection probe.
func (v *versionService) Version(context.Context, *emptypb.Empty) (*versionpkg.VersionMessage, error) {
	if v.cfg == nil {
		return nil, status.Error(codes.Unimplemented, "version is not served here")
	}
	// Shared between calls: gRPC only reads it to marshal the answer.
	return v.cfg, nil
}

type settingsService struct {
	settingspkg.UnimplementedSettingsServiceServer
	settings func() *settingspkg.Settings
}

// Get returns the settings a client reads before it logs in.
func (s *settingsService) Get(context.Context, *settingspkg.SettingsQuery) (*settingspkg.Settings, error) {
	if s.settings == nil {
		return nil, status.Error(codes.Unimplemented, "settings are not served here")
	}
	return s.settings(), nil
}

type sessionService struct {
	sessionpkg.UnimplementedSessionServiceServer
	api *API
}

// GetUserInfo reports whether the caller's token is valid, like argocd-server.
func (s *sessionService) GetUserInfo(ctx context.Context, _ *sessionpkg.GetUserInfoRequest) (*sessionpkg.GetUserInfoResponse, error) {
	if s.api.checkToken(ctx) != nil {
		return &sessionpkg.GetUserInfoResponse{LoggedIn: false}, nil
	}
	return &sessionpkg.GetUserInfoResponse{LoggedIn: true, Username: User, Iss: "argocd"}, nil
}

type appService struct {
	applicationpkg.UnimplementedApplicationServiceServer
	api *API
	b   Backend
}

func projectsOf(q *applicationpkg.ApplicationQuery) []string {
	return append(append([]string(nil), q.Projects...), q.Project...)
}

func oneProject(projects []string) string {
	if len(projects) == 1 {
		return projects[0]
	}
	return ""
}

// lookup finds an Application as argocd-server does for a caller who may see every project
// (namespace, when the request names one, is the Applications' namespace): unknown with a
// project named is NotFound; without one it is PermissionDenied, so the answer does not reveal
// whether an application exists.
func (h *appService) lookup(ctx context.Context, namespace, name, project string) (*v1alpha1.Application, error) {
	app, err := h.b.Application(ctx, name)
	if err == nil && namespace != "" && namespace != app.Namespace {
		err = ErrAppNotFound
	}
	if err == nil && (project == "" || app.Spec.GetProject() == project) {
		return app, nil
	}
	if err != nil && !errors.Is(err, ErrAppNotFound) {
		return nil, statusOf(err)
	}
	if project == "" {
		return nil, status.Error(codes.PermissionDenied, "permission denied")
	}
	nf := apierrors.NewNotFound(gvrApplication.GroupResource(), name)
	return nil, status.Error(codes.NotFound, nf.Error())
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
		return (len(projects) == 0 || slices.Contains(projects, a.Spec.GetProject())) && sel.Matches(labels.Set(a.Labels))
	}, nil
}

// List returns the Applications matching the query, sorted by name.
func (h *appService) List(ctx context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.ApplicationList, error) {
	match, err := matcher(q)
	if err != nil {
		return nil, err
	}
	apps, err := h.b.Applications(ctx)
	if err != nil {
		return nil, statusOf(err)
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
func (h *appService) Get(ctx context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.Application, error) {
	name, project, ns := q.GetName(), oneProject(projectsOf(q)), q.GetAppNamespace()
	if _, err := h.lookup(ctx, ns, name, project); err != nil {
		return nil, err
	}
	if r := q.GetRefresh(); r != "" {
		if r != string(v1alpha1.RefreshTypeNormal) && r != string(v1alpha1.RefreshTypeHard) {
			return nil, status.Errorf(codes.InvalidArgument, "refresh %q: want normal or hard", r)
		}
		if err := h.b.Refresh(ctx, name, r == string(v1alpha1.RefreshTypeHard)); err != nil {
			return nil, statusOf(err)
		}
	}
	return h.lookup(ctx, ns, name, project)
}

// Sync requests a sync operation, which the controller runs; it returns the Application with
// the operation set, as argocd-server does, or FailedPrecondition while another runs.
func (h *appService) Sync(ctx context.Context, req *applicationpkg.ApplicationSyncRequest) (*v1alpha1.Application, error) {
	name := req.GetName()
	app, err := h.lookup(ctx, req.GetAppNamespace(), name, req.GetProject())
	if err != nil {
		return nil, err
	}
	if len(req.Resources) > 0 || len(req.Manifests) > 0 || len(req.Revisions) > 0 || len(req.SourcePositions) > 0 {
		return nil, status.Error(codes.InvalidArgument, "partial syncs, local manifests and multi-source revisions are not supported by this simulated argocd-server")
	}
	rev := req.GetRevision()
	target := app.Spec.GetSource().TargetRevision
	if rev != "" && rev != target && app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.IsAutomatedSyncEnabled() {
		commit, err := h.b.ResolveRevision(ctx, rev)
		targetCommit, terr := h.b.ResolveRevision(ctx, revisionOrHead(target))
		if err != nil || terr != nil || commit != targetCommit {
			return nil, status.Errorf(codes.FailedPrecondition, "Cannot sync to %s: auto-sync currently set to %s", rev, target)
		}
	}
	op := v1alpha1.Operation{
		Sync:        &v1alpha1.SyncOperation{Revision: rev, Prune: req.GetPrune(), DryRun: req.GetDryRun()},
		InitiatedBy: v1alpha1.OperationInitiator{Username: User},
	}
	if req.SyncOptions != nil {
		op.Sync.SyncOptions = req.SyncOptions.Items
	}
	if req.RetryStrategy != nil {
		op.Retry = *req.RetryStrategy
	}
	return h.operate(ctx, OperationRequest{App: name, Project: req.GetProject(), Operation: op})
}

func (h *appService) operate(ctx context.Context, req OperationRequest) (*v1alpha1.Application, error) {
	out, err := h.b.Operate(ctx, req)
	if err != nil {
		return nil, statusOf(err)
	}
	return out, nil
}

// Rollback syncs the revision of a history entry, as argocd-server does: refused while
// auto-sync is on, for an unknown entry, and while another operation runs.
func (h *appService) Rollback(ctx context.Context, req *applicationpkg.ApplicationRollbackRequest) (*v1alpha1.Application, error) {
	name := req.GetName()
	app, err := h.lookup(ctx, req.GetAppNamespace(), name, req.GetProject())
	if err != nil {
		return nil, err
	}
	if app.Spec.SyncPolicy != nil && app.Spec.SyncPolicy.IsAutomatedSyncEnabled() {
		return nil, status.Error(codes.FailedPrecondition, "rollback cannot be initiated when auto-sync is enabled")
	}
	var entry *v1alpha1.RevisionHistory
	for i := range app.Status.History {
		if app.Status.History[i].ID == req.GetId() {
			entry = &app.Status.History[i]
		}
	}
	if entry == nil {
		return nil, status.Errorf(codes.InvalidArgument, "application %s does not have deployment with id %v", name, req.GetId())
	}
	src := entry.Source
	op := v1alpha1.Operation{
		Sync:        &v1alpha1.SyncOperation{Revision: entry.Revision, Source: &src, Prune: req.GetPrune(), DryRun: req.GetDryRun()},
		InitiatedBy: v1alpha1.OperationInitiator{Username: User},
	}
	return h.operate(ctx, OperationRequest{App: name, Project: req.GetProject(), RollbackID: entry.ID, Operation: op})
}

// Watch streams an ADDED event per matching Application, then every change, until the client
// goes away or the server stops.
func (h *appService) Watch(q *applicationpkg.ApplicationQuery, ws applicationpkg.ApplicationService_WatchServer) error {
	match, err := matcher(q)
	if err != nil {
		return err
	}
	ctx := ws.Context()
	// Subscribe before listing so nothing in between is missed (a duplicate is harmless).
	events := h.api.subscribe()
	defer h.api.unsubscribe(events)
	apps, err := h.b.Applications(ctx)
	if err != nil {
		return statusOf(err)
	}
	for _, app := range apps {
		if match(app) {
			if err := ws.Send(&v1alpha1.ApplicationWatchEvent{Type: watch.Added, Application: *app}); err != nil {
				return err
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.api.done:
			return nil
		case ev, ok := <-events:
			if !ok {
				// Dropped as too far behind: end the stream; the client opens it again.
				return nil
			}
			if !match(&ev.Application) {
				continue
			}
			if err := ws.Send(ev); err != nil {
				return err
			}
		}
	}
}

// ResourceTree returns the Application's live objects.
func (h *appService) ResourceTree(ctx context.Context, q *applicationpkg.ResourcesQuery) (*v1alpha1.ApplicationTree, error) {
	app, err := h.lookup(ctx, q.GetAppNamespace(), q.GetApplicationName(), q.GetProject())
	if err != nil {
		return nil, err
	}
	tree, err := h.b.ResourceTree(ctx, app)
	if err != nil {
		return nil, statusOf(err)
	}
	return tree, nil
}

// ManagedResources returns, per managed object the query selects, its target and live state
// and whether they differ.
func (h *appService) ManagedResources(ctx context.Context, q *applicationpkg.ResourcesQuery) (*applicationpkg.ManagedResourcesResponse, error) {
	app, err := h.lookup(ctx, q.GetAppNamespace(), q.GetApplicationName(), q.GetProject())
	if err != nil {
		return nil, err
	}
	diffs, err := h.b.ManagedResources(ctx, app)
	if err != nil {
		return nil, statusOf(err)
	}
	out := &applicationpkg.ManagedResourcesResponse{}
	for _, d := range diffs {
		if (q.Group == nil || *q.Group == d.Group) && (q.Kind == nil || *q.Kind == d.Kind) &&
			(q.Namespace == nil || *q.Namespace == d.Namespace) && (q.Name == nil || *q.Name == d.Name) {
			out.Items = append(out.Items, d)
		}
	}
	return out, nil
}

// RevisionMetadata returns the author, date, message and tags of a commit of the repository.
func (h *appService) RevisionMetadata(ctx context.Context, q *applicationpkg.RevisionMetadataQuery) (*v1alpha1.RevisionMetadata, error) {
	if _, err := h.lookup(ctx, q.GetAppNamespace(), q.GetName(), q.GetProject()); err != nil {
		return nil, err
	}
	md, err := h.b.RevisionMetadata(ctx, q.GetRevision())
	if err != nil {
		return nil, statusOf(err)
	}
	return md, nil
}
