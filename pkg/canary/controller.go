package canary

import (
	"context"
	"errors"
	"fmt"
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
// Gates are not consulted for rollbacks: going back to v1 must always be possible.
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

// Error names the gate.
func (e *GateError) Error() string {
	return fmt.Sprintf("gate %s: %v; nothing was changed", e.Gate, e.Err)
}

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

// Controller plans and applies canary operations against a Store.
type Controller struct {
	store     Store
	gates     []Gate
	followers []Follower
}

// Option configures a Controller.
type Option func(*Controller)

// WithGate adds a gate checked, in order, before every non-rollback plan.
func WithGate(g Gate) Option { return func(c *Controller) { c.gates = append(c.gates, g) } }

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

// Execute checks the gates and applies the plan: one commit pushed to the GitOps remote. If
// the file changed since the plan was made, the Store returns a *gitops.ConflictError and
// nothing is changed. Follower errors come back together with the Outcome.
func (c *Controller) Execute(ctx context.Context, p *Plan) (*Outcome, error) {
	if p.Op.Action != ActionRollback {
		for _, g := range c.gates {
			if err := g.Check(ctx, p); err != nil {
				var ge *GateError
				if errors.As(err, &ge) {
					return nil, err
				}
				return nil, &GateError{Gate: fmt.Sprintf("%T", g), Err: err}
			}
		}
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
