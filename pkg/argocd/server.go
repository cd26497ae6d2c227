package argocd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/come2us/opsctl/pkg/buildinfo"
)

// watchRetries is how many times in a row a broken watch stream is re-opened before Watch
// gives up.
const watchRetries = 5

// serverApps is the argocd-server backend: Argo CD's own API client over one gRPC connection.
type serverApps struct {
	closer  io.Closer
	cl      applicationpkg.ApplicationServiceClient
	ep      endpoint
	project string
	backoff time.Duration
}

func dialServer(ctx context.Context, o Options) (Apps, error) {
	if o.Server == "" {
		return nil, errNoServer()
	}
	timeout := o.timeout()
	ep := endpoint{what: "Argo CD at " + o.Server, login: loginAdvice(o.Server), project: o.Project, timeout: timeout}
	if err := o.checkToken(ep.what); err != nil {
		return nil, err
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "opsctl/" + buildinfo.Get().Version
	}
	// Connecting, the client's version probe and its gRPC-Web retry included, gets one
	// deadline: a server that accepts the connection and never answers fails in that time.
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		closer io.Closer
		cl     applicationpkg.ApplicationServiceClient
	)
	err := guard(func() error {
		// ConfigPath stays empty: opsctl already took what it needs from the argocd CLI's
		// config, and the API client must not rewrite that file (it would, to refresh an SSO
		// token). PortForward stays off: opsctl never port-forwards behind the user's back.
		c, err := apiclient.NewClientWithContext(dctx, &apiclient.ClientOptions{
			ServerAddr: o.Server,
			PlainText:  o.PlainText,
			Insecure:   o.Insecure,
			GRPCWeb:    o.GRPCWeb,
			AuthToken:  o.Token,
			UserAgent:  ua,
		})
		if err != nil {
			return err
		}
		closer, cl, err = c.NewApplicationClientWithContext(dctx)
		return err
	})
	var fatal *fatalLogError
	switch {
	case err == nil:
		return &serverApps{closer: closer, cl: cl, ep: ep, project: o.Project, backoff: time.Second}, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case dctx.Err() != nil:
		// Whatever the client reported last (often its gRPC-Web retry on a socket of its own),
		// the cause is the server's silence.
		return nil, &Error{Kind: ErrUnreachable, Cause: err,
			Msg: fmt.Sprintf("cannot reach %s: it accepted the connection but did not answer within %s; nothing was changed (check the server, or raise argocd.timeout)", ep.what, timeout)}
	case errors.As(err, &fatal):
		return nil, &Error{Kind: ErrUnreachable, Cause: err, Msg: fmt.Sprintf("cannot reach %s: %s", ep.what, oneLine(fatal.msg))}
	}
	return nil, ep.wrap("connect", "", err)
}

func (s *serverApps) projects() []string {
	if s.project == "" {
		return nil
	}
	return []string{s.project}
}

func (s *serverApps) query(name string) *applicationpkg.ApplicationQuery {
	q := &applicationpkg.ApplicationQuery{Projects: s.projects()}
	if name != "" {
		q.Name = &name
	}
	return q
}

func (s *serverApps) List(ctx context.Context) ([]App, error) {
	list, err := s.cl.List(ctx, s.query(""))
	if err != nil {
		return nil, s.ep.wrap("list applications", "", err)
	}
	out := make([]App, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, fromApplication(&list.Items[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *serverApps) Get(ctx context.Context, name string) (App, error) {
	a, err := s.cl.Get(ctx, s.query(name))
	if err != nil {
		return App{}, s.ep.wrap("get", name, err)
	}
	return fromApplication(a), nil
}

func (s *serverApps) Refresh(ctx context.Context, name string, hard bool) (App, error) {
	q := s.query(name)
	kind := "normal"
	if hard {
		kind = "hard"
	}
	q.Refresh = &kind
	a, err := s.cl.Get(ctx, q)
	if err != nil {
		return App{}, s.ep.wrap("refresh", name, err)
	}
	return fromApplication(a), nil
}

func (s *serverApps) Sync(ctx context.Context, name string, opts SyncOptions) (App, error) {
	req := &applicationpkg.ApplicationSyncRequest{Name: &name, Prune: &opts.Prune, DryRun: &opts.DryRun}
	if opts.Revision != "" {
		req.Revision = &opts.Revision
	}
	if s.project != "" {
		req.Project = &s.project
	}
	a, err := s.cl.Sync(ctx, req)
	if err != nil {
		return App{}, s.ep.wrap("sync", name, err)
	}
	return fromApplication(a), nil
}

func (s *serverApps) ManagedResources(ctx context.Context, name string) ([]ManagedResource, error) {
	q := &applicationpkg.ResourcesQuery{ApplicationName: &name}
	if s.project != "" {
		q.Project = &s.project
	}
	resp, err := s.cl.ManagedResources(ctx, q)
	if err != nil {
		return nil, s.ep.wrap("resources of", name, err)
	}
	out := make([]ManagedResource, 0, len(resp.Items))
	for _, d := range resp.Items {
		if d == nil || d.Hook {
			continue
		}
		r := ManagedResource{Group: d.Group, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name, Modified: d.Modified}
		// The predicted live state is what a sync would leave (git's state over the live
		// object); compared with the normalised live state it is `argocd app diff`.
		target := d.PredictedLiveState
		if target == "" {
			target = d.TargetState
		}
		live := d.NormalizedLiveState
		if live == "" {
			live = d.LiveState
		}
		if r.Target, err = stateYAML(target); err != nil {
			return nil, s.ep.wrap("resources of", name, err)
		}
		if r.Live, err = stateYAML(live); err != nil {
			return nil, s.ep.wrap("resources of", name, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

func (s *serverApps) RevisionInfo(ctx context.Context, name, revision string) (Revision, error) {
	q := &applicationpkg.RevisionMetadataQuery{Name: &name, Revision: &revision}
	if s.project != "" {
		q.Project = &s.project
	}
	m, err := s.cl.RevisionMetadata(ctx, q)
	if err != nil {
		// No application name: NotFound here is the revision's, not the application's.
		return Revision{}, s.ep.wrap("revision "+ShortRevision(revision)+" of "+name, "", err)
	}
	r := Revision{Revision: revision, Author: m.Author, Message: m.Message}
	if m.Date != nil {
		r.Date = m.Date.Time.UTC()
	}
	return r, nil
}

func (s *serverApps) Rollback(ctx context.Context, name string, id int64, opts RollbackOptions) (App, error) {
	a, err := s.Get(ctx, name)
	if err != nil {
		return App{}, err
	}
	if err := CheckRollback(a, id); err != nil {
		return a, err
	}
	req := &applicationpkg.ApplicationRollbackRequest{Name: &name, Id: &id, Prune: &opts.Prune, DryRun: &opts.DryRun}
	if s.project != "" {
		req.Project = &s.project
	}
	out, err := s.cl.Rollback(ctx, req)
	if err != nil {
		return App{}, s.ep.wrap("rollback", name, err)
	}
	return fromApplication(out), nil
}

func (s *serverApps) Watch(ctx context.Context, name string, fn func(Event) error) error {
	failures := 0
	for {
		stream, err := s.cl.Watch(ctx, s.query(name))
		if err == nil {
			err = s.drain(stream, name, fn, &failures)
		}
		if ended(ctx, err) {
			return nil
		}
		var cbErr callbackError
		if errors.As(err, &cbErr) {
			return cbErr.err
		}
		if !retryable(err) {
			return s.ep.wrap("watch", name, err)
		}
		failures++
		if failures > watchRetries {
			return s.ep.wrap("watch", name, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.backoff * time.Duration(failures)):
		}
	}
}

// ended reports whether a stream error is only the caller's context ending. gRPC enforces a
// context's deadline with its own timer, so it can report DeadlineExceeded a moment before
// ctx.Err() says so; then it waits for the context to agree.
func ended(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	if st, ok := status.FromError(err); !ok || (st.Code() != codes.DeadlineExceeded && st.Code() != codes.Canceled) {
		return false
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > time.Second {
		return false
	}
	<-ctx.Done()
	return true
}

// callbackError marks an error returned by the caller's function, which ends a watch as is.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

func (s *serverApps) drain(stream applicationpkg.ApplicationService_WatchClient, name string, fn func(Event) error, failures *int) error {
	for {
		ev, err := stream.Recv()
		if err != nil {
			return err
		}
		*failures = 0
		app := fromApplication(&ev.Application)
		if name != "" && app.Name != name {
			continue
		}
		if err := fn(Event{Type: string(ev.Type), App: app}); err != nil {
			return callbackError{err}
		}
	}
}

// retryable reports whether a watch stream ended in a way worth re-opening: the server closed
// it or the connection dropped.
func retryable(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Unavailable
	}
	return false
}

func (s *serverApps) Close() error {
	if err := s.closer.Close(); err != nil {
		return fmt.Errorf("close Argo CD connection: %w", err)
	}
	return nil
}
