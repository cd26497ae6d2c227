package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// PlanGate returns the metrics Gate of the canary policy: it refuses a plan that raises the
// canary's weight (step, set upwards, promote) while any rollback criterion, or any pass
// criterion of the phase the canary is leaving, does not pass. Unknown counts as not passing.
// Lowering the weight, and starting a canary (nothing to measure yet), are never refused. namespace overrides
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

// ErrNoPrometheus means the context configures no Prometheus for the gates to read.
var ErrNoPrometheus = errors.New("this context has no Prometheus (prometheus.url is not set)")

// EvaluatorGates is the GateSource both front ends give the Controller: the PlanGate of the
// evaluator open returns for the environment, in the namespace namespace returns ("" means
// come2us-<env>). A nil open fails with ErrNoPrometheus; open's own error is returned as is
// (openers return ErrNoPrometheus for a context without one). report, when set, receives each
// evaluation.
func EvaluatorGates(open func(env string) (*GateEvaluator, error), namespace func(env string) string, report func(GateReport)) GateSource {
	return func(env string) (Gate, error) {
		if open == nil {
			return nil, ErrNoPrometheus
		}
		ev, err := open(env)
		if err != nil {
			return nil, err
		}
		ns := ""
		if namespace != nil {
			ns = namespace(env)
		}
		return ev.PlanGate(ns, report), nil
	}
}
