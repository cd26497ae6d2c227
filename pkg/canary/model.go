// Package canary is the manual, GitOps-driven canary of the design: a person moves the v2
// weight in git through the ladder 10 -> 30 -> 50 -> 100, Argo CD syncs it and Envoy splits the
// traffic. The package holds the rules (phases, ladder, start/step/set/promote/rollback and
// their validation), turns an operation into a Plan with a YAML diff for --dry-run, and applies
// plans through a Store (pkg/gitops). Gates (metric checks before a step) and followers (wait
// for Argo CD after a push) plug into the Controller without changing these rules.
package canary

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/come2us/opsctl/pkg/gitops"
)

// ErrInvalid means an operation is not allowed from the current state or its arguments are
// out of range; nothing was changed.
var ErrInvalid = errors.New("invalid canary operation")

// Ladder returns the weights a canary steps through, in order.
func Ladder() []int { return []int{10, 30, 50, 100} }

// Phase is one row of the design's canary table: the traffic move it makes and what must hold
// before the next one.
type Phase struct {
	Number int
	// From and To are the v2 traffic percentages the phase moves between.
	From, To int
	Action   string
	Criteria string
}

// String renders "phase 1 (10% -> 30%)".
func (p Phase) String() string {
	return fmt.Sprintf("phase %d (%d%% -> %d%%)", p.Number, p.From, p.To)
}

// Phases returns the design's four canary phases.
func Phases() []Phase {
	return []Phase{
		{0, 0, 10, "deploy v2, VirtualService weight 10%", "pods 100% ready, no errors"},
		{1, 10, 30, "check the main API responses", "latency increase < 200 ms, error rate < 1%"},
		{2, 30, 50, "real user traffic", "5xx < 0.3%, business errors < 1%"},
		{3, 50, 100, "full switch", "pods stable, no log anomalies"},
	}
}

// PhaseOf returns the phase a running canary is in: the phase whose move produced its weight
// (10% is phase 0, 30% phase 1, 50% phase 2, 100% phase 3; weights between rungs, set with
// --force, belong to the phase whose range holds them). ok is false when no canary runs.
func PhaseOf(c gitops.Canary) (Phase, bool) {
	if !c.Enabled {
		return Phase{}, false
	}
	for _, p := range Phases() {
		if c.Weight <= p.To {
			return p, true
		}
	}
	return Phases()[3], true
}

// Action names a canary operation. Its value is used in the Opsctl-Action trailer as
// "canary-<action>".
type Action string

// The canary operations.
const (
	ActionStart    Action = "start"
	ActionStep     Action = "step"
	ActionSet      Action = "set"
	ActionPromote  Action = "promote"
	ActionRollback Action = "rollback"
)

// Actions lists every action in the order a canary normally goes through them.
func Actions() []Action {
	return []Action{ActionStart, ActionStep, ActionSet, ActionPromote, ActionRollback}
}

// Trailer returns the Opsctl-Action value ("canary-step").
func (a Action) Trailer() string { return "canary-" + string(a) }

// Gated reports whether the canary policy checks the gates before a's commit: every action
// that may send traffic to v2 (start, step, set, promote). Rollback never is: going back to v1
// must always be possible.
func (a Action) Gated() bool { return a != ActionRollback }

// Op is a requested operation with its arguments.
type Op struct {
	Action Action
	// Tag is the canary image tag (start).
	Tag string
	// Weight is the target weight (set).
	Weight int
	// Force allows weights off the ladder, jumps over phases and promoting before 100%.
	Force bool
	// SkipGates executes a gated action without consulting the gates. The plan's reason is
	// then recorded in the Canary-Gates-Skipped trailer, so the skip is visible in git.
	SkipGates bool
}

// Next returns the state op produces from cur, or an error wrapping ErrInvalid (or
// gitops.ErrNoChange) that says why, naming the flag that would allow it where one exists.
func (op Op) Next(cur gitops.Release) (gitops.Release, error) {
	next := cur
	c := cur.Canary
	if op.SkipGates && !op.Action.Gated() {
		return cur, fmt.Errorf("%w: %s is never gated; there are no gates to skip", ErrInvalid, op.Action)
	}
	switch op.Action {
	case ActionStart:
		if c.Enabled {
			return cur, fmt.Errorf("%w: a canary is already running (%s at %d%%); promote or roll it back first", ErrInvalid, c.Tag, c.Weight)
		}
		if op.Tag == "" {
			return cur, fmt.Errorf("%w: start needs the canary image tag", ErrInvalid)
		}
		if !gitops.ValidTag(op.Tag) {
			return cur, fmt.Errorf("%w: %q is not a valid image tag", ErrInvalid, op.Tag)
		}
		if op.Tag == cur.StableTag {
			return cur, fmt.Errorf("%w: %s is already the stable tag", ErrInvalid, op.Tag)
		}
		next.Canary = gitops.Canary{Enabled: true, Tag: op.Tag, Weight: Ladder()[0]}
	case ActionStep:
		if err := running(c); err != nil {
			return cur, err
		}
		i := slices.IndexFunc(Ladder(), func(w int) bool { return w > c.Weight })
		if i < 0 {
			return cur, fmt.Errorf("%w: the canary already takes 100%% of the traffic; promote it", ErrInvalid)
		}
		next.Canary.Weight = Ladder()[i]
	case ActionSet:
		if err := running(c); err != nil {
			return cur, err
		}
		w := op.Weight
		if w < 0 || w > 100 {
			return cur, fmt.Errorf("%w: weight %d is outside 0-100", ErrInvalid, w)
		}
		if w == c.Weight {
			return cur, fmt.Errorf("%w: the canary is already at %d%%", gitops.ErrNoChange, w)
		}
		if !op.Force {
			if !slices.Contains(Ladder(), w) {
				return cur, fmt.Errorf("%w: weight %d is not on the ladder %s; use --force to set it anyway", ErrInvalid, w, ladderString())
			}
			if next := nextRung(c.Weight); w > next {
				return cur, fmt.Errorf("%w: %d%% -> %d%% skips the %d%% phase; step through it or use --force", ErrInvalid, c.Weight, w, next)
			}
		}
		next.Canary.Weight = w
	case ActionPromote:
		if err := running(c); err != nil {
			return cur, err
		}
		if c.Weight != 100 && !op.Force {
			return cur, fmt.Errorf("%w: the canary takes %d%% of the traffic; step it to 100%% before promoting, or use --force", ErrInvalid, c.Weight)
		}
		next.StableTag = c.Tag
		next.Canary = gitops.Canary{}
	case ActionRollback:
		if !c.Enabled && c.Weight == 0 {
			return cur, fmt.Errorf("%w: no canary is running; all traffic already goes to v1", gitops.ErrNoChange)
		}
		// Weight and switch change in one commit: the seed's "VirtualService back to v1 100%".
		// The tag stays, recording which version was rolled back.
		next.Canary.Enabled = false
		next.Canary.Weight = 0
	default:
		return cur, fmt.Errorf("%w: unknown action %q", ErrInvalid, op.Action)
	}
	return next, nil
}

func running(c gitops.Canary) error {
	if !c.Enabled {
		return fmt.Errorf("%w: no canary is running; start one first", ErrInvalid)
	}
	if c.Tag == "" {
		return fmt.Errorf("%w: the canary is enabled without an image tag; roll it back and start again", ErrInvalid)
	}
	return nil
}

// nextRung returns the first ladder weight above w (100 at the top).
func nextRung(w int) int {
	for _, r := range Ladder() {
		if r > w {
			return r
		}
	}
	return 100
}

func ladderString() string {
	var s []string
	for _, w := range Ladder() {
		s = append(s, strconv.Itoa(w))
	}
	return strings.Join(s, " -> ")
}
