package canary

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/come2us/opsctl/pkg/argocd"
	"github.com/come2us/opsctl/pkg/canary"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/mesh"
	"github.com/come2us/opsctl/pkg/rollout"
)

// Backend is what the board reads and does. New's default (Deps.Backend) is built on
// pkg/canary, pkg/rollout, pkg/argocd and pkg/mesh, exactly as `opsctl canary` is; tests may
// substitute their own.
type Backend interface {
	// Board reads every env × service: git's state and, when configured, Argo CD and the mesh.
	Board(ctx context.Context) ([]Row, error)
	// Gates judges the running canary of st on the rollback and current-phase criteria.
	Gates(ctx context.Context, st canary.Status) (canary.GateReport, error)
	// Plan validates op against the remote head and returns the plan (with a placeholder
	// reason) and where it would be pushed.
	Plan(ctx context.Context, env, service string, op canary.Op) (*canary.Plan, string, error)
	// Execute commits and pushes p with reason, then follows it into Argo CD and the mesh,
	// reporting each stage through progress. The Outcome is returned once pushed, even when
	// the follow fails.
	Execute(ctx context.Context, p *canary.Plan, reason string, progress func(Progress)) (*canary.Outcome, error)
}

// Row is one env × service of the board.
type Row struct {
	Env     string
	Service string
	// Status is git's view; Err says why it could not be read.
	Status canary.Status
	Err    error
	// Live is what Argo CD and the mesh report, nil when Argo CD is not configured.
	Live *rollout.Agreement
}

// Progress is one stage of an Execute.
type Progress struct {
	// Frac is how far the change has come (pushed 0.3, synced 0.7, live 1.0).
	Frac float64
	Line string
	// Commit is set once the change is pushed.
	Commit string
}

// Deps are the parts the default Backend is built from; pkg/cmd/tui fills them from the
// selected context with pkg/cmd/canary's own openers.
type Deps struct {
	// OpenRepo opens the GitOps repository; it is opened for each read or change and closed
	// right after, so `opsctl canary` in another terminal is never locked out.
	OpenRepo func(ctx context.Context) (*gitops.Repo, error)
	// Apps is Argo CD, nil when the context configures none (the live columns are then off).
	Apps argocd.Apps
	// Mesh opens the live VirtualService reader of an environment; nil skips the mesh.
	Mesh func(env string) (*mesh.Reader, error)
	// Gates opens the gate evaluator of an environment; nil when Prometheus is not configured
	// (no gate table, and the canary service refuses every gated change).
	Gates func(env string) (*canary.GateEvaluator, error)
	// Namespace is the workloads' namespace of env ("" means come2us-<env>).
	Namespace func(env string) string
	// FollowTimeout bounds following a pushed change (default 5 minutes).
	FollowTimeout time.Duration
	// ReadTimeout bounds one board read of Argo CD and the mesh (default 10 seconds).
	ReadTimeout time.Duration
	// BakeTime holds a step back until the current weight has been committed that long, as
	// `opsctl canary step` does (canary.ContextBakeTime); 0 turns it off. Now is the clock it
	// is measured with (nil: time.Now).
	BakeTime time.Duration
	Now      func() time.Time
}

// NewBackend returns the default Backend over d.
func NewBackend(d Deps) Backend {
	if d.FollowTimeout <= 0 {
		d.FollowTimeout = argocd.DefaultWaitTimeout
	}
	if d.ReadTimeout <= 0 {
		d.ReadTimeout = 10 * time.Second
	}
	if d.Namespace == nil {
		d.Namespace = func(string) string { return "" }
	}
	return &backend{d: d, readers: map[string]*mesh.Reader{}, readerErr: map[string]error{}}
}

type backend struct {
	d Deps
	// repo serialises repository use: git allows one fetch or commit at a time in a working
	// copy.
	repo sync.Mutex

	mu        sync.Mutex
	readers   map[string]*mesh.Reader
	readerErr map[string]error
}

func (b *backend) withRepo(ctx context.Context, fn func(*gitops.Repo) error) error {
	if b.d.OpenRepo == nil {
		return errors.New("no GitOps repository: set gitops.dir or gitops.repo in the context")
	}
	b.repo.Lock()
	defer b.repo.Unlock()
	r, err := b.d.OpenRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

func (b *backend) mesh(env string) (rollout.Routes, error) {
	if b.d.Mesh == nil {
		return nil, errors.New("the mesh is not configured")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if r, ok := b.readers[env]; ok {
		return r, nil
	}
	if err, ok := b.readerErr[env]; ok {
		return nil, err
	}
	r, err := b.d.Mesh(env)
	if err != nil {
		b.readerErr[env] = err
		return nil, err
	}
	b.readers[env] = r
	return r, nil
}

func (b *backend) Board(ctx context.Context) ([]Row, error) {
	var rows []Row
	err := b.withRepo(ctx, func(repo *gitops.Repo) error {
		ctrl := canary.New(repo)
		for _, env := range gitops.Environments() {
			for _, svc := range gitops.Services() {
				st, err := ctrl.Status(ctx, env, svc)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				rows = append(rows, Row{Env: env, Service: svc, Status: st, Err: err})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.d.Apps == nil {
		return rows, nil
	}
	rctx, cancel := context.WithTimeout(ctx, b.d.ReadTimeout)
	defer cancel()
	for i := range rows {
		r := &rows[i]
		if r.Err != nil {
			continue
		}
		routes, rerr := b.mesh(r.Env)
		ag := rollout.Observe(rctx, b.d.Apps, nil, routes, rerr, r.Env, r.Service, r.Status.Commit, r.Status.Release)
		r.Live = &ag
	}
	return rows, ctx.Err()
}

func (b *backend) Gates(ctx context.Context, st canary.Status) (canary.GateReport, error) {
	if b.d.Gates == nil {
		return canary.GateReport{}, errNoGates
	}
	if st.Phase == nil {
		return canary.GateReport{}, fmt.Errorf("no canary is running for %s/%s", st.Service, st.Env)
	}
	ev, err := b.d.Gates(st.Env)
	if err != nil {
		return canary.GateReport{}, err
	}
	target := canary.GateTarget{Service: st.Service, Env: st.Env, Namespace: b.d.Namespace(st.Env)}
	return ev.Evaluate(ctx, target, canary.GateCriteria(st.Phase.Number))
}

// errNoGates means the context has no Prometheus: the board shows no gate table.
var errNoGates = fmt.Errorf("%w: no gates", canary.ErrNoPrometheus)

// placeholderReason lets a plan be computed before the operator typed the reason; Execute
// replaces it.
const placeholderReason = "(reason to be given at confirmation)"

func (b *backend) Plan(ctx context.Context, env, service string, op canary.Op) (*canary.Plan, string, error) {
	var p *canary.Plan
	var where string
	err := b.withRepo(ctx, func(repo *gitops.Repo) error {
		var err error
		p, err = canary.New(repo).Plan(ctx, env, service, op, placeholderReason)
		where = repo.Remote() + "/" + repo.Branch()
		return err
	})
	return p, where, err
}

// Execute runs the plan through the canary service (pkg/canary's Controller), the same path
// `opsctl canary` takes: the service applies the policy's gates, pushes, then runs the
// followers — the first reports the push, the second (when Argo CD is configured) follows the
// change into Argo CD and the mesh, its stages reported as typed rollout stages.
func (b *backend) Execute(ctx context.Context, p *canary.Plan, reason string, progress func(Progress)) (*canary.Outcome, error) {
	if err := gitops.ValidateReason(reason); err != nil {
		return nil, fmt.Errorf("%w; nothing was changed", err)
	}
	plan := *p
	plan.Reason = reason
	// The first follower reports the push and brings the operator's working copy (repo, set
	// below) up to the pushed commit.
	var repo *gitops.Repo
	opts := []canary.Option{
		canary.WithGates(canary.EvaluatorGates(b.d.Gates, b.d.Namespace, nil)),
		canary.WithBakeTime(b.d.BakeTime, b.d.Now),
		canary.WithFollower(canary.FollowerFunc(func(ctx context.Context, _ *canary.Plan, res gitops.Result) error {
			progress(Progress{Frac: fracPushed, Commit: res.Commit,
				Line: fmt.Sprintf("pushed %s to %s/%s", gitops.ShortHash(res.Commit), res.Remote, res.Branch)})
			if res.AlreadyApplied {
				return nil
			}
			if ok, cerr := repo.CatchUp(ctx); cerr != nil || !ok {
				progress(Progress{Frac: fracPushed, Line: "your working copy was left as it was (it has changes of its own)"})
			}
			return nil
		})),
	}
	if b.d.Apps != nil {
		routes, rerr := b.mesh(plan.Env)
		if rerr != nil {
			routes = nil
		}
		opts = append(opts, canary.WithFollower(canary.FollowerFunc(func(ctx context.Context, p *canary.Plan, res gitops.Result) error {
			if rerr != nil {
				progress(Progress{Frac: fracPushed, Line: "live weights will not be checked: " + rerr.Error()})
			}
			f := &rollout.Follower{Apps: b.d.Apps, Routes: routes, Timeout: b.d.FollowTimeout,
				Stage: func(st rollout.FollowStage, line string) { progress(Progress{Frac: stageFrac[st], Line: line}) }}
			return f.Follow(ctx, p, res)
		})))
	}
	progress(Progress{Frac: 0.1, Line: "committing and pushing " + plan.Subject()})
	var out *canary.Outcome
	err := b.withRepo(ctx, func(r *gitops.Repo) (err error) {
		repo = r
		// opsctl commits from a clone of its own, as `opsctl canary` does: nothing in the
		// operator's working copy can block the change.
		w, closeW, err := r.WriteClone(ctx)
		if err != nil {
			return fmt.Errorf("prepare opsctl's own clone of the GitOps remote: %w; nothing was changed", err)
		}
		defer func() {
			if cerr := closeW(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("release opsctl's clone of the GitOps remote: %w", cerr))
			}
		}()
		out, err = canary.New(w, opts...).Execute(ctx, &plan)
		return err
	})
	if out == nil {
		return nil, err
	}
	if err == nil && b.d.Apps == nil {
		progress(Progress{Frac: 1, Line: "Argo CD is not configured here: not following the sync"})
	}
	return out, err
}

// fracPushed places "pushed" on the progress bar.
const fracPushed = 0.3

// stageFrac places each stage of following a change on the progress bar.
var stageFrac = map[rollout.FollowStage]float64{
	rollout.StageRefreshed:     0.45,
	rollout.StageSyncRequested: 0.55,
	rollout.StageSynced:        0.8,
	rollout.StageLive:          1,
}
