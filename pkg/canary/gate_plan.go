package canary

import (
	"context"
	"fmt"
	"strings"
)

// PlanGate returns a Gate for the Controller (`step --gate`): it refuses a plan that raises
// the canary's weight while any rollback criterion, or any pass criterion of the phase the
// canary is leaving, does not pass. Unknown counts as not passing. Lowering the weight, and
// starting a canary (nothing to measure yet), are never refused. namespace overrides
// come2us-<env> when set; report, when set, receives the evaluation.
func (e *GateEvaluator) PlanGate(namespace string, report func(GateReport)) Gate {
	return GateFunc(func(ctx context.Context, p *Plan) error {
		phase, running := PhaseOf(p.From.Canary)
		if !running || (p.To.Canary.Enabled && p.To.Canary.Weight <= p.From.Canary.Weight) {
			return nil
		}
		target := GateTarget{Service: p.Service, Env: p.Env, Namespace: namespace}
		rep, err := e.Evaluate(ctx, target, GateCriteria(phase.Number))
		if err != nil {
			return &GateError{Gate: "metrics", Err: err}
		}
		if report != nil {
			report(rep)
		}
		blocking := rep.Blocking()
		if len(blocking) == 0 {
			return nil
		}
		parts := make([]string, 0, len(blocking))
		for _, r := range blocking {
			parts = append(parts, fmt.Sprintf("%s %s: %s (%s)", r.Criterion.Name, r.Verdict, r.Display, r.Criterion.ThresholdText()))
		}
		return &GateError{Gate: "metrics", Err: fmt.Errorf("%s may not be left yet: %s", phase, strings.Join(parts, "; "))}
	})
}
