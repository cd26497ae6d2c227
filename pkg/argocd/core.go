package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/come2us/opsctl/pkg/kube"
	// Argo CD links kubectl's command packages; this keeps their message catalogues unloaded.
	_ "github.com/come2us/opsctl/pkg/translations"
)

// coreApps is the core-mode backend: Application objects read and patched on the Kubernetes
// API, as `argocd --core` does. Argo CD's application controller, watching the same objects,
// performs the refreshes and syncs requested here.
type coreApps struct {
	cs      versioned.Interface
	ns      string
	project string
	actor   string
	ep      endpoint
	backoff time.Duration
}

func newCoreFromKubeconfig(o Options) (Apps, error) {
	rc, err := kube.RESTConfig(o.Kube)
	if err != nil {
		return nil, fmt.Errorf("Argo CD core mode: %w", err)
	}
	// A client-wide timeout would cut Watch streams; New bounds every other request with a
	// context deadline instead.
	rc.Timeout = 0
	cs, err := versioned.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("Argo CD core mode: %w", err)
	}
	return newCore(cs, rc.Host, o), nil
}

// newCore returns the core backend on a clientset; host names the API server in messages.
func newCore(cs versioned.Interface, host string, o Options) *coreApps {
	ns := o.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	what := "the Kubernetes API"
	if host != "" {
		what += " at " + host
	}
	return &coreApps{
		cs: cs, ns: ns, project: o.Project, actor: o.Actor, backoff: time.Second,
		ep: endpoint{what: what, login: "check the kube context's credentials (kubectl auth whoami)", project: o.Project, timeout: o.timeout()},
	}
}

func (c *coreApps) inProject(a *v1alpha1.Application) bool {
	return c.project == "" || a.Spec.GetProject() == c.project
}

func (c *coreApps) List(ctx context.Context) ([]App, error) {
	list, err := c.cs.ArgoprojV1alpha1().Applications(c.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, c.ep.wrap("list applications", "", err)
	}
	out := make([]App, 0, len(list.Items))
	for i := range list.Items {
		if c.inProject(&list.Items[i]) {
			out = append(out, fromApplication(&list.Items[i]))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (c *coreApps) get(ctx context.Context, op, name string) (*v1alpha1.Application, error) {
	a, err := c.cs.ArgoprojV1alpha1().Applications(c.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, c.ep.wrap(op, name, err)
	}
	if !c.inProject(a) {
		return nil, c.ep.notFound(name, apierrors.NewNotFound(v1alpha1.SchemeGroupVersion.WithResource("applications").GroupResource(), name))
	}
	return a, nil
}

func (c *coreApps) Get(ctx context.Context, name string) (App, error) {
	a, err := c.get(ctx, "get", name)
	if err != nil {
		return App{}, err
	}
	return fromApplication(a), nil
}

func (c *coreApps) Refresh(ctx context.Context, name string, hard bool) (App, error) {
	if _, err := c.get(ctx, "refresh", name); err != nil {
		return App{}, err
	}
	kind := string(v1alpha1.RefreshTypeNormal)
	if hard {
		kind = string(v1alpha1.RefreshTypeHard)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1alpha1.AnnotationKeyRefresh: kind}}})
	if err != nil {
		return App{}, fmt.Errorf("refresh %s: %w", name, err)
	}
	a, err := c.cs.ArgoprojV1alpha1().Applications(c.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return App{}, c.ep.wrap("refresh", name, err)
	}
	return fromApplication(a), nil
}

func (c *coreApps) Sync(ctx context.Context, name string, opts SyncOptions) (App, error) {
	a, err := c.get(ctx, "sync", name)
	if err != nil {
		return App{}, err
	}
	if a.Operation != nil || (a.Status.OperationState != nil && !a.Status.OperationState.Phase.Completed()) {
		return App{}, &Error{Kind: ErrOperationInProgress, Msg: fmt.Sprintf("sync %s: another operation is already in progress; nothing was started", name)}
	}
	op := v1alpha1.Operation{
		InitiatedBy: v1alpha1.OperationInitiator{Username: c.actor},
		Sync:        &v1alpha1.SyncOperation{Revision: opts.Revision, Prune: opts.Prune, DryRun: opts.DryRun},
	}
	if a.Spec.SyncPolicy != nil && a.Spec.SyncPolicy.Retry != nil {
		op.Retry = *a.Spec.SyncPolicy.Retry
	}
	body := map[string]any{"operation": op}
	if rv := a.ResourceVersion; rv != "" {
		// Optimistic concurrency: the API server refuses the patch if someone else changed
		// the application since we checked that no operation runs.
		body["metadata"] = map[string]any{"resourceVersion": rv}
	}
	patch, err := json.Marshal(body)
	if err != nil {
		return App{}, fmt.Errorf("sync %s: %w", name, err)
	}
	out, err := c.cs.ArgoprojV1alpha1().Applications(c.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return App{}, c.ep.wrap("sync", name, err)
	}
	return fromApplication(out), nil
}

// ManagedResources and RevisionInfo need argocd-server's repo-server: the Application objects
// core mode reads do not hold rendered manifests or commit messages.
func (c *coreApps) ManagedResources(_ context.Context, name string) ([]ManagedResource, error) {
	return nil, errNeedsServer("resources of "+name, "the rendered and live state of its resources")
}

func (c *coreApps) RevisionInfo(_ context.Context, name, revision string) (Revision, error) {
	return Revision{}, errNeedsServer("revision "+ShortRevision(revision)+" of "+name, "commit messages")
}

// ErrNeedsServer means the request needs argocd-server and the context uses core mode.
var ErrNeedsServer = errors.New("needs argocd-server")

func errNeedsServer(subject, what string) error {
	return &Error{Kind: ErrNeedsServer, Msg: fmt.Sprintf("%s: core mode reads Application objects only, which do not carry %s; set argocd.server in the context to see them", subject, what)}
}

// Rollback sets the sync operation argocd-server would: the history entry's revision and
// source, after the same checks.
func (c *coreApps) Rollback(ctx context.Context, name string, id int64, opts RollbackOptions) (App, error) {
	a, err := c.get(ctx, "rollback", name)
	if err != nil {
		return App{}, err
	}
	if err := CheckRollback(fromApplication(a), id); err != nil {
		return fromApplication(a), err
	}
	if a.Operation != nil || (a.Status.OperationState != nil && !a.Status.OperationState.Phase.Completed()) {
		return App{}, &Error{Kind: ErrOperationInProgress, Msg: fmt.Sprintf("rollback %s: another operation is already in progress; nothing was started", name)}
	}
	var h v1alpha1.RevisionHistory
	for _, e := range a.Status.History {
		if e.ID == id {
			h = e
		}
	}
	src := h.Source
	op := v1alpha1.Operation{
		InitiatedBy: v1alpha1.OperationInitiator{Username: c.actor},
		Sync:        &v1alpha1.SyncOperation{Revision: h.Revision, Source: &src, Prune: opts.Prune, DryRun: opts.DryRun},
	}
	body := map[string]any{"operation": op}
	if rv := a.ResourceVersion; rv != "" {
		body["metadata"] = map[string]any{"resourceVersion": rv}
	}
	patch, err := json.Marshal(body)
	if err != nil {
		return App{}, fmt.Errorf("rollback %s: %w", name, err)
	}
	out, err := c.cs.ArgoprojV1alpha1().Applications(c.ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return App{}, c.ep.wrap("rollback", name, err)
	}
	return fromApplication(out), nil
}

func (c *coreApps) Watch(ctx context.Context, name string, fn func(Event) error) error {
	failures := 0
	for {
		opts := metav1.ListOptions{}
		if name != "" {
			opts.FieldSelector = "metadata.name=" + name
		}
		// A watch without a resource version starts with an ADDED event for every existing
		// object, so callers get the current state first and miss nothing in between.
		w, err := c.cs.ArgoprojV1alpha1().Applications(c.ns).Watch(ctx, opts)
		if err == nil {
			err = c.drain(ctx, w, name, fn, &failures)
			w.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
		var cb callbackError
		if errors.As(err, &cb) {
			return cb.err
		}
		failures++
		if failures > watchRetries {
			return c.ep.wrap("watch", name, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.backoff * time.Duration(failures)):
		}
	}
}

// errWatchClosed ends one watch round when the API server closed the stream.
var errWatchClosed = fmt.Errorf("watch closed by the server")

func (c *coreApps) drain(ctx context.Context, w watch.Interface, name string, fn func(Event) error, failures *int) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errWatchClosed
			}
			switch ev.Type {
			case watch.Added, watch.Modified, watch.Deleted:
			case watch.Error:
				return apierrors.FromObject(ev.Object)
			default:
				continue
			}
			a, ok := ev.Object.(*v1alpha1.Application)
			if !ok || (name != "" && a.Name != name) || !c.inProject(a) {
				continue
			}
			*failures = 0
			if err := fn(Event{Type: string(ev.Type), App: fromApplication(a)}); err != nil {
				return callbackError{err}
			}
		}
	}
}

func (c *coreApps) Close() error { return nil }
