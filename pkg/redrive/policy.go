// Package redrive sends transient dead letters back automatically: a policy names which
// dead-letter topics, which error codes (or exception classes) and how old a record must be,
// with a backoff ladder, a poison guard and a rate limit; a pass replays what the policy
// selects through the replay engine.
//
// Every pass of a rule over a DLT is an ordinary replay run in the ledger — the rule is its
// reason, the agent its actor — so automatic redrives inherit everything a replay by hand
// has: exactly once across crashes and concurrent runs (a second agent's run fences the
// first), the ledger (a record replayed once is skipped), the poison guard (maxReplays) and
// the timeouts on a silent broker. `opsctl dlt history` shows them beside the operators'.
//
// A record that fails again after a redrive comes back to a DLT as a new record carrying its
// replay count; the policy's ladder makes it wait longer each time, and past maxReplays it is
// left for an operator. So are the codes no rule names: the policy only ever takes what it
// was told is transient.
//
// The policy is compiled, per DLT and moment, into --where expressions of the replay engine
// (see Selector): the same expressions select what a pass replays, classify records for the
// agent's metrics, and are recorded in the ledger as each run's selection, so what the
// history says a run took is exactly what it took.
package redrive

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Action is what a rule does with the records it claims.
type Action string

// Rule actions.
const (
	// ActionRedrive replays the records once they are old enough (the default).
	ActionRedrive Action = "redrive"
	// ActionHold claims records for operators: no later rule may redrive them.
	ActionHold Action = "hold"
)

// Defaults of a redrive rule's optional fields.
const (
	DefaultMinAge     = time.Minute
	DefaultMaxReplays = 3
	DefaultRate       = 100
)

// Limits a policy is checked against.
const (
	// MaxAge bounds minAge and every backoff step: the DLTs keep records 7 days, so a longer
	// wait would never end.
	MaxAge        = 7 * 24 * time.Hour
	maxMaxReplays = 100
	maxRate       = 100_000
)

// Policy is a parsed, valid redrive policy.
type Policy struct {
	// Paused stops every rule: nothing is redriven, the metrics still say what waits.
	Paused bool
	// Rules are tried in order; the first that claims a record decides what becomes of it.
	Rules []Rule
	// Source names where the policy was read from, for messages.
	Source string
	// Digest identifies the policy's text (the first 12 hex digits of its SHA-256), so runs and
	// metrics say which version of the policy acted.
	Digest string
}

// Rule is one rule of a policy.
type Rule struct {
	// Name identifies the rule in the ledger (the run's reason) and in metrics.
	Name string
	// Topics are path.Match patterns of the DLTs the rule reads ("*.DLT", "*-dlt").
	Topics []string
	// ErrorCodes and Exceptions are what the rule claims: a record whose error code is one of
	// ErrorCodes or whose exception class is one of Exceptions.
	ErrorCodes []string
	Exceptions []string
	// Action is ActionRedrive or ActionHold.
	Action Action
	// MinAge is how old (since it was dead-lettered) a record must be before its first
	// redrive, and the least it waits before any.
	MinAge time.Duration
	// Backoff is the ladder: a record replayed n times already waits Backoff[n] (the last step
	// when n is past the end), and never less than MinAge.
	Backoff []time.Duration
	// MaxReplays is the poison guard: a record replayed this many times is left for an operator.
	MaxReplays int
	// Rate caps redriven records per second.
	Rate float64
	// Paused stops this rule alone.
	Paused bool
	// Line is where the rule starts in its source.
	Line int
}

// Wait returns how long a record replayed n times already must have been in the DLT before the
// rule redrives it again.
func (r *Rule) Wait(n int) time.Duration {
	if len(r.Backoff) == 0 {
		return r.MinAge
	}
	return max(r.MinAge, r.Backoff[min(n, len(r.Backoff)-1)])
}

// ladder returns the distinct waits of replay counts 0, 1, …: wait i for count i, and the
// last for every count from there on.
func (r *Rule) ladder() []time.Duration {
	steps := max(1, len(r.Backoff))
	out := make([]time.Duration, 0, steps)
	for n := range steps {
		out = append(out, r.Wait(n))
	}
	return out
}

// AppliesTo reports whether the rule reads the DLT topic.
func (r *Rule) AppliesTo(topic string) bool {
	for _, p := range r.Topics {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// Reason is the reason a rule's runs carry in the ledger.
func (p *Policy) Reason(r *Rule) string {
	return fmt.Sprintf("%s%s (policy %s)", reasonPrefix, r.Name, p.Digest)
}

// reasonPrefix starts the reason of every redrive run; IsRedrive recognises it.
const reasonPrefix = "redrive rule "

// IsRedrive reports whether a ledger run's reason is a redrive's, and returns its rule.
func IsRedrive(reason string) (rule string, ok bool) {
	rest, ok := strings.CutPrefix(reason, reasonPrefix)
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, " ")
	return name, name != ""
}

//go:embed default-policy.yaml
var defaultPolicy []byte

// DefaultName is what --policy takes to mean the built-in default policy.
const DefaultName = "default"

// Default returns the policy shipped for the SAGA services' own error codes: database lock
// timeouts, statement timeouts, conflicts and lost connections are redriven on a 1m/5m/15m
// ladder; schema and business errors are held for operators.
func Default() *Policy {
	p, err := Parse(defaultPolicy, "the built-in default policy")
	if err != nil {
		panic("redrive: the built-in default policy is invalid: " + err.Error()) // a test keeps it valid
	}
	return p
}

// DefaultText returns the built-in default policy's YAML, to print or to start a file from.
func DefaultText() []byte { return bytes.Clone(defaultPolicy) }

// ErrInvalid is matched (errors.Is) by every *InvalidError.
var ErrInvalid = errors.New("invalid redrive policy")

// Problem is one thing wrong in a policy, at a line of its source (0 when unknown).
type Problem struct {
	Line   int
	Reason string
}

// InvalidError lists everything wrong with a policy that was refused.
type InvalidError struct {
	Source   string
	Problems []Problem
}

// Error says where, and each problem with its line.
func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "redrive policy %s is not valid; it was not used", e.Source)
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "line %d: ", p.Line)
		}
		b.WriteString(p.Reason)
	}
	return b.String()
}

// Is makes every InvalidError match ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Parse reads a policy document. source names it in errors (a file, a ConfigMap). A document
// that is not valid is refused whole, with every problem and its line.
func Parse(data []byte, source string) (*Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &InvalidError{Source: source, Problems: []Problem{yamlProblem(err)}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &InvalidError{Source: source, Problems: []Problem{{Reason: "the document is empty: a policy needs rules"}}}
	}
	return parse(doc.Content[0], source, data)
}

// FromNode reads a policy from a YAML node: the redrive section of an opsctl context, with the
// lines of the configuration file.
func FromNode(n *yaml.Node, source string) (*Policy, error) {
	text, err := yaml.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("read redrive policy %s: %w", source, err)
	}
	return parse(n, source, text)
}

var yamlLine = regexp.MustCompile(`line (\d+): `)

// yamlProblem turns a YAML syntax error ("yaml: line 3: mapping values are not allowed…")
// into a problem at its line.
func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil && m[0] == 0 {
		line, _ := strconv.Atoi(msg[m[2]:m[3]])
		return Problem{Line: line, Reason: "not valid YAML: " + msg[m[1]:]}
	}
	return Problem{Reason: "not valid YAML: " + msg}
}

// parser collects the problems of one policy.
type parser struct{ problems []Problem }

func (ps *parser) add(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	ps.problems = append(ps.problems, Problem{Line: line, Reason: fmt.Sprintf(format, args...)})
}

func parse(root *yaml.Node, source string, text []byte) (*Policy, error) {
	ps := &parser{}
	sum := sha256.Sum256(text)
	p := &Policy{Source: source, Digest: hex.EncodeToString(sum[:])[:12]}
	var rulesNode *yaml.Node
	ps.mapping(root, "the policy", []string{"paused", "rules"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "paused":
			p.Paused = ps.boolean(k, v)
		case "rules":
			rulesNode = v
		}
	})
	switch {
	case root.Kind != yaml.MappingNode:
	case rulesNode == nil:
		ps.add(root, "the policy has no rules: add a rules list (paused: true stops redriving)")
	case rulesNode.Kind != yaml.SequenceNode:
		ps.add(rulesNode, "rules must be a list of rules")
	case len(rulesNode.Content) == 0:
		ps.add(rulesNode, "rules is empty: a policy needs at least one rule (paused: true stops redriving)")
	default:
		names := map[string]int{}
		for _, rn := range rulesNode.Content {
			r, ok := ps.rule(rn)
			if !ok {
				continue
			}
			if prev, dup := names[r.Name]; dup {
				ps.add(rn, "rule name %q is used twice (first at line %d): names identify runs in the ledger", r.Name, prev)
				continue
			}
			names[r.Name] = r.Line
			p.Rules = append(p.Rules, r)
		}
	}
	if len(ps.problems) > 0 {
		return nil, &InvalidError{Source: source, Problems: ps.problems}
	}
	return p, nil
}

// mapping walks a mapping node's keys, refusing unknown and repeated ones.
func (ps *parser) mapping(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		ps.add(n, "%s must be a mapping of %s", what, strings.Join(known, ", "))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			ps.add(k, "unknown field %q in %s (known: %s)", k.Value, what, strings.Join(known, ", "))
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			ps.add(k, "%s is given twice in %s (first at line %d)", k.Value, what, prev)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
}

var (
	ruleName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	codeName = regexp.MustCompile(`^[A-Za-z0-9_.$-]{1,200}$`)
)

func (ps *parser) rule(n *yaml.Node) (Rule, bool) {
	before := len(ps.problems)
	r := Rule{Action: ActionRedrive, MinAge: DefaultMinAge, MaxReplays: DefaultMaxReplays, Rate: DefaultRate, Line: n.Line}
	set := map[string]*yaml.Node{}
	ps.mapping(n, "a rule", []string{"name", "topics", "errorCodes", "exceptions", "action", "minAge", "backoff", "maxReplays", "rate", "paused"},
		func(key string, k, v *yaml.Node) {
			set[key] = k
			switch key {
			case "name":
				r.Name = ps.str(k, v)
				if r.Name != "" && !ruleName.MatchString(r.Name) {
					ps.add(v, "rule name %q: use lower-case letters, digits and dashes (it labels metrics and runs)", r.Name)
				}
			case "topics":
				r.Topics = ps.strs(k, v)
				for _, t := range r.Topics {
					if _, err := path.Match(t, ""); err != nil || t == "" {
						ps.add(v, "topics: %q is not a topic name or pattern (* matches any characters, ? one)", t)
					}
				}
			case "errorCodes":
				r.ErrorCodes = ps.codes(k, v)
			case "exceptions":
				r.Exceptions = ps.codes(k, v)
			case "action":
				switch a := Action(ps.str(k, v)); a {
				case ActionRedrive, ActionHold:
					r.Action = a
				default:
					ps.add(v, "action %q: want redrive or hold", a)
				}
			case "minAge":
				r.MinAge = ps.duration(k, v, true)
			case "backoff":
				if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
					ps.add(v, "backoff must be a list of durations such as [1m, 5m, 15m]")
					return
				}
				for i, sn := range v.Content {
					d := ps.duration(k, sn, false)
					if i > 0 && d < r.Backoff[i-1] {
						ps.add(sn, "backoff step %d (%s) is shorter than step %d (%s): a ladder only climbs", i+1, d, i, r.Backoff[i-1])
					}
					r.Backoff = append(r.Backoff, d)
				}
			case "maxReplays":
				r.MaxReplays = ps.integer(k, v)
				if r.MaxReplays < 1 || r.MaxReplays > maxMaxReplays {
					ps.add(v, "maxReplays %d: want 1 to %d", r.MaxReplays, maxMaxReplays)
				}
			case "rate":
				r.Rate = ps.float(k, v)
				if r.Rate <= 0 || r.Rate > maxRate {
					ps.add(v, "rate %v: want records per second, more than 0 and at most %d", r.Rate, maxRate)
				}
			case "paused":
				r.Paused = ps.boolean(k, v)
			}
		})
	if n.Kind != yaml.MappingNode {
		return r, false
	}
	if r.Name == "" && set["name"] == nil {
		ps.add(n, "a rule needs a name")
	}
	if len(r.Topics) == 0 && set["topics"] == nil {
		ps.add(n, "rule %q needs topics: the DLT names or patterns it reads (\"*.DLT\")", r.Name)
	}
	if len(r.ErrorCodes)+len(r.Exceptions) == 0 && set["errorCodes"] == nil && set["exceptions"] == nil {
		ps.add(n, "rule %q claims nothing: give errorCodes or exceptions (codes no rule names are left for operators)", r.Name)
	}
	if r.Action == ActionHold {
		for _, f := range []string{"minAge", "backoff", "maxReplays", "rate"} {
			if k := set[f]; k != nil {
				ps.add(k, "rule %q holds its records for operators: %s has no meaning there", r.Name, f)
			}
		}
	} else if len(r.Backoff) > r.MaxReplays && set["backoff"] != nil {
		ps.add(set["backoff"], "rule %q: backoff has %d steps but maxReplays is %d, so steps after the %d. are never used", r.Name, len(r.Backoff), r.MaxReplays, r.MaxReplays)
	}
	return r, len(ps.problems) == before
}

func (ps *parser) str(k, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
		ps.add(v, "%s must be a string", k.Value)
		return ""
	}
	if strings.TrimSpace(v.Value) == "" {
		ps.add(v, "%s is empty", k.Value)
	}
	return v.Value
}

func (ps *parser) strs(k, v *yaml.Node) []string {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		ps.add(v, "%s must be a list with at least one entry", k.Value)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			ps.add(e, "%s: every entry must be a string", k.Value)
			continue
		}
		out = append(out, e.Value)
	}
	return out
}

func (ps *parser) codes(k, v *yaml.Node) []string {
	out := ps.strs(k, v)
	for _, c := range out {
		if !codeName.MatchString(c) {
			ps.add(v, "%s: %q is not an error code or class name (letters, digits, _ . $ -)", k.Value, c)
		}
	}
	return out
}

func (ps *parser) duration(k, v *yaml.Node, zeroOK bool) time.Duration {
	if v.Kind != yaml.ScalarNode {
		ps.add(v, "%s must be a duration such as 90s, 5m or 2h", k.Value)
		return 0
	}
	d, err := time.ParseDuration(v.Value)
	switch {
	case err != nil:
		ps.add(v, "%s %q is not a duration (want 90s, 5m, 2h)", k.Value, v.Value)
	case d < 0 || (d == 0 && !zeroOK):
		ps.add(v, "%s %s: want a positive duration", k.Value, v.Value)
	case d > MaxAge:
		ps.add(v, "%s %s is longer than the DLTs keep records (%s)", k.Value, v.Value, MaxAge)
	}
	return d
}

func (ps *parser) integer(k, v *yaml.Node) int {
	var n int
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil {
		ps.add(v, "%s must be a whole number", k.Value)
	}
	return n
}

func (ps *parser) float(k, v *yaml.Node) float64 {
	var f float64
	if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") || v.Decode(&f) != nil {
		ps.add(v, "%s must be a number", k.Value)
	}
	return f
}

func (ps *parser) boolean(k, v *yaml.Node) bool {
	var b bool
	if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" || v.Decode(&b) != nil {
		ps.add(v, "%s must be true or false", k.Value)
	}
	return b
}
