// Package argocdtest runs an in-process argocd-server for tests: Argo CD's own generated gRPC
// application and version services on a real TCP listener, with token authentication, serving
// Application objects given as YAML. Clients reach it through Argo CD's real API client over a
// real connection, so everything between opsctl and the wire is the production path.
//
// It answers the way argocd-server does where opsctl depends on it: "no session information"
// and "invalid session: ..." as Unauthenticated; an unknown application as NotFound when the
// request names a project and as PermissionDenied when it does not; a sync while an operation
// runs as FailedPrecondition; a watch starts with an ADDED event per application.
//
// The package imports argo-cd so that callers' tests do not have to; fixtures are YAML.
package argocdtest

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	versionpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/version"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"
)

// ExpiredToken is a token the server rejects as expired, with argocd-server's own message.
const ExpiredToken = "expired-token"

// SyncRequest is a sync the server accepted.
type SyncRequest struct {
	App      string
	Revision string
	Prune    bool
	DryRun   bool
	Project  string
	// RollbackID is the history entry of a rollback (0 for a sync).
	RollbackID int64
}

// Resource is the state of one managed object for ManagedResources: Target is what git
// renders, Live what the cluster has, both YAML ("" for none).
type Resource struct {
	Group, Kind, Namespace, Name string
	Target, Live                 string
}

// Commit is what RevisionMetadata answers for a revision.
type Commit struct {
	Author  string
	Date    time.Time
	Message string
}

// Server is a running fake argocd-server.
type Server struct {
	// OnSync, when set, runs in its own goroutine after a sync was accepted, playing the
	// application controller (typically calling Apply with the resulting states).
	OnSync func(req SyncRequest)
	// OnRefresh, when set, runs before a refresh request returns, as argocd-server waits for
	// the controller's refresh.
	OnRefresh func(app string, hard bool)

	applicationpkg.UnimplementedApplicationServiceServer
	versionpkg.UnimplementedVersionServiceServer

	token string
	addr  string
	gs    *grpc.Server
	wg    sync.WaitGroup

	mu        sync.Mutex
	apps      map[string]*v1alpha1.Application
	subs      map[chan *v1alpha1.ApplicationWatchEvent]struct{}
	syncs     []SyncRequest
	refreshes []string
	hang      bool
	managed   map[string][]Resource
	commits   map[string]Commit
}

// Start serves on a free port of 127.0.0.1 with token as the only accepted token, loaded with
// the given Application YAML documents. The server stops when the test ends.
func Start(t testing.TB, token string, apps ...string) *Server {
	t.Helper()
	s := &Server{token: token, apps: map[string]*v1alpha1.Application{}, subs: map[chan *v1alpha1.ApplicationWatchEvent]struct{}{}}
	for _, y := range apps {
		if err := s.Apply(y); err != nil {
			t.Fatal(err)
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = lis.Addr().String()
	s.gs = grpc.NewServer(grpc.UnaryInterceptor(s.unaryAuth), grpc.StreamInterceptor(s.streamAuth))
	applicationpkg.RegisterApplicationServiceServer(s.gs, s)
	versionpkg.RegisterVersionServiceServer(s.gs, s)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.gs.Serve(lis)
	}()
	t.Cleanup(s.Stop)
	return s
}

// Addr is the host:port to dial (plaintext).
func (s *Server) Addr() string { return s.addr }

// Stop ends every stream and stops serving; it is safe to call twice.
func (s *Server) Stop() {
	s.gs.Stop()
	s.wg.Wait()
}

// Apply adds or replaces an application from YAML (an argoproj.io/v1alpha1 Application) and
// tells watchers. Unknown fields are rejected so a fixture cannot silently mean nothing.
func (s *Server) Apply(doc string) error {
	var a v1alpha1.Application
	if err := yaml.UnmarshalStrict([]byte(doc), &a); err != nil {
		return fmt.Errorf("argocdtest: application YAML: %w", err)
	}
	if a.Name == "" {
		return fmt.Errorf("argocdtest: application YAML has no metadata.name")
	}
	if a.Namespace == "" {
		a.Namespace = "argocd"
	}
	s.mu.Lock()
	_, existed := s.apps[a.Name]
	s.apps[a.Name] = &a
	typ := watch.Added
	if existed {
		typ = watch.Modified
	}
	s.broadcast(typ, &a)
	s.mu.Unlock()
	return nil
}

// SetResources sets what ManagedResources answers for app.
func (s *Server) SetResources(app string, rs ...Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.managed == nil {
		s.managed = map[string][]Resource{}
	}
	s.managed[app] = rs
}

// SetCommit sets what RevisionMetadata answers for revision.
func (s *Server) SetCommit(revision string, c Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commits == nil {
		s.commits = map[string]Commit{}
	}
	s.commits[revision] = c
}

// Syncs returns the syncs (and rollbacks) accepted so far.
func (s *Server) Syncs() []SyncRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SyncRequest(nil), s.syncs...)
}

// Refreshes returns the applications refreshed so far, in order.
func (s *Server) Refreshes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refreshes...)
}

// Watchers is the number of open watch streams.
func (s *Server) Watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// broadcast must be called with mu held.
func (s *Server) broadcast(typ watch.EventType, a *v1alpha1.Application) {
	for ch := range s.subs {
		ev := &v1alpha1.ApplicationWatchEvent{Type: typ, Application: *a.DeepCopy()}
		select {
		case ch <- ev:
		default: // a stuck watcher loses events rather than blocking the server
		}
	}
}

func (s *Server) authorize(ctx context.Context, method string) error {
	if method == "/version.VersionService/Version" {
		return nil // argocd-server answers its version without a session
	}
	md, _ := metadata.FromIncomingContext(ctx)
	tokens := md.Get("token")
	switch {
	case len(tokens) == 0 || tokens[0] == "":
		return status.Error(codes.Unauthenticated, "no session information")
	case tokens[0] == ExpiredToken:
		return status.Error(codes.Unauthenticated, "invalid session: token has invalid claims: token is expired")
	case tokens[0] != s.token:
		return status.Error(codes.Unauthenticated, "invalid session: token signature is invalid")
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	if s.hung(info.FullMethod) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return handler(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	if s.hung(info.FullMethod) {
		<-ss.Context().Done()
		return status.FromContextError(ss.Context().Err()).Err()
	}
	return handler(srv, ss)
}

// HangApplications makes every application call (unary and watch) wait, unanswered, until the
// client gives up, while the connection and the version probe keep working: a server wedged
// behind a healthy front.
func (s *Server) HangApplications() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

func (s *Server) hung(method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hang && strings.HasPrefix(method, "/application.ApplicationService/")
}

// Version answers the API client's connection probe.
func (s *Server) Version(context.Context, *emptypb.Empty) (*versionpkg.VersionMessage, error) {
	return &versionpkg.VersionMessage{Version: "v3.6.1+argocdtest"}, nil
}

func projectsOf(q *applicationpkg.ApplicationQuery) []string {
	return append(append([]string(nil), q.Projects...), q.Project...)
}

func inProjects(a *v1alpha1.Application, projects []string) bool {
	if len(projects) == 0 {
		return true
	}
	for _, p := range projects {
		if a.Spec.GetProject() == p {
			return true
		}
	}
	return false
}

// lookup finds an application the way argocd-server's RBAC-aware lookup answers: with a
// project named, an unknown application (or one in another project) is NotFound; without one,
// it is PermissionDenied so as not to reveal whether it exists. Call with mu held.
func (s *Server) lookup(name, project string) (*v1alpha1.Application, error) {
	a, ok := s.apps[name]
	if ok && (project == "" || a.Spec.GetProject() == project) {
		return a, nil
	}
	if project == "" {
		return nil, status.Error(codes.PermissionDenied, "permission denied")
	}
	nf := apierrors.NewNotFound(v1alpha1.SchemeGroupVersion.WithResource("applications").GroupResource(), name)
	return nil, status.Error(codes.NotFound, nf.Error())
}

func oneProject(projects []string) string {
	if len(projects) == 1 {
		return projects[0]
	}
	return ""
}

// List returns the applications of the requested projects.
func (s *Server) List(_ context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.ApplicationList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &v1alpha1.ApplicationList{}
	for _, a := range s.sorted() {
		if inProjects(a, projectsOf(q)) {
			out.Items = append(out.Items, *a.DeepCopy())
		}
	}
	return out, nil
}

func (s *Server) sorted() []*v1alpha1.Application {
	out := make([]*v1alpha1.Application, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one application; with Refresh set it records the refresh and runs OnRefresh
// before answering.
func (s *Server) Get(_ context.Context, q *applicationpkg.ApplicationQuery) (*v1alpha1.Application, error) {
	name, project := q.GetName(), oneProject(projectsOf(q))
	s.mu.Lock()
	_, err := s.lookup(name, project)
	if err == nil && q.Refresh != nil {
		s.refreshes = append(s.refreshes, name)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if q.Refresh != nil && s.OnRefresh != nil {
		s.OnRefresh(name, q.GetRefresh() == "hard")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(name, project)
	if err != nil {
		return nil, err
	}
	return a.DeepCopy(), nil
}

// Sync accepts a sync unless an operation is requested or running.
func (s *Server) Sync(_ context.Context, req *applicationpkg.ApplicationSyncRequest) (*v1alpha1.Application, error) {
	s.mu.Lock()
	a, err := s.lookup(req.GetName(), req.GetProject())
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if a.Operation != nil || (a.Status.OperationState != nil && !a.Status.OperationState.Phase.Completed()) {
		s.mu.Unlock()
		return nil, status.Error(codes.FailedPrecondition, "another operation is already in progress")
	}
	sr := SyncRequest{App: a.Name, Revision: req.GetRevision(), Prune: req.GetPrune(), DryRun: req.GetDryRun(), Project: req.GetProject()}
	return s.start(a, sr, &v1alpha1.SyncOperation{Revision: sr.Revision, Prune: sr.Prune, DryRun: sr.DryRun}), nil
}

// start sets a's operation, records sr and tells watchers, then plays the controller (OnSync).
// It must be called with mu held, and unlocks it.
func (s *Server) start(a *v1alpha1.Application, sr SyncRequest, op *v1alpha1.SyncOperation) *v1alpha1.Application {
	a.Operation = &v1alpha1.Operation{InitiatedBy: v1alpha1.OperationInitiator{Username: "admin"}, Sync: op}
	s.syncs = append(s.syncs, sr)
	s.broadcast(watch.Modified, a)
	out := a.DeepCopy()
	s.mu.Unlock()
	if s.OnSync != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.OnSync(sr)
		}()
	}
	return out
}

// ManagedResources answers what SetResources set, as argocd-server does: JSON states and
// whether they differ.
func (s *Server) ManagedResources(_ context.Context, q *applicationpkg.ResourcesQuery) (*applicationpkg.ManagedResourcesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookup(q.GetApplicationName(), q.GetProject()); err != nil {
		return nil, err
	}
	out := &applicationpkg.ManagedResourcesResponse{}
	for _, r := range s.managed[q.GetApplicationName()] {
		target, err := yaml.YAMLToJSON([]byte(r.Target))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "argocdtest: target of %s: %v", r.Name, err)
		}
		live, err := yaml.YAMLToJSON([]byte(r.Live))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "argocdtest: live state of %s: %v", r.Name, err)
		}
		out.Items = append(out.Items, &v1alpha1.ResourceDiff{
			Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
			TargetState: string(target), NormalizedLiveState: string(live), PredictedLiveState: string(target),
			Modified: r.Target != r.Live,
		})
	}
	return out, nil
}

// RevisionMetadata answers what SetCommit set, NotFound for an unknown revision.
func (s *Server) RevisionMetadata(_ context.Context, q *applicationpkg.RevisionMetadataQuery) (*v1alpha1.RevisionMetadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookup(q.GetName(), q.GetProject()); err != nil {
		return nil, err
	}
	c, ok := s.commits[q.GetRevision()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "revision %s not found", q.GetRevision())
	}
	d := metav1.NewTime(c.Date)
	return &v1alpha1.RevisionMetadata{Author: c.Author, Date: &d, Message: c.Message}, nil
}

// Rollback starts a sync to a history entry's revision, refused as argocd-server refuses it:
// while auto-sync is on, for an unknown entry, and while an operation runs.
func (s *Server) Rollback(_ context.Context, req *applicationpkg.ApplicationRollbackRequest) (*v1alpha1.Application, error) {
	s.mu.Lock()
	a, err := s.lookup(req.GetName(), req.GetProject())
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Automated != nil {
		s.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "rollback cannot be initiated when auto-sync is enabled")
	}
	var h *v1alpha1.RevisionHistory
	for i := range a.Status.History {
		if a.Status.History[i].ID == req.GetId() {
			h = &a.Status.History[i]
		}
	}
	if h == nil {
		s.mu.Unlock()
		return nil, status.Errorf(codes.InvalidArgument, "application %s does not have deployment with id %v", a.Name, req.GetId())
	}
	if a.Operation != nil || (a.Status.OperationState != nil && !a.Status.OperationState.Phase.Completed()) {
		s.mu.Unlock()
		return nil, status.Error(codes.FailedPrecondition, "another operation is already in progress")
	}
	sr := SyncRequest{App: a.Name, Revision: h.Revision, Prune: req.GetPrune(), DryRun: req.GetDryRun(), Project: req.GetProject(), RollbackID: h.ID}
	src := h.Source
	return s.start(a, sr, &v1alpha1.SyncOperation{Revision: sr.Revision, Source: &src, Prune: sr.Prune, DryRun: sr.DryRun}), nil
}

// Watch streams ADDED events for the matching applications, then every change, until the
// client goes away or the server stops.
func (s *Server) Watch(q *applicationpkg.ApplicationQuery, ws applicationpkg.ApplicationService_WatchServer) error {
	ch := make(chan *v1alpha1.ApplicationWatchEvent, 256)
	match := func(a *v1alpha1.Application) bool {
		return (q.GetName() == "" || a.Name == q.GetName()) && inProjects(a, projectsOf(q))
	}
	s.mu.Lock()
	var initial []*v1alpha1.ApplicationWatchEvent
	for _, a := range s.sorted() {
		if match(a) {
			initial = append(initial, &v1alpha1.ApplicationWatchEvent{Type: watch.Added, Application: *a.DeepCopy()})
		}
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	for _, ev := range initial {
		if err := ws.Send(ev); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ws.Context().Done():
			return nil
		case ev := <-ch:
			if !match(&ev.Application) {
				continue
			}
			if err := ws.Send(ev); err != nil {
				return err
			}
		}
	}
}
