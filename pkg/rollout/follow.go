// Package rollout is the live side of a canary: after a weight change is pushed to git it
// follows the change until Argo CD has synced it and Envoy's VirtualService carries it
// (Follower, for --wait); it tells whether git, Argo CD and the mesh agree (Compare, for
// `canary status`); and it watches the rollback criteria and rolls the canary back on a breach
// (Guard, for `canary watch --auto-rollback`).
//
// It joins pkg/canary (rules and gates), pkg/argocd and pkg/mesh, so that none of those has to
// know the others.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// Routes reads the live traffic split of a service; *mesh.Reader implements it.
type Routes interface {
	Route(ctx context.Context, service string) (mesh.Route, error)
}

// Follower waits, after a canary change was pushed, until Argo CD has synced the pushed commit,
// the application is Healthy, and the live VirtualService carries the new weights. It
// implements canary.Follower.
type Follower struct {
	Apps argocd.Apps
	// Routes reads the live VirtualService; nil skips that condition.
	Routes Routes
	// Timeout bounds the whole wait (default 5 minutes).
	Timeout time.Duration
	// Interval is how often the VirtualService is read (default 2 seconds).
	Interval time.Duration
	// Progress, when set, receives one line per stage ("refresh requested", ...).
	Progress func(string)
	// Stage, when set, receives each stage reached with the same line, so that a front end
	// can place it (a progress bar) without reading the text.
	Stage func(FollowStage, string)
}

// FollowStage is a point Follow has reached, in order.
type FollowStage int

// Follow stages.
const (
	// StageRefreshed: Argo CD was asked to refresh the application.
	StageRefreshed FollowStage = iota + 1
	// StageSyncRequested: a sync was requested (auto-sync is off).
	StageSyncRequested
	// StageSynced: the application is Synced and Healthy at the pushed commit.
	StageSynced
	// StageLive: the live VirtualService carries the new weights.
	StageLive
)

// Follow conditions, as named in a FollowError.
const (
	FollowSynced  = "synced"
	FollowHealthy = "healthy"
	FollowLive    = "live weights"
)

// ErrNotConverged is wrapped by every FollowError.
var ErrNotConverged = errors.New("change not live")

// FollowError says which of the three conditions (synced at the pushed revision, Healthy, live
// VirtualService weights) did not arrive, or why the wait stopped early.
type FollowError struct {
	App      string
	Revision string
	// Reason is argocd.ErrWaitTimeout, argocd.ErrSyncFailed or argocd.ErrDegraded.
	Reason  error
	Timeout time.Duration
	// Missing names the conditions that did not arrive (FollowSynced, FollowHealthy,
	// FollowLive); Details says, in the same order, what was seen instead.
	Missing []string
	Details []string
	// Message is Argo CD's operation or health message for an early stop.
	Message string
}

func (e *FollowError) Error() string {
	rev := argocd.ShortRevision(e.Revision)
	switch {
	case errors.Is(e.Reason, argocd.ErrSyncFailed):
		return fmt.Sprintf("Argo CD failed to sync %s at %s: %s", e.App, rev, e.Message)
	case errors.Is(e.Reason, argocd.ErrDegraded):
		return fmt.Sprintf("%s is Degraded after syncing %s: %s", e.App, rev, e.Message)
	}
	parts := make([]string, len(e.Missing))
	for i := range e.Missing {
		parts[i] = e.Missing[i] + " (" + e.Details[i] + ")"
	}
	return fmt.Sprintf("timed out after %s waiting for %s at %s; did not arrive: %s", e.Timeout, e.App, rev, strings.Join(parts, "; "))
}

// Unwrap matches ErrNotConverged and the reason.
func (e *FollowError) Unwrap() []error { return []error{ErrNotConverged, e.Reason} }

// WantWeights is what the VirtualService must carry after a release: v2 gets the canary
// weight while the canary is enabled and 0 otherwise, v1 the rest.
func WantWeights(r gitops.Release) (v1, v2 int32) {
	if r.Canary.Enabled {
		v2 = int32(r.Canary.Weight)
	}
	return 100 - v2, v2
}

// Follow refreshes the application, starts a sync when auto-sync is off, and waits for the
// three conditions.
func (f *Follower) Follow(ctx context.Context, p *canary.Plan, res gitops.Result) error {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = argocd.DefaultWaitTimeout
	}
	deadline := time.Now().Add(timeout)
	app := gitops.ApplicationName(p.Service, p.Env)
	wantV1, wantV2 := WantWeights(p.To)

	a, err := f.Apps.Refresh(ctx, app, false)
	if err != nil {
		return fmt.Errorf("ask Argo CD to refresh %s: %w", app, err)
	}
	f.say(StageRefreshed, fmt.Sprintf("Argo CD refreshed %s (%s %s at %s)", app, a.Sync, a.Health, argocd.ShortRevision(a.Revision)))
	if !a.AutoSync {
		if _, err := f.Apps.Sync(ctx, app, argocd.SyncOptions{Revision: res.Commit}); err != nil && !errors.Is(err, argocd.ErrOperationInProgress) {
			return fmt.Errorf("ask Argo CD to sync %s (auto-sync is off): %w", app, err)
		}
		f.say(StageSyncRequested, fmt.Sprintf("sync of %s at %s requested (auto-sync is off)", app, argocd.ShortRevision(res.Commit)))
	}

	want := argocd.WaitFor{Synced: true, Healthy: true, Revision: res.Commit, OperationDone: true, FailOnDegraded: true,
		Timeout: time.Until(deadline)}
	fe := &FollowError{App: app, Revision: res.Commit, Timeout: timeout}
	last, err := argocd.Wait(ctx, f.Apps, app, want)
	var we *argocd.WaitError
	switch {
	case errors.As(err, &we) && !errors.Is(err, argocd.ErrWaitTimeout):
		fe.Reason = we.Reason
		fe.Message = we.Last.HealthDetail()
		if errors.Is(err, argocd.ErrSyncFailed) {
			fe.Message = "no message"
			if we.Last.Operation != nil && we.Last.Operation.Message != "" {
				fe.Message = we.Last.Operation.Message
			}
		}
		return fe
	case errors.As(err, &we):
		last = we.Last
	case err != nil:
		return err
	default:
		f.say(StageSynced, fmt.Sprintf("%s is Synced and Healthy at %s", app, argocd.ShortRevision(last.Revision)))
	}

	// Argo CD is done (or out of time); now the VirtualService, until the same deadline.
	liveOK, liveDetail := f.live(ctx, p.Service, wantV1, wantV2, deadline)
	if err == nil && liveOK {
		f.say(StageLive, fmt.Sprintf("live VirtualService carries v1 %d%% / v2 %d%%", wantV1, wantV2))
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fe.Reason = argocd.ErrWaitTimeout
	if !(argocd.RevisionMatches(last.Revision, res.Commit) && last.Sync == argocd.SyncSynced && !last.Operation.Running()) {
		d := fmt.Sprintf("Argo CD: %s at %s", last.Sync, termsafe.Dash(argocd.ShortRevision(last.Revision)))
		if last.Operation.Running() {
			d += ", sync " + strings.ToLower(last.Operation.Phase)
		}
		fe.Missing, fe.Details = append(fe.Missing, FollowSynced+" at "+argocd.ShortRevision(res.Commit)), append(fe.Details, d)
	}
	if last.Health != argocd.HealthHealthy {
		d := "Argo CD: " + last.Health
		if last.HealthMessage != "" {
			d += ": " + last.HealthMessage
		}
		fe.Missing, fe.Details = append(fe.Missing, FollowHealthy), append(fe.Details, d)
	}
	if !liveOK {
		fe.Missing = append(fe.Missing, fmt.Sprintf("%s v1 %d%% / v2 %d%%", FollowLive, wantV1, wantV2))
		fe.Details = append(fe.Details, liveDetail)
	}
	return fe
}

// live polls the VirtualService until it carries the weights or the deadline passes. It
// reports whether it did and, if not, what it last saw.
func (f *Follower) live(ctx context.Context, service string, wantV1, wantV2 int32, deadline time.Time) (bool, string) {
	if f.Routes == nil {
		return true, ""
	}
	interval := f.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	var seen string
	for {
		r, err := f.Routes.Route(ctx, service)
		switch {
		case err != nil:
			seen = "live: " + err.Error()
		case r.Weight(mesh.StableSubset) == wantV1 && r.Weight(mesh.CanarySubset) == wantV2:
			return true, ""
		default:
			seen = fmt.Sprintf("live: v1 %d%% / v2 %d%%", r.Weight(mesh.StableSubset), r.Weight(mesh.CanarySubset))
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false, seen
		}
		if wait > interval {
			wait = interval
		}
		select {
		case <-ctx.Done():
			return false, seen
		case <-time.After(wait):
		}
	}
}

func (f *Follower) say(stage FollowStage, s string) {
	if f.Progress != nil {
		f.Progress(s)
	}
	if f.Stage != nil {
		f.Stage(stage, s)
	}
}
