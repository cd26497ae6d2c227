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
//
// A guard outlives transient errors: a git remote that does not answer, or a rollback push the
// remote refuses, is reported to Error and tried again after RetryInterval; only the end of ctx,
// a canary that is gone or a rollback that landed end it.
type Guard struct {
	Gates  *canary.GateEvaluator
	Target canary.GateTarget
	// Interval between evaluations (default 30 seconds).
	Interval time.Duration
	// RetryInterval is the pause after a failed round (default the Interval, at most 5
	// seconds): a failed rollback is retried sooner than the next routine check.
	RetryInterval time.Duration
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
	// Error, when set, hears of each failed round (reading git, pushing the rollback), with
	// the pause before the next one. The guard carries on either way.
	Error func(err error, retryIn time.Duration)
	// After is the clock between evaluations (default time.After); tests inject their own.
	After func(time.Duration) <-chan time.Time
}

// Analysis counts the consecutive breaching checks of one canary against a failure limit: the
// one rule that `canary watch` and the agent's guard share.
type Analysis struct {
	// Limit is how many consecutive breaching checks call for the rollback (default
	// DefaultFailureLimit).
	Limit       int
	consecutive int
}

// Observe takes one check. It returns the breaching criteria, how many consecutive checks
// have breached so far, and whether that reaches the limit. A check without breaches (passing
// or unknown) starts the count again.
func (a *Analysis) Observe(rep canary.GateReport) (breaches []canary.GateResult, consecutive int, due bool) {
	b := rep.Breaches()
	if len(b) == 0 {
		a.consecutive = 0
		return nil, 0, false
	}
	a.consecutive++
	return b, a.consecutive, a.consecutive >= a.limit()
}

func (a *Analysis) limit() int {
	if a.Limit <= 0 {
		return DefaultFailureLimit
	}
	return a.Limit
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
// reporting. Errors on the way are reported to Error and retried.
func (g *Guard) Run(ctx context.Context) (Outcome, error) {
	interval := g.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	retry := g.RetryInterval
	if retry <= 0 {
		retry = min(interval, 5*time.Second)
	}
	after := g.After
	if after == nil {
		after = time.After
	}
	an := &Analysis{Limit: g.FailureLimit}
	for {
		out, err := g.round(ctx, an)
		switch {
		case ctx.Err() != nil:
			return Outcome{}, nil
		case errors.Is(err, ErrCanaryGone) || out.RolledBack:
			return out, err
		}
		wait := interval
		if err != nil {
			wait = retry
			if g.Error != nil {
				g.Error(err, wait)
			}
		}
		select {
		case <-ctx.Done():
			return Outcome{}, nil
		case <-after(wait):
		}
	}
}

// round is one check: is the canary still running, what do the criteria say, and the
// rollback when the breach has held long enough.
func (g *Guard) round(ctx context.Context, an *Analysis) (Outcome, error) {
	if g.Running != nil {
		ok, err := g.Running(ctx)
		if err != nil {
			return Outcome{}, fmt.Errorf("read the canary of %s/%s: %w", g.Target.Service, g.Target.Env, err)
		}
		if !ok {
			return Outcome{}, fmt.Errorf("%w for %s/%s; nothing to watch", ErrCanaryGone, g.Target.Service, g.Target.Env)
		}
	}
	rep, err := g.Gates.Evaluate(ctx, g.Target, canary.GateRollbackCriteria())
	if err != nil {
		return Outcome{}, err
	}
	if g.Report != nil {
		g.Report(rep)
	}
	b, consecutive, due := an.Observe(rep)
	if len(b) > 0 && g.Breach != nil {
		g.Breach(b, consecutive, an.limit())
	}
	if !due || g.Rollback == nil {
		return Outcome{}, nil
	}
	reason := Reason(b)
	if err := g.Rollback(ctx, reason); err != nil {
		// The count stays: the next round that still breaches tries the rollback again.
		return Outcome{Breaches: b, Reason: reason}, fmt.Errorf("rollback after a breach (%s): %w", canary.GateBreachReason(b), err)
	}
	return Outcome{RolledBack: true, Reason: reason, Breaches: b}, nil
}
