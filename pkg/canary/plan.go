package canary

import (
	"fmt"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/come2us/opsctl/pkg/gitops"
)

// Plan is a validated canary operation on one service in one environment, with the exact
// bytes it will write. Showing Diff and calling nothing else is a dry run.
type Plan struct {
	Env     string
	Service string
	Op      Op
	Reason  string
	// Base is the values file the plan was computed from.
	Base gitops.Snapshot
	// From and To are the states before and after.
	From, To gitops.Release
	// After is the values file as the plan will write it.
	After []byte
}

// NewPlan validates op against the snapshot and computes the edited file. Errors wrap
// ErrInvalid, gitops.ErrNoChange or gitops.ErrInvalidChange (a missing reason) and mean
// nothing was changed.
func NewPlan(base gitops.Snapshot, op Op, reason string) (*Plan, error) {
	if err := gitops.ValidateReason(reason); err != nil {
		return nil, err
	}
	to, err := op.Next(base.Release)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", base.Service, base.Env, err)
	}
	after, err := gitops.EditRelease(base.Data, to)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %s: %w", base.Service, base.Env, base.Path, err)
	}
	return &Plan{Env: base.Env, Service: base.Service, Op: op, Reason: reason, Base: base, From: base.Release, To: to, After: after}, nil
}

// Diff returns the unified diff of the values file (a/<path> -> b/<path>).
func (p *Plan) Diff() string {
	return udiff.Unified("a/"+p.Base.Path, "b/"+p.Base.Path, string(p.Base.Data), string(p.After))
}

// Summary describes the plan in one line, e.g.
// "order/prod: canary 1.1.0 10% -> 30% (phase 1: check the main API responses)".
func (p *Plan) Summary() string {
	var what string
	switch p.Op.Action {
	case ActionStart:
		what = fmt.Sprintf("start canary %s at %d%%", p.To.Canary.Tag, p.To.Canary.Weight)
	case ActionPromote:
		what = fmt.Sprintf("promote %s to stable (was %s); canary off", p.From.Canary.Tag, p.From.StableTag)
	case ActionRollback:
		what = fmt.Sprintf("roll back canary %s: %d%% -> 0%%, all traffic to v1 (%s)", p.From.Canary.Tag, p.From.Canary.Weight, p.From.StableTag)
	default:
		what = fmt.Sprintf("canary %s %d%% -> %d%%", p.To.Canary.Tag, p.From.Canary.Weight, p.To.Canary.Weight)
	}
	if ph, ok := PhaseOf(p.To.Canary); ok {
		what += fmt.Sprintf(" (phase %d: %s)", ph.Number, ph.Action)
	}
	if p.Op.Force {
		what += " [forced]"
	}
	if p.Op.SkipGates {
		what += " [gates skipped]"
	}
	return fmt.Sprintf("%s/%s: %s", p.Service, p.Env, what)
}

// Subject is the commit subject for the plan, e.g. "canary order/prod: 1.1.0 10% -> 30%".
func (p *Plan) Subject() string {
	var what string
	switch p.Op.Action {
	case ActionStart:
		what = fmt.Sprintf("start %s at %d%%", p.To.Canary.Tag, p.To.Canary.Weight)
	case ActionPromote:
		what = fmt.Sprintf("promote %s to stable (was %s)", p.From.Canary.Tag, p.From.StableTag)
	case ActionRollback:
		what = fmt.Sprintf("roll back %s (%d%% -> 0%%)", p.From.Canary.Tag, p.From.Canary.Weight)
	default:
		what = fmt.Sprintf("%s %d%% -> %d%%", p.To.Canary.Tag, p.From.Canary.Weight, p.To.Canary.Weight)
	}
	if p.Op.Force {
		what += " [forced]"
	}
	return fmt.Sprintf("canary %s/%s: %s", p.Service, p.Env, what)
}

// TrailerGatesSkipped is the commit trailer of a gated action executed with Op.SkipGates; its
// value is the plan's reason.
const TrailerGatesSkipped = "Canary-Gates-Skipped"

// Change returns the gitops change that applies the plan.
func (p *Plan) Change() gitops.Change {
	var trailers []gitops.Trailer
	if p.Op.SkipGates {
		trailers = append(trailers, gitops.Trailer{Key: TrailerGatesSkipped, Value: p.Reason})
	}
	var reapply func(gitops.Release) (gitops.Release, error)
	if p.Op.Action == ActionRollback {
		// A rollback always wins: whatever was pushed since the plan (a step, a set), it is
		// rolled back on top; only a canary that is already off makes it a no-op.
		reapply = func(found gitops.Release) (gitops.Release, error) {
			return Op{Action: ActionRollback}.Next(found)
		}
	}
	return gitops.Change{
		Reapply:    reapply,
		Trailers:   trailers,
		Env:        p.Env,
		Service:    p.Service,
		Action:     p.Op.Action.Trailer(),
		Reason:     p.Reason,
		Subject:    p.Subject(),
		From:       p.From,
		To:         p.To,
		BaseCommit: p.Base.Commit,
	}
}
