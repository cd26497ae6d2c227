package rollout

import (
	"context"
	"fmt"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/termsafe"
)

// Verdict says whether git, Argo CD and the live mesh agree on a canary.
type Verdict string

// Verdicts of Compare.
const (
	// InSync: Argo CD synced the commit git is at, and the live weights are git's.
	InSync Verdict = "in sync"
	// SyncPending: git is ahead of Argo CD (a commit not yet seen or synced, or a sync running).
	SyncPending Verdict = "sync pending (git ahead of Argo CD)"
	// Drift: Argo CD synced git's commit, yet the live state differs from it.
	Drift Verdict = "drift (live differs from what Argo CD synced)"
	// Unknown: Argo CD or the mesh could not be read.
	Unknown Verdict = "unknown"
)

// Agreement is the outcome of Compare, with the figures it rests on.
type Agreement struct {
	Verdict Verdict `json:"verdict"`
	// Detail says what differs, or why the verdict is unknown.
	Detail string `json:"detail,omitempty"`
	// GitCommit and GitV2 are what git says (the remote head, the canary weight it implies).
	GitCommit string `json:"gitCommit"`
	GitV2     int32  `json:"gitV2"`
	// ArgoRevision, ArgoSync and ArgoHealth are what Argo CD reports ("" when unread).
	ArgoRevision string `json:"argoRevision,omitempty"`
	ArgoSync     string `json:"argoSync,omitempty"`
	ArgoHealth   string `json:"argoHealth,omitempty"`
	// LiveV1 and LiveV2 are the live VirtualService weights (nil when unread).
	LiveV1 *int32 `json:"liveV1,omitempty"`
	LiveV2 *int32 `json:"liveV2,omitempty"`
}

// Compare judges whether git (the values file at commit), Argo CD (app, or appErr) and the
// live route (route, or routeErr) agree.
//
// Git is ahead when Argo CD has not compared at the commit yet, is syncing it, or reports
// OutOfSync without having synced it. Once Argo CD has synced the commit, any difference —
// live weights other than git's, or OutOfSync — is drift: someone or something changed the
// cluster behind GitOps' back.
func Compare(commit string, git gitops.Release, app *argocd.App, appErr error, route *mesh.Route, routeErr error) Agreement {
	_, want := WantWeights(git)
	ag := Agreement{GitCommit: commit, GitV2: want}
	if app != nil {
		ag.ArgoRevision, ag.ArgoSync, ag.ArgoHealth = app.Revision, app.Sync, app.Health
	}
	if route != nil && routeErr == nil {
		v1, v2 := route.Weight(mesh.StableSubset), route.Weight(mesh.CanarySubset)
		ag.LiveV1, ag.LiveV2 = &v1, &v2
	}
	short := argocd.ShortRevision
	switch {
	case appErr != nil || app == nil:
		ag.Verdict, ag.Detail = Unknown, fmt.Sprintf("Argo CD: %v", appErr)
		return ag
	case !argocd.RevisionMatches(app.Revision, commit):
		ag.Verdict, ag.Detail = SyncPending, fmt.Sprintf("git at %s, Argo CD at %s", short(commit), termsafe.Dash(short(app.Revision)))
		return ag
	case app.Operation.Running():
		ag.Verdict, ag.Detail = SyncPending, fmt.Sprintf("Argo CD is syncing %s", short(commit))
		return ag
	case app.Sync == argocd.SyncOutOfSync && !syncedAt(app, commit):
		ag.Verdict, ag.Detail = SyncPending, fmt.Sprintf("Argo CD has seen %s but not synced it", short(commit))
		return ag
	case routeErr != nil || route == nil:
		ag.Verdict, ag.Detail = Unknown, fmt.Sprintf("live: %v", routeErr)
		return ag
	case *ag.LiveV2 != want:
		ag.Verdict, ag.Detail = Drift, fmt.Sprintf("live v2 %d%%, git and Argo CD say %d%%", *ag.LiveV2, want)
		return ag
	case app.Sync == argocd.SyncOutOfSync:
		ag.Verdict, ag.Detail = Drift, "Argo CD reports resources OutOfSync with "+short(commit)
		return ag
	}
	ag.Verdict = InSync
	return ag
}

// Observe reads the application of service in env from Argo CD and the service's live route from
// the mesh, and compares them with git (commit, release) as Compare does. apps or routes may be
// nil with the error that kept them from opening (appsErr, routesErr); the verdict is then
// unknown, saying why.
func Observe(ctx context.Context, apps argocd.Apps, appsErr error, routes Routes, routesErr error,
	env, service, commit string, release gitops.Release,
) Agreement {
	var app *argocd.App
	if appsErr == nil && apps != nil {
		a, err := apps.Get(ctx, gitops.ApplicationName(service, env))
		app, appsErr = &a, err
	} else if appsErr == nil {
		appsErr = fmt.Errorf("Argo CD is not configured")
	}
	var route *mesh.Route
	if routesErr == nil && routes != nil {
		rt, err := routes.Route(ctx, service)
		route, routesErr = &rt, err
	} else if routesErr == nil {
		routesErr = fmt.Errorf("the mesh is not configured")
	}
	return Compare(commit, release, app, appsErr, route, routesErr)
}

// syncedAt reports whether Argo CD's last sync deployed commit.
func syncedAt(app *argocd.App, commit string) bool {
	if op := app.Operation; op != nil && op.Phase == argocd.PhaseSucceeded && !op.DryRun && argocd.RevisionMatches(op.Revision, commit) {
		return true
	}
	if n := len(app.History); n > 0 && argocd.RevisionMatches(app.History[n-1].Revision, commit) {
		return true
	}
	return false
}
