// Package argocdtest runs an in-process argocd-server for tests: the sandbox's argocd-server
// API (argosim.API: Argo CD's own generated gRPC services on a real TCP listener, with token
// authentication) serving Application objects given as YAML, with the test playing the
// application controller. Clients reach it through Argo CD's real API client over a real
// connection, so everything between opsctl and the wire is the production path.
//
// The wire is argosim's, not a copy: it answers the way argocd-server does where opsctl
// depends on it, and the same way the sandbox does: "no session information" and "invalid
// session: ..." as Unauthenticated; an unknown application as NotFound when the request names
// a project and as PermissionDenied when it does not; a sync while an operation runs as
// FailedPrecondition; a watch starts with an ADDED event per application. What this package
// adds is the backend: a store of fixtures instead of a controller, git and a cluster.
//
// The package imports argo-cd so that callers' tests do not have to; fixtures are YAML.
package argocdtest

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	versionpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/version"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	"github.com/come2us/opsctl/pkg/sim/argosim"
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

	api  *argosim.API
	addr string
	wg   sync.WaitGroup

	mu        sync.Mutex
	apps      map[string]*v1alpha1.Application
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
	s := &Server{apps: map[string]*v1alpha1.Application{}}
	s.api = argosim.NewAPI((*store)(s), argosim.APIConfig{
		Token:        token,
		ExpiredToken: ExpiredToken,
		Version:      &versionpkg.VersionMessage{Version: "v3.6.1+argocdtest"},
	})
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
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.api.Serve(lis); err != nil {
			t.Errorf("argocdtest: serve: %v", err)
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Addr is the host:port to dial (plaintext).
func (s *Server) Addr() string { return s.addr }

// Stop ends every stream and stops serving; it is safe to call twice.
func (s *Server) Stop() {
	s.api.Stop()
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
	defer s.mu.Unlock()
	_, existed := s.apps[a.Name]
	s.apps[a.Name] = &a
	typ := watch.Added
	if existed {
		typ = watch.Modified
	}
	// Under mu, so that watchers see the changes in the order they were made.
	s.api.Publish(typ, &a)
	return nil
}

// SetResources sets what ManagedResources (and ResourceTree, from the live states) answers
// for app.
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
func (s *Server) Watchers() int { return s.api.Watchers() }

// HangApplications makes every application call (unary and watch) wait, unanswered, until the
// client gives up, while the connection and the version probe keep working: a server wedged
// behind a healthy front.
func (s *Server) HangApplications() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

// store is the Server as argosim.API's backend: the fixtures stand for the cluster, the test
// (OnSync, OnRefresh, Apply) for the controller, and SetCommit for git. Its methods are not
// the Server's own API.
type store Server

// wait is where a hung server stops answering: every application call starts with a lookup,
// so it holds there until the client gives up.
func (b *store) wait(ctx context.Context) error {
	b.mu.Lock()
	hang := b.hang
	b.mu.Unlock()
	if !hang {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// Applications returns copies of the fixtures, sorted by name.
func (b *store) Applications(ctx context.Context) ([]*v1alpha1.Application, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*v1alpha1.Application, 0, len(b.apps))
	for _, a := range b.apps {
		out = append(out, a.DeepCopy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Application returns a copy of one fixture.
func (b *store) Application(ctx context.Context, name string) (*v1alpha1.Application, error) {
	if err := b.wait(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.apps[name]
	if !ok {
		return nil, fmt.Errorf("argocdtest: application %q: %w", name, argosim.ErrAppNotFound)
	}
	return a.DeepCopy(), nil
}

// Refresh records the refresh and runs OnRefresh, the test's controller.
func (b *store) Refresh(_ context.Context, name string, hard bool) error {
	b.mu.Lock()
	b.refreshes = append(b.refreshes, name)
	onRefresh := b.OnRefresh
	b.mu.Unlock()
	if onRefresh != nil {
		onRefresh(name, hard)
	}
	return nil
}

// Operate sets the operation, records the request and tells watchers, then plays the
// controller (OnSync) in its own goroutine.
func (b *store) Operate(_ context.Context, req argosim.OperationRequest) (*v1alpha1.Application, error) {
	b.mu.Lock()
	a, ok := b.apps[req.App]
	if !ok {
		b.mu.Unlock()
		return nil, fmt.Errorf("argocdtest: application %q: %w", req.App, argosim.ErrAppNotFound)
	}
	if a.Operation != nil || (a.Status.OperationState != nil && !a.Status.OperationState.Phase.Completed()) {
		b.mu.Unlock()
		return nil, argosim.ErrOperationInProgress
	}
	op := req.Operation
	a.Operation = &op
	sr := SyncRequest{App: a.Name, Revision: op.Sync.Revision, Prune: op.Sync.Prune, DryRun: op.Sync.DryRun, Project: req.Project, RollbackID: req.RollbackID}
	b.syncs = append(b.syncs, sr)
	b.api.Publish(watch.Modified, a)
	out := a.DeepCopy()
	onSync := b.OnSync
	if onSync != nil {
		b.wg.Add(1)
	}
	b.mu.Unlock()
	if onSync != nil {
		go func() {
			defer b.wg.Done()
			onSync(sr)
		}()
	}
	return out, nil
}

// ResolveRevision takes revisions as they are: fixtures have no git to resolve them with.
func (b *store) ResolveRevision(_ context.Context, revision string) (string, error) {
	return revision, nil
}

// RevisionMetadata answers what SetCommit set.
func (b *store) RevisionMetadata(_ context.Context, revision string) (*v1alpha1.RevisionMetadata, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.commits[revision]
	if !ok {
		return nil, unknownRevision(revision)
	}
	d := metav1.NewTime(c.Date)
	return &v1alpha1.RevisionMetadata{Author: c.Author, Date: &d, Message: c.Message}, nil
}

// ResourceTree answers a node per resource SetResources gave a live state.
func (b *store) ResourceTree(_ context.Context, app *v1alpha1.Application) (*v1alpha1.ApplicationTree, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tree := &v1alpha1.ApplicationTree{}
	for _, r := range b.managed[app.Name] {
		if r.Live != "" {
			tree.Nodes = append(tree.Nodes, v1alpha1.ResourceNode{ResourceRef: v1alpha1.ResourceRef{Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}})
		}
	}
	return tree, nil
}

// ManagedResources answers what SetResources set, as argocd-server does: JSON states and
// whether they differ.
func (b *store) ManagedResources(_ context.Context, app *v1alpha1.Application) ([]*v1alpha1.ResourceDiff, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*v1alpha1.ResourceDiff
	for _, r := range b.managed[app.Name] {
		target, err := yaml.YAMLToJSON([]byte(r.Target))
		if err != nil {
			return nil, fmt.Errorf("argocdtest: target of %s: %w", r.Name, err)
		}
		live, err := yaml.YAMLToJSON([]byte(r.Live))
		if err != nil {
			return nil, fmt.Errorf("argocdtest: live state of %s: %w", r.Name, err)
		}
		out = append(out, &v1alpha1.ResourceDiff{
			Group: r.Group, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name,
			TargetState: string(target), NormalizedLiveState: string(live), PredictedLiveState: string(target),
			Modified: r.Target != r.Live,
		})
	}
	return out, nil
}

// unknownRevision is a revision no SetCommit named, in argocd-server's words.
type unknownRevision string

func (r unknownRevision) Error() string { return fmt.Sprintf("revision %s not found", string(r)) }

// Is makes the API answer NotFound for it.
func (r unknownRevision) Is(target error) bool { return target == argosim.ErrUnknownRevision }
