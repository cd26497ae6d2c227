package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/come2us/opsctl/pkg/config"
	"github.com/come2us/opsctl/pkg/gitops"
)

// DefaultBakeTime is how long a canary weight must have been committed before the next step.
const DefaultBakeTime = 5 * time.Minute

// ContextBakeTime is the bake time a context asks for: canary.bakeTime, else DefaultBakeTime
// (the CLI and the TUI board both hold steps back by it).
func ContextBakeTime(c *config.Context) time.Duration {
	if c != nil {
		if d, ok := c.CanaryBakeTime(); ok {
			return d
		}
	}
	return DefaultBakeTime
}

// ErrBaking means the canary's current weight has not been committed for its bake time yet.
var ErrBaking = errors.New("the canary is still baking")

// WithBakeTime holds back every plan that raises a running canary's weight (step, set upwards,
// promote) until the newest commit to the service's values file is at least d old by now (the
// git commit time; now defaults to time.Now). Rollbacks, lowering the weight and starting a
// canary are never held back. d ≤ 0 turns the bake time off. Skipping the gates with a reason
// skips it too.
func WithBakeTime(d time.Duration, now func() time.Time) Option {
	return func(c *Controller) {
		if d <= 0 {
			c.bake = nil
			return
		}
		if now == nil {
			now = time.Now
		}
		c.bake = &bake{d: d, now: now}
	}
}

type bake struct {
	d   time.Duration
	now func() time.Time
}

// raises reports whether p widens a running canary: the plans the gates judge.
func raises(p *Plan) bool {
	_, running := PhaseOf(p.From.Canary)
	return running && !(p.To.Canary.Enabled && p.To.Canary.Weight <= p.From.Canary.Weight)
}

// check refuses p while the current weight is younger than the bake time, saying how long
// remains.
func (b *bake) check(ctx context.Context, store Store, p *Plan) error {
	if !raises(p) {
		return nil
	}
	es, err := store.History(ctx, gitops.HistoryQuery{Env: p.Env, Service: p.Service, Limit: 1})
	if err != nil {
		return &GateError{Gate: "bake", Err: fmt.Errorf("cannot tell when %d%% was committed: %w", p.From.Canary.Weight, err)}
	}
	if len(es) == 0 {
		return nil // no commit to date the weight: nothing to wait for
	}
	since := es[0].Time
	age := b.now().Sub(since)
	if age >= b.d {
		return nil
	}
	left := (b.d - age).Round(time.Second)
	if left <= 0 {
		left = time.Second
	}
	return &GateError{Gate: "bake", Err: fmt.Errorf("%w: %d%% was committed %s ago (%s, %s), and a weight bakes for %s before the next step: %s remain (try again after %s; a rollback is never held back)",
		ErrBaking, p.From.Canary.Weight, max(age, 0).Round(time.Second), gitops.ShortHash(es[0].Commit), since.UTC().Format("15:04:05 UTC"), b.d, left,
		since.Add(b.d).UTC().Format("15:04:05 UTC"))}
}
