package canary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/come2us/opsctl/pkg/gitops"
)

// Store is what the Controller needs from the GitOps repository. *gitops.Repo implements it.
type Store interface {
	Read(ctx context.Context, env, service string) (gitops.Snapshot, error)
	Apply(ctx context.Context, c gitops.Change) (gitops.Result, error)
	History(ctx context.Context, q gitops.HistoryQuery) ([]gitops.Entry, error)
}

// Gate checks a plan before it is applied, typically the current phase's pass criteria against
// live metrics. A non-nil error stops the plan; wrap it in a *GateError to name the gate.
// Gates are not consulted for rollbacks: going back to v1 must always be possible. A gate that
// cannot decide (no data, Prometheus unreachable) must return an error: unknown is not a pass.
type Gate interface {
	Check(ctx context.Context, p *Plan) error
}

// GateFunc adapts a function to Gate.
type GateFunc func(ctx context.Context, p *Plan) error

// Check calls f.
func (f GateFunc) Check(ctx context.Context, p *Plan) error { return f(ctx, p) }

// GateError reports which gate stopped a plan and why; nothing was changed.
type GateError struct {
	Gate string
	Err  error
}

// Error names the gate, says nothing was changed and how to move traffic anyway.
func (e *GateError) Error() string {
	return fmt.Sprintf("gate %s: %v; nothing was changed (fix the cause, or skip the gates with --skip-gates and a --reason, which the commit records)", e.Gate, e.Err)
}

// ErrNoGates means a gated action found no gate to consult, typically because the context has
// no Prometheus. The canary policy refuses to move traffic nobody can judge, unless the plan
// skips the gates with a reason.
var ErrNoGates = errors.New("no gate can judge this canary")

// GateSource opens the gate for a plan's environment when a gated plan is executed (the
// context's Prometheus, say). Its error refuses the plan: a gate that cannot be consulted is not
// a pass.
type GateSource func(env string) (Gate, error)

// Unwrap returns the gate's reason.
func (e *GateError) Unwrap() error { return e.Err }

// Follower runs after a plan's commit reached the remote, e.g. to wait until Argo CD has
// synced it. Its error is returned with the (successful) Outcome: the change is in git either
// way.
type Follower interface {
	Follow(ctx context.Context, p *Plan, res gitops.Result) error
}

// FollowerFunc adapts a function to Follower.
type FollowerFunc func(ctx context.Context, p *Plan, res gitops.Result) error

// Follow calls f.
func (f FollowerFunc) Follow(ctx context.Context, p *Plan, res gitops.Result) error {
	return f(ctx, p, res)
}

// Controller is the canary service: it plans and applies canary operations against a Store
// under the one canary policy that every front end (opsctl canary, the TUI board, watch) gets
// by calling it rather than re-deciding:
//
//   - start, step, set and promote are gated (Action.Gated); rollback never is;
//   - a gate that fails or cannot decide refuses the plan, and nothing is changed;
//   - with no gate at all (no Prometheus in the context) a gated plan is refused with
//     ErrNoGates, unless the operator skips the gates (Op.SkipGates) with a reason, which the
//     commit records in the Canary-Gates-Skipped trailer;
//   - with a bake time (WithBakeTime), a plan widening the canary waits until the current
//     weight's commit is that old;
//   - followers (wait for Argo CD and the mesh) run after the push, in order.
type Controller struct {
	store     Store
	gates     []Gate
	sources   []GateSource
	followers []Follower
	bake      *bake
}

// Option configures a Controller.
type Option func(*Controller)

// WithGate adds a gate checked, in order, before every gated plan.
func WithGate(g Gate) Option { return func(c *Controller) { c.gates = append(c.gates, g) } }

// WithGates adds a gate opened per plan from src, checked after the WithGate gates. src's error
// (no Prometheus configured) refuses gated plans that do not skip the gates.
func WithGates(src GateSource) Option {
	return func(c *Controller) { c.sources = append(c.sources, src) }
}

// WithFollower adds a step run after every applied plan.
func WithFollower(f Follower) Option {
	return func(c *Controller) { c.followers = append(c.followers, f) }
}

// New returns a Controller over store.
func New(store Store, opts ...Option) *Controller {
	c := &Controller{store: store}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Plan reads the service's values file at the remote head and validates op against it.
func (c *Controller) Plan(ctx context.Context, env, service string, op Op, reason string) (*Plan, error) {
	snap, err := c.store.Read(ctx, env, service)
	if err != nil {
		return nil, err
	}
	return NewPlan(snap, op, reason)
}

// Outcome is an applied plan.
type Outcome struct {
	Plan   *Plan
	Result gitops.Result
}

// Execute applies the policy's gates and then the plan: one commit pushed to the GitOps
// remote. A refusal is a *GateError and nothing is changed. If the file changed since the plan
// was made, the Store returns a *gitops.ConflictError and nothing is changed. Follower errors
// come back together with the Outcome.
func (c *Controller) Execute(ctx context.Context, p *Plan) (*Outcome, error) {
	if err := c.checkGates(ctx, p); err != nil {
		return nil, err
	}
	res, err := c.store.Apply(ctx, p.Change())
	if err != nil {
		return nil, err
	}
	out := &Outcome{Plan: p, Result: res}
	var errs []error
	for _, f := range c.followers {
		if err := f.Follow(ctx, p, res); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s is pushed as %s, but: %w", p.Summary(), gitops.ShortHash(res.Commit), errors.Join(errs...))
	}
	return out, nil
}

// checkGates is the gate half of the policy.
func (c *Controller) checkGates(ctx context.Context, p *Plan) error {
	if !p.Op.Action.Gated() || p.Op.SkipGates {
		return nil
	}
	gates := slices.Clone(c.gates)
	for _, src := range c.sources {
		g, err := src(p.Env)
		if err != nil {
			return &GateError{Gate: "metrics", Err: fmt.Errorf("%w: %w", ErrNoGates, err)}
		}
		gates = append(gates, g)
	}
	if len(gates) == 0 {
		return &GateError{Gate: "metrics", Err: fmt.Errorf("%w: no gate is configured for %s", ErrNoGates, p.Env)}
	}
	if c.bake != nil {
		if err := c.bake.check(ctx, c.store, p); err != nil {
			return err
		}
	}
	for _, g := range gates {
		if err := g.Check(ctx, p); err != nil {
			var ge *GateError
			if errors.As(err, &ge) {
				return err
			}
			return &GateError{Gate: fmt.Sprintf("%T", g), Err: err}
		}
	}
	return nil
}

// Status is the canary state of one service in one environment.
type Status struct {
	Env     string
	Service string
	// Path and Commit locate the values file read.
	Path   string
	Commit string
	// Release holds the stable and canary tags and the weight.
	Release gitops.Release
	// Phase is set while a canary runs.
	Phase *Phase
	// LastChange is the newest commit that touched the file, if any.
	LastChange *gitops.Entry
	// Warnings describe states the chart would reject or ignore.
	Warnings []string
}

// Running reports whether a canary is enabled.
func (s Status) Running() bool { return s.Release.Canary.Enabled }

// Status reads the service's canary state and its last change.
func (c *Controller) Status(ctx context.Context, env, service string) (Status, error) {
	snap, err := c.store.Read(ctx, env, service)
	if err != nil {
		return Status{}, err
	}
	st := Status{Env: env, Service: service, Path: snap.Path, Commit: snap.Commit, Release: snap.Release}
	if ph, ok := PhaseOf(snap.Release.Canary); ok {
		st.Phase = &ph
	}
	cn := snap.Release.Canary
	if cn.Enabled && cn.Tag == "" {
		st.Warnings = append(st.Warnings, "canary.enabled is true but canary.image.tag is empty: the chart refuses to render")
	}
	if !cn.Enabled && cn.Weight != 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("canary.weight is %d but the canary is disabled: no traffic goes to v2", cn.Weight))
	}
	es, err := c.store.History(ctx, gitops.HistoryQuery{Env: env, Service: service, Limit: 1})
	if err != nil {
		return Status{}, err
	}
	if len(es) > 0 {
		st.LastChange = &es[0]
	}
	return st, nil
}

// History lists canary changes made through opsctl, newest first. Empty env or service mean
// all; limit 0 means the Store's default.
func (c *Controller) History(ctx context.Context, env, service string, limit int) ([]gitops.Entry, error) {
	es, err := c.store.History(ctx, gitops.HistoryQuery{Env: env, Service: service, Limit: limit, OpsctlOnly: true})
	if err != nil {
		return nil, err
	}
	kept := es[:0]
	for _, e := range es {
		if strings.HasPrefix(e.Action, "canary-") {
			kept = append(kept, e)
		}
	}
	return kept, nil
}
