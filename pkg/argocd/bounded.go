package argocd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bounded gives every request of an Apps a deadline, so that a server which accepted the
// connection and then stopped answering fails a command instead of hanging it. A Watch lasts
// as long as its caller wants, but must deliver its first event within the deadline.
type bounded struct {
	Apps
	timeout time.Duration
}

func (b *bounded) List(ctx context.Context) ([]App, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Apps.List(ctx)
}

func (b *bounded) Get(ctx context.Context, name string) (App, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Apps.Get(ctx, name)
}

func (b *bounded) Refresh(ctx context.Context, name string, hard bool) (App, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Apps.Refresh(ctx, name, hard)
}

// Sync says, when the server did not answer in time, that the sync may have started anyway.
func (b *bounded) Sync(ctx context.Context, name string, opts SyncOptions) (App, error) {
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	a, err := b.Apps.Sync(cctx, name, opts)
	if err != nil && ctx.Err() == nil && (cctx.Err() != nil || timedOut(err)) {
		return a, &Error{Kind: ErrUnreachable, Cause: err,
			Msg: fmt.Sprintf("sync %s: Argo CD did not answer within %s; the sync may or may not have started (check with `opsctl apps get %s`)", name, b.timeout, name)}
	}
	return a, err
}

func (b *bounded) ManagedResources(ctx context.Context, name string) ([]ManagedResource, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Apps.ManagedResources(ctx, name)
}

func (b *bounded) RevisionInfo(ctx context.Context, name, revision string) (Revision, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.Apps.RevisionInfo(ctx, name, revision)
}

// Rollback says, as Sync does, that a rollback Argo CD did not answer in time may have started.
func (b *bounded) Rollback(ctx context.Context, name string, id int64, opts RollbackOptions) (App, error) {
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	a, err := b.Apps.Rollback(cctx, name, id, opts)
	if err != nil && ctx.Err() == nil && (cctx.Err() != nil || timedOut(err)) {
		return a, &Error{Kind: ErrUnreachable, Cause: err,
			Msg: fmt.Sprintf("rollback %s: Argo CD did not answer within %s; the rollback may or may not have started (check with `opsctl apps get %s`)", name, b.timeout, name)}
	}
	return a, err
}

// timedOut reports whether err is a request's deadline passing. gRPC enforces a deadline with
// its own timer and can report DeadlineExceeded a moment before the context says so.
func timedOut(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var e *Error
	if errors.As(err, &e) && e.Cause != nil {
		err = e.Cause
	}
	return status.Code(err) == codes.DeadlineExceeded
}

// Watch ends with ErrUnreachable when no event arrives within the deadline: every watch starts
// with the current state of each application, so silence means the server is not answering.
func (b *bounded) Watch(ctx context.Context, name string, fn func(Event) error) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	started := make(chan struct{})
	var silent atomic.Bool
	timer := time.AfterFunc(b.timeout, func() {
		select {
		case <-started:
		default:
			silent.Store(true)
			cancel()
		}
	})
	defer timer.Stop()
	err := b.Apps.Watch(wctx, name, func(ev Event) error {
		once.Do(func() { close(started) })
		return fn(ev)
	})
	timer.Stop()
	if ctx.Err() == nil && silent.Load() {
		what := "applications"
		if name != "" {
			what = name
		}
		return &Error{Kind: ErrUnreachable, Cause: errors.Join(err, context.DeadlineExceeded),
			Msg: fmt.Sprintf("watch %s: Argo CD sent nothing within %s", what, b.timeout)}
	}
	return err
}
