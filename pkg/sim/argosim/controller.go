package argosim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/come2us/opsctl/pkg/sim/kubesim"
)

// The application controller: a queue of Applications to reconcile, fed by the git poll, the
// cluster's watch (Application edits, refresh annotations, sync operations, changes of managed
// objects) and explicit refreshes, worked by one goroutine so operations never overlap.

func unstructuredOf(m map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: m}
}

// enqueue queues a reconcile of app (refresh: record it even when nothing changed; hard: drop
// the cached trees and renders first) and returns a channel that is closed once a reconcile
// that started after this call has finished, or nil after Close.
func (s *Server) enqueue(app string, refresh, hard bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	p, ok := s.pending[app]
	if !ok {
		p = &pendingWork{}
		s.pending[app] = p
		s.queue = append(s.queue, app)
	}
	p.refresh = p.refresh || refresh
	p.hard = p.hard || hard
	ch := make(chan struct{})
	p.waiters = append(p.waiters, ch)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return ch
}

// next takes the oldest queued Application, blocking until there is one or ctx ends.
func (s *Server) next(ctx context.Context) (string, *pendingWork, bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			name := s.queue[0]
			s.queue = s.queue[1:]
			p := s.pending[name]
			delete(s.pending, name)
			s.mu.Unlock()
			return name, p, true
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", nil, false
		case <-s.wake:
		}
	}
}

func (s *Server) work(ctx context.Context) {
	for {
		name, p, ok := s.next(ctx)
		if !ok {
			return
		}
		if err := s.reconcile(ctx, name, p); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile failed", "app", name, "err", err)
		}
		for _, w := range p.waiters {
			close(w)
		}
	}
}

func (s *Server) stateOf(app string) *appState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.state[app]
	if !ok {
		st = &appState{}
		s.state[app] = st
	}
	return st
}

// poll looks for new commits every interval: it resolves each distinct targetRevision once and
// queues the Applications whose revision moved (or that wait for a self-heal backoff).
func (s *Server) poll(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		apps, err := s.listApps()
		if err != nil {
			s.log.Warn("poll: list applications", "err", err)
			continue
		}
		resolved := map[string]string{}
		for _, a := range apps {
			rev := a.Spec.GetSource().TargetRevision
			commit, ok := resolved[rev]
			if !ok {
				c, err := s.git.resolve(ctx, revisionOrHead(rev))
				if err != nil && ctx.Err() != nil {
					return
				}
				commit = c // "" on error: the reconcile reports it
				resolved[rev] = commit
			}
			st := s.stateOf(a.Name)
			s.mu.Lock()
			due := st.recheck || commit != st.compared
			s.mu.Unlock()
			if due {
				s.enqueue(a.Name, false, false)
			}
		}
	}
}

func revisionOrHead(rev string) string {
	if rev == "" {
		return "HEAD"
	}
	return rev
}

// watch queues Applications whose object changed in a way the controller must act on, or one
// of whose managed objects changed, and passes every change of an Application to the API's
// watchers, in the order the cluster stored them.
func (s *Server) watch(ctx context.Context, events <-chan kubesim.Event, cancel func()) {
	defer func() { cancel() }()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				// Dropped as a slow watcher: subscribe again and look at everything.
				cancel()
				events, cancel = s.kube.Watch()
				apps, _ := s.listApps()
				for _, a := range apps {
					s.enqueue(a.Name, false, false)
					// The API's watchers may have missed changes too: give them the current state.
					if s.api != nil {
						s.api.Publish(watch.Modified, a)
					}
				}
				continue
			}
			s.publish(ev)
			if app, ok := s.appOfEvent(ev); ok {
				s.enqueue(app, false, false)
			}
		}
	}
}

// appOfEvent names the Application an event concerns, if the controller must look at it.
func (s *Server) appOfEvent(ev kubesim.Event) (string, bool) {
	o := ev.Object
	switch {
	case ev.Kind.Group == "argoproj.io" && ev.Kind.Kind == "Application":
		if o.GetNamespace() != s.appNamespace {
			return "", false
		}
		if ev.Type != "MODIFIED" {
			return o.GetName(), true
		}
		_, refresh := o.GetAnnotations()[v1alpha1.AnnotationKeyRefresh]
		st := s.stateOf(o.GetName())
		s.mu.Lock()
		specChanged := o.GetGeneration() != st.generation
		s.mu.Unlock()
		return o.GetName(), refresh || o.Object["operation"] != nil || specChanged
	case ev.Kind.Kind == "Pod" || ev.Kind.Group == "argoproj.io":
		return "", false
	}
	id := o.GetAnnotations()[annotationTrackingID]
	app, _, ok := strings.Cut(id, ":")
	return app, ok && app != ""
}

// comparison is an Application compared with git at its target revision.
type comparison struct {
	commit    string
	err       error // the target revision could not be resolved or rendered
	manifests *manifests
	live      map[string]*unstructured.Unstructured // by tracking id
	resources []v1alpha1.ResourceStatus
	sync      v1alpha1.SyncStatusCode
	health    health.HealthStatusCode
}

// compare renders app at its target revision and compares the result with the live objects.
func (s *Server) compare(ctx context.Context, app *v1alpha1.Application) *comparison {
	c := &comparison{live: s.liveObjects(app.Name)}
	c.commit, c.err = s.git.resolve(ctx, revisionOrHead(app.Spec.GetSource().TargetRevision))
	if c.err == nil {
		c.manifests, c.err = s.renderAt(ctx, app, c.commit)
	}
	if c.err != nil {
		// Without manifests nothing can be compared: the live objects are listed as they are.
		c.sync = v1alpha1.SyncStatusCodeUnknown
		for _, id := range sortedKeys(c.live) {
			l := c.live[id]
			k, _ := s.kube.KindFor(l.GetAPIVersion(), l.GetKind())
			c.resources = append(c.resources, resourceStatus(k, l, v1alpha1.SyncStatusCodeUnknown, resourceHealth(l)))
		}
		c.health = aggregateHealth(c.resources)
		return c
	}
	c.sync = v1alpha1.SyncStatusCodeSynced
	wanted := map[string]bool{}
	for _, d := range c.manifests.objects {
		id := d.obj.GetAnnotations()[annotationTrackingID]
		wanted[id] = true
		l := c.live[id]
		st := v1alpha1.SyncStatusCodeSynced
		if !inSync(d, l, app.Spec.IgnoreDifferences) {
			st = v1alpha1.SyncStatusCodeOutOfSync
			c.sync = v1alpha1.SyncStatusCodeOutOfSync
		}
		h := &v1alpha1.HealthStatus{Status: health.HealthStatusMissing}
		if l != nil {
			h = resourceHealth(l)
		}
		rs := resourceStatus(d.kind, d.obj, st, h)
		rs.SyncWave = int64(d.wave)
		c.resources = append(c.resources, rs)
	}
	for _, id := range sortedKeys(c.live) {
		if wanted[id] {
			continue
		}
		l := c.live[id]
		k, _ := s.kube.KindFor(l.GetAPIVersion(), l.GetKind())
		rs := resourceStatus(k, l, v1alpha1.SyncStatusCodeOutOfSync, resourceHealth(l))
		rs.RequiresPruning = true
		c.resources = append(c.resources, rs)
		c.sync = v1alpha1.SyncStatusCodeOutOfSync
	}
	c.health = aggregateHealth(c.resources)
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func resourceStatus(k kubesim.Kind, o *unstructured.Unstructured, st v1alpha1.SyncStatusCode, h *v1alpha1.HealthStatus) v1alpha1.ResourceStatus {
	return v1alpha1.ResourceStatus{Group: k.Group, Version: k.Version, Kind: k.Kind, Namespace: o.GetNamespace(), Name: o.GetName(), Status: st, Health: h}
}

// resourceHealth is Argo CD's own health assessment of a live object (nil for kinds it has no
// check for, such as ConfigMaps and Istio objects).
func resourceHealth(o *unstructured.Unstructured) *v1alpha1.HealthStatus {
	h, err := health.GetResourceHealth(o, nil)
	if err != nil && h == nil {
		return &v1alpha1.HealthStatus{Status: health.HealthStatusUnknown, Message: err.Error()}
	}
	if h == nil {
		return nil
	}
	return &v1alpha1.HealthStatus{Status: h.Status, Message: h.Message}
}

// aggregateHealth is the worst health of the resources that stay (those waiting to be pruned
// do not count), Healthy when none has a health.
func aggregateHealth(rs []v1alpha1.ResourceStatus) health.HealthStatusCode {
	out := health.HealthStatusHealthy
	for _, r := range rs {
		if r.Health == nil || r.RequiresPruning {
			continue
		}
		if health.IsWorse(out, r.Health.Status) {
			out = r.Health.Status
		}
	}
	return out
}

// liveObjects returns every object in the cluster that carries app's tracking annotation.
func (s *Server) liveObjects(app string) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	prefix := app + ":"
	for _, k := range s.kube.Resources() {
		if k.Kind == "Pod" || k.Group == "argoproj.io" {
			continue
		}
		for _, o := range s.kube.List(k.GVR(), "", nil) {
			if id := o.GetAnnotations()[annotationTrackingID]; strings.HasPrefix(id, prefix) {
				out[id] = o
			}
		}
	}
	return out
}

// renderCache keeps rendered manifests per Application, commit and source, so a poll or a
// watch event that changes nothing in git costs a map lookup instead of a Helm render.
type renderCache struct {
	mu      sync.Mutex
	entries map[string]*manifests
	order   []string
}

const renderCacheSize = 64

func newRenderCache() *renderCache { return &renderCache{entries: map[string]*manifests{}} }

func (c *renderCache) get(key string) (*manifests, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.entries[key]
	return m, ok
}

func (c *renderCache) put(key string, m *manifests) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = m
	c.order = append(c.order, key)
	for len(c.order) > renderCacheSize {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *renderCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]*manifests{}
	c.order = nil
}

// renderAt renders app's source at commit (cached).
func (s *Server) renderAt(ctx context.Context, app *v1alpha1.Application, commit string) (*manifests, error) {
	src, _ := json.Marshal(struct {
		S *v1alpha1.ApplicationSource
		D v1alpha1.ApplicationDestination
	}{app.Spec.Source, app.Spec.Destination})
	key := app.Name + "@" + commit + "#" + string(src)
	if m, ok := s.renders.get(key); ok {
		return m, nil
	}
	tree, err := s.git.tree(ctx, commit)
	if err != nil {
		return nil, err
	}
	m, err := renderApp(ctx, tree, app, s.kube)
	if err != nil {
		return nil, fmt.Errorf("failed to render %s at %s: %w", app.Name, shortSHA(commit), err)
	}
	m.commit = commit
	s.renders.put(key, m)
	return m, nil
}

// reconcile runs a requested operation, compares, auto-syncs when the policy says so and
// records the result in the Application's status.
func (s *Server) reconcile(ctx context.Context, name string, p *pendingWork) error {
	app, err := s.getApp(name)
	if errors.Is(err, ErrAppNotFound) {
		s.mu.Lock()
		delete(s.state, name)
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	if p.hard {
		s.git.forget()
		s.renders.forget()
	}
	st := s.stateOf(name)
	s.mu.Lock()
	st.generation = app.Generation
	st.recheck = false
	s.mu.Unlock()

	if app.Operation != nil {
		if err := s.runOperation(ctx, app, *app.Operation, true); err != nil {
			return err
		}
		if app, err = s.getApp(name); err != nil {
			return err
		}
	}
	cmp := s.compare(ctx, app)
	if op := s.autoSync(app, cmp, st); op != nil {
		if err := s.runOperation(ctx, app, *op, false); err != nil {
			return err
		}
		if app, err = s.getApp(name); err != nil {
			return err
		}
		cmp = s.compare(ctx, app)
	}
	s.mu.Lock()
	st.compared = cmp.commit
	s.mu.Unlock()
	return s.recordComparison(ctx, name, cmp, p.refresh)
}

// autoSync returns the automated sync operation to run, or nil, following Argo CD's rules: a
// new target revision is synced once (a failure is not retried for the same revision); an
// Application OutOfSync at the revision it last synced is re-synced only with selfHeal, at most
// once per backoff period.
func (s *Server) autoSync(app *v1alpha1.Application, cmp *comparison, st *appState) *v1alpha1.Operation {
	pol := app.Spec.SyncPolicy
	if pol == nil || !pol.IsAutomatedSyncEnabled() || cmp.commit == "" {
		return nil
	}
	prune := pol.Automated.Prune != nil && *pol.Automated.Prune
	selfHeal := pol.Automated.SelfHeal != nil && *pol.Automated.SelfHeal
	last := app.Status.OperationState
	attempted := last != nil && operationRevision(last) == cmp.commit
	switch {
	case cmp.err != nil:
		if attempted {
			return nil
		}
	case cmp.sync != v1alpha1.SyncStatusCodeOutOfSync:
		return nil
	case !prune && onlyPruning(cmp.resources):
		return nil
	case attempted && last.Phase.Failed():
		return nil
	case attempted && !selfHeal:
		return nil
	case attempted:
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if now.Sub(st.lastSelfHeal) < selfHealBackoff {
			st.recheck = true
			return nil
		}
		st.lastSelfHeal = now
	}
	op := &v1alpha1.Operation{
		Sync:        &v1alpha1.SyncOperation{Revision: cmp.commit, Prune: prune},
		InitiatedBy: v1alpha1.OperationInitiator{Automated: true},
	}
	if pol.Retry != nil {
		op.Retry = *pol.Retry
	}
	return op
}

// operationRevision is the commit an operation synced (or tried to).
func operationRevision(st *v1alpha1.OperationState) string {
	if st.SyncResult != nil && st.SyncResult.Revision != "" {
		return st.SyncResult.Revision
	}
	if st.Operation.Sync != nil {
		return st.Operation.Sync.Revision
	}
	return ""
}

func onlyPruning(rs []v1alpha1.ResourceStatus) bool {
	for _, r := range rs {
		if r.Status == v1alpha1.SyncStatusCodeOutOfSync && !r.RequiresPruning {
			return false
		}
	}
	return true
}

// recordComparison writes a comparison into the Application's status and clears the refresh
// annotation. Nothing is written when nothing changed, so the controller's own writes do not
// wake it again; reconciledAt moves on every write and on every explicit refresh.
func (s *Server) recordComparison(ctx context.Context, name string, cmp *comparison, refreshed bool) error {
	_, err := s.updateApp(ctx, name, func(a *v1alpha1.Application) (bool, error) {
		before := statusJSON(a.Status)
		_, annotated := a.Annotations[v1alpha1.AnnotationKeyRefresh]
		now := metav1.Now()
		st := &a.Status
		st.Resources = cmp.resources
		st.Sync = v1alpha1.SyncStatus{
			Status:   cmp.sync,
			Revision: cmp.commit,
			ComparedTo: v1alpha1.ComparedTo{
				Source:            a.Spec.GetSource(),
				Destination:       a.Spec.Destination,
				IgnoreDifferences: a.Spec.IgnoreDifferences,
			},
		}
		if st.Health.Status != cmp.health || st.Health.LastTransitionTime == nil {
			st.Health.LastTransitionTime = &now
		}
		st.Health.Status = cmp.health
		st.Health.Message = ""
		st.Conditions = comparisonConditions(st.Conditions, cmp, now)
		st.SourceType = v1alpha1.ApplicationSourceTypeHelm
		st.ControllerNamespace = s.appNamespace
		st.Summary = v1alpha1.ApplicationSummary{}
		if cmp.manifests != nil {
			st.Summary.Images = cmp.manifests.images
		}
		changed := statusJSON(a.Status) != before
		if !changed && !annotated && !refreshed {
			return false, nil
		}
		st.ReconciledAt = &now
		if annotated {
			delete(a.Annotations, v1alpha1.AnnotationKeyRefresh)
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("record status of %s: %w", name, err)
	}
	return nil
}

// statusJSON is the status as JSON without the timestamps that move on every reconcile.
func statusJSON(st v1alpha1.ApplicationStatus) string {
	st.ReconciledAt = nil
	b, _ := json.Marshal(st)
	return string(b)
}

// comparisonConditions keeps the conditions the controller does not own and sets or clears
// ComparisonError, keeping its transition time while the message stays the same.
func comparisonConditions(old []v1alpha1.ApplicationCondition, cmp *comparison, now metav1.Time) []v1alpha1.ApplicationCondition {
	var out []v1alpha1.ApplicationCondition
	var prev *v1alpha1.ApplicationCondition
	for i := range old {
		if old[i].Type == v1alpha1.ApplicationConditionComparisonError {
			prev = &old[i]
			continue
		}
		out = append(out, old[i])
	}
	if cmp.err != nil {
		c := v1alpha1.ApplicationCondition{Type: v1alpha1.ApplicationConditionComparisonError, Message: cmp.err.Error(), LastTransitionTime: &now}
		if prev != nil && prev.Message == c.Message {
			c.LastTransitionTime = prev.LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}
