package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/come2us/opsctl/pkg/canary"
)

// Guard polls a canary's rollback criteria and, on a breach that holds for FailureLimit
// consecutive checks, rolls the canary back itself (as Argo Rollouts' AnalysisTemplate
// failureLimit): one noisy check is reported, not acted on. Unknown criteria (no data, too few
// requests, Prometheus down) are reported but never trigger a rollback: an outage of the
// monitoring must not move traffic. An unknown or passing check ends a run of breaches.
type Guard struct {
	Gates  *canary.GateEvaluator
	Target canary.GateTarget
	// Interval between evaluations (default 30 seconds).
	Interval time.Duration
	// Running reports whether the canary still runs; the guard stops when it does not.
	Running func(ctx context.Context) (bool, error)
	// Rollback, when set, rolls the canary back with reason; nil only reports breaches.
	Rollback func(ctx context.Context, reason string) error
	// FailureLimit is how many consecutive checks must breach before the rollback
	// (default DefaultFailureLimit).
	FailureLimit int
	// Report receives every evaluation.
	Report func(canary.GateReport)
	// Breach, when set, hears of each breaching check: its criteria, how many consecutive
	// checks have breached, and the limit at which the guard rolls back.
	Breach func(breaches []canary.GateResult, consecutive, limit int)
	// After is the clock between evaluations (default time.After); tests inject their own.
	After func(time.Duration) <-chan time.Time
}

// DefaultFailureLimit is how many consecutive breaching checks roll a canary back.
const DefaultFailureLimit = 2

// ErrCanaryGone ends a guard whose canary was promoted or rolled back by someone else.
var ErrCanaryGone = errors.New("no canary is running")

// Outcome is how a guard ended.
type Outcome struct {
	// RolledBack is true when the guard rolled the canary back; Reason is the commit reason.
	RolledBack bool
	Reason     string
	// Breaches are the failing criteria of the last evaluation.
	Breaches []canary.GateResult
}

// maxReason is the longest reason the GitOps write path accepts.
const maxReason = 300

// Reason renders breaches as a rollback reason that fits a commit.
func Reason(breaches []canary.GateResult) string {
	r := "auto-rollback: " + canary.GateBreachReason(breaches)
	if len(r) <= maxReason {
		return r
	}
	cut := maxReason - len("…")
	for cut > 0 && !utf8.RuneStart(r[cut]) {
		cut--
	}
	return r[:cut] + "…"
}

// Run evaluates the rollback criteria every Interval until ctx is done (nil error, zero
// Outcome), the canary is gone (ErrCanaryGone), or a breach held for FailureLimit consecutive
// checks: then, with Rollback set, it rolls back and returns RolledBack; without, it keeps
// reporting.
func (g *Guard) Run(ctx context.Context) (Outcome, error) {
	interval := g.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	limit := g.FailureLimit
	if limit <= 0 {
		limit = DefaultFailureLimit
	}
	after := g.After
	if after == nil {
		after = time.After
	}
	consecutive := 0
	for {
		if g.Running != nil {
			ok, err := g.Running(ctx)
			if ctx.Err() != nil {
				return Outcome{}, nil
			}
			if err != nil {
				return Outcome{}, err
			}
			if !ok {
				return Outcome{}, fmt.Errorf("%w for %s/%s; nothing to watch", ErrCanaryGone, g.Target.Service, g.Target.Env)
			}
		}
		rep, err := g.Gates.Evaluate(ctx, g.Target, canary.GateRollbackCriteria())
		if ctx.Err() != nil {
			return Outcome{}, nil
		}
		if err != nil {
			return Outcome{}, err
		}
		if g.Report != nil {
			g.Report(rep)
		}
		b := rep.Breaches()
		if len(b) == 0 {
			consecutive = 0
		} else {
			consecutive++
			if g.Breach != nil {
				g.Breach(b, consecutive, limit)
			}
		}
		if len(b) > 0 && consecutive >= limit && g.Rollback != nil {
			reason := Reason(b)
			if err := g.Rollback(ctx, reason); err != nil {
				return Outcome{Breaches: b, Reason: reason}, fmt.Errorf("rollback after a breach (%s): %w", canary.GateBreachReason(b), err)
			}
			return Outcome{RolledBack: true, Reason: reason, Breaches: b}, nil
		}
		select {
		case <-ctx.Done():
			return Outcome{}, nil
		case <-after(interval):
		}
	}
}
