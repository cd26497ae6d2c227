package argocd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Reasons a Wait ends without its conditions; a *WaitError wraps one of them.
var (
	// ErrWaitTimeout means the conditions did not all arrive in time.
	ErrWaitTimeout = errors.New("timed out")
	// ErrSyncFailed means the sync operation finished as Failed or Error.
	ErrSyncFailed = errors.New("sync failed")
	// ErrDegraded means the application is synced but Degraded, and the caller asked to stop
	// there rather than wait for it to recover.
	ErrDegraded = errors.New("health degraded")
)

// WaitFor is what Wait waits for. With no condition set it waits for Synced, Healthy and no
// running operation, as `argocd app wait` does.
type WaitFor struct {
	// Synced waits for sync status Synced.
	Synced bool
	// Healthy waits for health Healthy.
	Healthy bool
	// Revision waits until Argo CD reports this revision (a full or abbreviated commit).
	Revision string
	// OperationDone waits until no operation is requested or running.
	OperationDone bool
	// FailOnDegraded ends the wait as soon as the application is Degraded with nothing left
	// to sync, instead of waiting for it to recover.
	FailOnDegraded bool
	// Timeout bounds the wait (default 5 minutes).
	Timeout time.Duration
}

// DefaultWaitTimeout is WaitFor's timeout when none is given.
const DefaultWaitTimeout = 5 * time.Minute

func (w WaitFor) normalized() WaitFor {
	if !w.Synced && !w.Healthy && w.Revision == "" && !w.OperationDone {
		w.Synced, w.Healthy, w.OperationDone = true, true, true
	}
	if w.Timeout <= 0 {
		w.Timeout = DefaultWaitTimeout
	}
	return w
}

// Unmet lists, one phrase each, the conditions app does not meet yet ("health is Progressing
// (want Healthy)"); empty when all are met.
func (w WaitFor) Unmet(app App) []string {
	w = w.normalized()
	var out []string
	if w.Revision != "" && !RevisionMatches(app.Revision, w.Revision) {
		got := ShortRevision(app.Revision)
		if got == "" {
			got = "unknown"
		}
		out = append(out, fmt.Sprintf("revision is %s (want %s)", got, ShortRevision(w.Revision)))
	}
	if w.Synced && app.Sync != SyncSynced {
		out = append(out, fmt.Sprintf("sync is %s (want %s)", app.Sync, SyncSynced))
	}
	if w.Healthy && app.Health != HealthHealthy {
		s := fmt.Sprintf("health is %s (want %s)", app.Health, HealthHealthy)
		if m := app.HealthDetail(); m != "" {
			s += ": " + m
		}
		out = append(out, s)
	}
	if w.OperationDone && app.Operation.Running() {
		out = append(out, fmt.Sprintf("a sync operation is %s", strings.ToLower(app.Operation.Phase)))
	}
	return out
}

// HealthDetail names what makes an application unhealthy: its health message, else the first
// unhealthy resource ("Deployment order-service-v2 is Degraded (...)"); empty when nothing
// says.
func (app App) HealthDetail() string {
	if app.HealthMessage != "" {
		return oneLine(app.HealthMessage)
	}
	for _, r := range app.Resources {
		if r.Health != "" && r.Health != HealthHealthy {
			s := fmt.Sprintf("%s %s is %s", r.Kind, r.Name, r.Health)
			if r.HealthMessage != "" {
				s += " (" + oneLine(r.HealthMessage) + ")"
			}
			return s
		}
	}
	return ""
}

// WaitError says why a wait ended without all its conditions and which were missing.
type WaitError struct {
	// Reason is ErrWaitTimeout, ErrSyncFailed or ErrDegraded.
	Reason error
	// App is the application's name; Last its state when the wait ended.
	App  string
	Last App
	// Missing are the unmet conditions (see WaitFor.Unmet).
	Missing []string
	// Timeout is the wait's bound (for ErrWaitTimeout).
	Timeout time.Duration
}

func (e *WaitError) Error() string {
	switch {
	case errors.Is(e.Reason, ErrSyncFailed):
		msg := "no message"
		if e.Last.Operation != nil && e.Last.Operation.Message != "" {
			msg = oneLine(e.Last.Operation.Message)
		}
		return fmt.Sprintf("sync of %s failed: %s", e.App, msg)
	case errors.Is(e.Reason, ErrDegraded):
		s := fmt.Sprintf("%s is Degraded", e.App)
		if d := e.Last.HealthDetail(); d != "" {
			s += ": " + d
		}
		return s
	}
	return fmt.Sprintf("timed out after %s waiting for %s: %s", e.Timeout, e.App, strings.Join(e.Missing, "; "))
}

// Unwrap lets errors.Is match the reason.
func (e *WaitError) Unwrap() error { return e.Reason }

// errWaitDone stops the watch once every condition holds.
var errWaitDone = errors.New("conditions met")

// Wait blocks until the application meets every condition of want, then returns its state.
// It ends early with a *WaitError when a sync operation started during the wait (or running
// when it began) fails, or, with FailOnDegraded, when the application is Degraded with
// nothing left to sync. On timeout the *WaitError lists the conditions that did not arrive.
func Wait(ctx context.Context, apps Apps, name string, want WaitFor) (App, error) {
	want = want.normalized()
	first, err := apps.Get(ctx, name)
	if err != nil {
		return App{}, err
	}
	initial := first.Operation
	last := first
	judge := func(a App) error {
		if f := want.failure(initial, a); f != nil {
			return &WaitError{Reason: f, App: name, Last: a, Missing: want.Unmet(a)}
		}
		if len(want.Unmet(a)) == 0 {
			return errWaitDone
		}
		return nil
	}
	if err := judge(first); err != nil {
		if errors.Is(err, errWaitDone) {
			return first, nil
		}
		return first, err
	}

	wctx, cancel := context.WithTimeout(ctx, want.Timeout)
	defer cancel()
	err = apps.Watch(wctx, name, func(ev Event) error {
		if ev.Type == EventDeleted {
			return &Error{Kind: ErrAppNotFound, Msg: fmt.Sprintf("application %q was deleted while waiting for it", name)}
		}
		last = ev.App
		return judge(ev.App)
	})
	switch {
	case errors.Is(err, errWaitDone):
		return last, nil
	case err != nil:
		return last, err
	case ctx.Err() != nil:
		return last, ctx.Err()
	}
	// The watch ended because the timeout passed.
	return last, &WaitError{Reason: ErrWaitTimeout, App: name, Last: last, Missing: want.Unmet(last), Timeout: want.Timeout}
}

// failure reports a state that ends the wait without success: a failed sync operation (of the
// awaited revision, or any that is not the stale one seen when the wait began), or, with
// FailOnDegraded, Degraded health with nothing left to sync.
func (w WaitFor) failure(initial *Operation, a App) error {
	if op := a.Operation; op.Failed() {
		// A failure of the awaited revision counts however old; any other only when it is
		// not the finished operation already there when the wait began.
		if (w.Revision != "" && RevisionMatches(op.Revision, w.Revision)) || initial == nil || initial.Running() || !sameOperation(initial, op) {
			return ErrSyncFailed
		}
	}
	if w.FailOnDegraded && w.Healthy && a.Health == HealthDegraded && !a.Operation.Running() &&
		(!w.Synced || a.Sync == SyncSynced) && (w.Revision == "" || RevisionMatches(a.Revision, w.Revision)) {
		return ErrDegraded
	}
	return nil
}

func sameOperation(a, b *Operation) bool {
	if a.StartedAt == nil || b.StartedAt == nil {
		return a.StartedAt == nil && b.StartedAt == nil && a.Phase == b.Phase && a.Revision == b.Revision
	}
	return a.StartedAt.Equal(*b.StartedAt)
}
