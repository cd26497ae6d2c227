package redrive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/come2us/opsctl/pkg/replay"
)

// Report is what one pass did (or, dry, would do).
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Policy is the digest of the policy the pass applied.
	Policy string `json:"policy"`
	DryRun bool   `json:"dryRun,omitempty"`
	// Paused says the policy is paused: the pass redrove nothing.
	Paused bool `json:"paused,omitempty"`
	// DLTs counts the dead-letter topics the pass looked at.
	DLTs int         `json:"dlts"`
	Runs []RunReport `json:"runs"`
}

// RunReport is one rule on one DLT in a pass: its plan and, when records were due and the pass
// was not dry, the replay run that redrove them.
type RunReport struct {
	DLT  string `json:"dlt"`
	Rule string `json:"rule"`
	// Selection is the run's selection as the ledger records it.
	Selection string `json:"selection"`
	// Due counts the records the plan found due; Refused those the replay engine refuses
	// (no original topic, a target off the allowlist or missing): they wait for an operator.
	Due      int64                `json:"due"`
	Refused  int64                `json:"refused"`
	Refusals []replay.RefusalPlan `json:"refusals,omitempty"`
	// Summary is the replay run, nil when nothing was due, the rule is paused, or the pass was
	// dry.
	Summary *replay.Summary `json:"summary,omitempty"`
	// Paused says the rule is paused: it was planned (so its records are counted) but not run.
	Paused bool `json:"paused,omitempty"`
	// Note says something that did not stop the pass: another replay of the DLT took over.
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// Redriven counts the records the pass replayed.
func (r *Report) Redriven() int {
	n := 0
	for _, run := range r.Runs {
		if run.Summary != nil {
			n += run.Summary.Replayed
		}
	}
	return n
}

// Pass applies the policy once to every dead-letter topic on the cluster, with ages counted
// from clock() when it starts: for each rule
// that reads a DLT, in policy order, it plans a replay of the records due (changing nothing)
// and, when some are and dryRun is false, replays them, bounded by the plan's end offsets, as
// a run whose reason names the rule. The report says what was done even when an error stopped
// the pass: a broker gone silent stops it at once (nothing after waits on it); an error on one
// DLT is reported and the others are still served.
func Pass(ctx context.Context, e *replay.Engine, p *Policy, clock func() time.Time, dryRun bool) (_ *Report, err error) {
	now := clock()
	rep := &Report{Started: now, Policy: p.Digest, DryRun: dryRun, Paused: p.Paused, Runs: []RunReport{}}
	defer func() { rep.Finished = clock() }()
	if p.Paused && !dryRun {
		return rep, nil
	}
	dlts, err := e.DLTs(ctx)
	if err != nil {
		return rep, fmt.Errorf("redrive pass: list the dead-letter topics: %w; nothing was redriven", err)
	}
	rep.DLTs = len(dlts)
	var errs []error
	for _, topic := range dlts {
		sel, err := p.Selector(topic, now)
		if err != nil {
			return rep, fmt.Errorf("redrive pass: %w; nothing more was redriven", err)
		}
		for _, rs := range sel.Rules {
			if rs.Due == nil {
				continue // a hold rule
			}
			run, err := passRule(ctx, e, p, &rs, topic, dryRun || p.Paused)
			if err == nil {
				rep.Runs = append(rep.Runs, run)
				continue
			}
			if errors.Is(err, replay.ErrUnknownTopic) && run.Summary == nil {
				break // the DLT was deleted since it was listed: nothing of it to redrive
			}
			run.Error = err.Error()
			rep.Runs = append(rep.Runs, run)
			if stops(ctx, err) {
				return rep, fmt.Errorf("redrive pass stopped at %s (rule %s): %w; %s", topic, rs.Rule.Name, err, rep.done())
			}
			errs = append(errs, fmt.Errorf("%s (rule %s): %w", topic, rs.Rule.Name, err))
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("redrive pass: %w; %s", errors.Join(errs...), rep.done())
	}
	return rep, nil
}

// done says what a pass that ended with an error had redriven, so the error tells what was
// done as well as what went wrong.
func (r *Report) done() string {
	n := r.Redriven()
	if n == 0 {
		return "nothing was redriven"
	}
	return fmt.Sprintf("%d records were redriven before it (committed; the ledger has them)", n)
}

// stops reports whether an error ends the pass: the caller gave up, or a broker is silent, so
// every further step would wait on it too.
func stops(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, replay.ErrBrokerSilent) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

// passRule plans one rule on one DLT and, unless dry, replays what is due.
func passRule(ctx context.Context, e *replay.Engine, p *Policy, rs *RuleSelector, topic string, dry bool) (RunReport, error) {
	r := rs.Rule
	req := replay.Request{
		Topic:      topic,
		Selection:  replay.Selection{Until: rs.Until, Where: rs.Due},
		Reason:     p.Reason(r),
		MaxReplays: r.MaxReplays,
		Rate:       r.Rate,
	}
	run := RunReport{DLT: topic, Rule: r.Name, Selection: req.Selection.Describe(), Paused: r.Paused}
	plan, err := e.Plan(ctx, req)
	if err != nil {
		return run, fmt.Errorf("plan: %w", err)
	}
	run.Due, run.Refused, run.Refusals = plan.Replay, plan.Refused, plan.Refusals
	if plan.Replay == 0 || dry || r.Paused {
		return run, nil
	}
	// The run replays what the plan saw and nothing that arrived since: those records are
	// younger than the ladder allows anyway, and the next pass plans them.
	req.Bound = plan.EndOffsets
	sum, err := e.Replay(ctx, req)
	run.Summary = sum
	if errors.Is(err, replay.ErrFenced) {
		// Another replay of this DLT (an operator's, another agent's) took its transactional
		// ids over: what this run committed is in the ledger, and the next pass plans the rest.
		run.Note = err.Error()
		return run, nil
	}
	if err != nil {
		return run, fmt.Errorf("replay: %w", err)
	}
	return run, nil
}
