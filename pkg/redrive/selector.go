package redrive

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
)

// Selector is a policy compiled for one DLT at one moment: for each rule that reads the DLT,
// the replay engine's --where expressions of the records the rule claims and of those that are
// due now. Both the pass (which replays Due) and the survey (which classifies every record for
// the metrics) evaluate these same expressions, so they never disagree on what a rule takes.
//
// The expressions read record metadata only (meta.errorCode, meta.exception,
// meta.replayCount, meta.timestamp): a value field of the same name cannot shadow them.
type Selector struct {
	Topic string
	// Now is the moment the ages were computed from.
	Now time.Time
	// Paused is the policy's pause switch.
	Paused bool
	Rules  []RuleSelector

	// claims remembers which rule's Claimed expression holds for a record's error code,
	// exception and replay count — the only fields those expressions read — so a survey of a
	// large DLT evaluates them once per distinct combination rather than once per record.
	claims map[claimKey]int
}

// claimKey is what a Claimed expression reads of a record.
type claimKey struct {
	code, exception string
	count           int
}

// maxClaims bounds the remembered combinations (a DLT has few).
const maxClaims = 4096

// RuleSelector is one rule's part of a Selector.
type RuleSelector struct {
	Rule *Rule
	// Claimed selects the records the rule decides: it names their code or exception, no
	// earlier rule does, and (for a redrive rule) they are under maxReplays.
	Claimed *replay.Where
	// Due selects the claimed records old enough for their step of the ladder; nil for a hold
	// rule.
	Due *replay.Where
	// Until is the newest dead-letter timestamp Due can select (exclusive): a cheap filter
	// applied before a record is decoded.
	Until time.Time
}

// Selector compiles the policy for the DLT topic at now.
func (p *Policy) Selector(topic string, now time.Time) (*Selector, error) {
	s := &Selector{Topic: topic, Now: now, Paused: p.Paused}
	var earlier []string // the claims of the rules before, which take precedence
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.AppliesTo(topic) {
			continue
		}
		claim := claimExpr(r)
		parts := make([]string, 0, len(earlier)+3)
		for _, e := range earlier {
			parts = append(parts, "!"+e)
		}
		parts = append(parts, claim)
		earlier = append(earlier, claim)
		rs := RuleSelector{Rule: r}
		if r.Action == ActionRedrive {
			parts = append(parts, "meta.replayCount < "+strconv.Itoa(r.MaxReplays))
		}
		var err error
		if rs.Claimed, err = replay.CompileWhere(strings.Join(parts, " && ")); err != nil {
			return nil, fmt.Errorf("rule %s on %s: %w", r.Name, topic, err)
		}
		if r.Action == ActionRedrive {
			ladder, until := ladderExpr(r, now)
			rs.Until = until
			if rs.Due, err = replay.CompileWhere(strings.Join(append(parts, ladder), " && ")); err != nil {
				return nil, fmt.Errorf("rule %s on %s: %w", r.Name, topic, err)
			}
		}
		s.Rules = append(s.Rules, rs)
	}
	return s, nil
}

// claimExpr is the expression of the records a rule names.
func claimExpr(r *Rule) string {
	var or []string
	if len(r.ErrorCodes) > 0 {
		or = append(or, "meta.errorCode in "+list(r.ErrorCodes))
	}
	if len(r.Exceptions) > 0 {
		or = append(or, "meta.exception in "+list(r.Exceptions))
	}
	return "(" + strings.Join(or, " || ") + ")"
}

// ladderExpr is the expression of the records old enough for their step of the rule's ladder
// at now, and the newest timestamp any step lets through.
func ladderExpr(r *Rule, now time.Time) (string, time.Time) {
	waits := r.ladder()
	until := now.Add(-waits[0])
	var or []string
	for n, w := range waits {
		at := now.Add(-w)
		if at.After(until) {
			until = at
		}
		op := "=="
		if n == len(waits)-1 {
			op = ">="
		}
		cond := "meta.timestamp < " + date(at)
		if len(waits) > 1 {
			cond = fmt.Sprintf("meta.replayCount %s %d && %s", op, n, cond)
		}
		or = append(or, cond)
	}
	if len(or) == 1 {
		return or[0], until
	}
	return "(" + strings.Join(or, " || ") + ")", until
}

// date renders t as the expression language's date literal, to the millisecond of record
// timestamps.
func date(t time.Time) string {
	return `date("` + t.UTC().Format("2006-01-02T15:04:05.000Z07:00") + `")`
}

// list renders names as the expression language's array literal. Names were checked to hold
// only letters, digits and _ . $ -, so quoting cannot be escaped.
func list(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Class is what the policy makes of one dead letter.
type Class int

// Classes of dead letters.
const (
	// ClassOperator: no rule redrives it (no rule names its code, a hold rule does, or it was
	// replayed maxReplays times): it waits for an operator.
	ClassOperator Class = iota
	// ClassWaiting: a redrive rule claims it and it waits for its step of the ladder (or for
	// a paused rule or policy to resume).
	ClassWaiting
	// ClassDue: a redrive rule replays it on its next pass.
	ClassDue
)

// String names the class as metrics and output do.
func (c Class) String() string {
	switch c {
	case ClassWaiting:
		return "waiting"
	case ClassDue:
		return "due"
	}
	return "operator"
}

// Classify says what the policy makes of the dead letter d (decoded briefly or in full), and
// which rule decided (nil when none claims it). A Selector remembers claims as it classifies:
// it is not safe for concurrent use.
func (s *Selector) Classify(d *dlt.Record) (Class, *Rule, error) {
	i, err := s.claimant(d)
	if err != nil || i < 0 {
		// Claimed by none: no rule names its code, or a redrive rule's poison guard let it go.
		return ClassOperator, nil, err
	}
	rs := &s.Rules[i]
	if rs.Due == nil {
		return ClassOperator, rs.Rule, nil
	}
	due, err := rs.Due.Match(d)
	if err != nil {
		return ClassOperator, nil, err
	}
	if due && !s.Paused && !rs.Rule.Paused {
		return ClassDue, rs.Rule, nil
	}
	return ClassWaiting, rs.Rule, nil
}

// claimant returns the index of the rule whose Claimed expression holds for d, -1 for none.
func (s *Selector) claimant(d *dlt.Record) (int, error) {
	k := claimKey{code: d.ErrorCode, exception: d.Exception, count: d.ReplayCount}
	if i, ok := s.claims[k]; ok {
		return i, nil
	}
	found := -1
	for i := range s.Rules {
		ok, err := s.Rules[i].Claimed.Match(d)
		if err != nil {
			return -1, err
		}
		if ok {
			found = i
			break
		}
	}
	if s.claims == nil {
		s.claims = map[claimKey]int{}
	}
	if len(s.claims) < maxClaims {
		s.claims[k] = found
	}
	return found, nil
}
