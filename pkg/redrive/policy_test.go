package redrive

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	p := Default()
	var names []string
	for _, r := range p.Rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"transient-db", "transient-network", "operator-only"}) {
		t.Fatalf("rules %v", names)
	}
	db := p.Rules[0]
	if !slices.Contains(db.ErrorCodes, "DB_LOCK_TIMEOUT") || !slices.Contains(db.ErrorCodes, "DB_TIMEOUT") ||
		db.MaxReplays != 3 || db.Rate != 100 || db.MinAge != time.Minute {
		t.Errorf("transient-db: %+v", db)
	}
	if got := []time.Duration{db.Wait(0), db.Wait(1), db.Wait(2), db.Wait(7)}; !slices.Equal(got, []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 15 * time.Minute}) {
		t.Errorf("ladder %v", got)
	}
	if hold := p.Rules[2]; hold.Action != ActionHold || !slices.Contains(hold.ErrorCodes, "SCHEMA_INVALID") || !slices.Contains(hold.ErrorCodes, "STOCK_SHORT") {
		t.Errorf("operator-only: %+v", hold)
	}
	for _, r := range p.Rules {
		if !r.AppliesTo("orders-failed.DLT") || !r.AppliesTo("payments-failed-dlt") || r.AppliesTo("orders-failed") || r.AppliesTo("opsctl.replays") {
			t.Errorf("rule %s reads the wrong topics: %v", r.Name, r.Topics)
		}
	}
	if name, ok := IsRedrive(p.Reason(&db)); !ok || name != "transient-db" {
		t.Errorf("IsRedrive(%q) = %q, %v", p.Reason(&db), name, ok)
	}
	if _, ok := IsRedrive("INC-42: lock fixed"); ok {
		t.Error("an operator's reason taken for a redrive")
	}
}

func TestWaitLadder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule Rule
		want []time.Duration // Wait(0), Wait(1), Wait(2), Wait(3)
	}{
		{Rule{MinAge: time.Minute}, []time.Duration{time.Minute, time.Minute, time.Minute, time.Minute}},
		{Rule{MinAge: 2 * time.Minute, Backoff: []time.Duration{time.Minute, 10 * time.Minute}}, []time.Duration{2 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute}},
		{Rule{Backoff: []time.Duration{30 * time.Second, time.Minute, time.Hour}}, []time.Duration{30 * time.Second, time.Minute, time.Hour, time.Hour}},
	}
	for _, tt := range tests {
		var got []time.Duration
		for n := range 4 {
			got = append(got, tt.rule.Wait(n))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%+v: waits %v, want %v", tt.rule, got, tt.want)
		}
	}
}

func TestParseDefaultsAndFields(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
paused: true
rules:
  - name: locks
    topics: ["orders-failed.DLT"]
    errorCodes: [DB_LOCK_TIMEOUT]
  - name: spring
    topics: ["*-dlt"]
    exceptions: [org.springframework.dao.CannotAcquireLockException]
    minAge: 0s
    backoff: [30s, 2m]
    maxReplays: 5
    rate: 2.5
    paused: true
`), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Paused || len(p.Rules) != 2 || len(p.Digest) != 12 || p.Source != "test.yaml" {
		t.Fatalf("policy %+v", p)
	}
	locks := p.Rules[0]
	if locks.Action != ActionRedrive || locks.MinAge != DefaultMinAge || locks.MaxReplays != DefaultMaxReplays || locks.Rate != DefaultRate || locks.Line != 4 {
		t.Errorf("defaults: %+v", locks)
	}
	spring := p.Rules[1]
	if spring.MinAge != 0 || !slices.Equal(spring.Backoff, []time.Duration{30 * time.Second, 2 * time.Minute}) || spring.MaxReplays != 5 || spring.Rate != 2.5 || !spring.Paused {
		t.Errorf("fields: %+v", spring)
	}
}

// TestParseRefusesBadPolicies checks every refusal names its line and says why.
func TestParseRefusesBadPolicies(t *testing.T) {
	t.Parallel()
	const rule = "rules:\n  - name: r\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n"
	tests := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"syntax", "rules:\n  - name: r\n    topics: a: b\n", 3, "mapping values are not allowed"},
		{"empty", "", 0, "empty"},
		{"not a mapping", "- a\n- b\n", 1, "must be a mapping"},
		{"unknown top field", "rule:\n  - name: r\n", 1, `unknown field "rule"`},
		{"no rules", "paused: true\n", 1, "has no rules"},
		{"empty rules", "rules: []\n", 1, "rules is empty"},
		{"rules not a list", "rules: x\n", 1, "must be a list"},
		{"unknown rule field", rule + "    minage: 1m\n", 5, `unknown field "minage" in a rule`},
		{"repeated field", rule + "    errorCodes: [DB_TIMEOUT]\n", 5, "errorCodes is given twice"},
		{"no name", "rules:\n  - topics: [\"*.DLT\"]\n    errorCodes: [X]\n", 2, "needs a name"},
		{"bad name", "rules:\n  - name: Transient DB\n    topics: [\"*.DLT\"]\n    errorCodes: [X]\n", 2, "lower-case letters"},
		{"duplicate name", rule + "  - name: r\n    topics: [\"*.DLT\"]\n    errorCodes: [X]\n", 5, `"r" is used twice (first at line 2)`},
		{"no topics", "rules:\n  - name: r\n    errorCodes: [X]\n", 2, "needs topics"},
		{"bad pattern", "rules:\n  - name: r\n    topics: [\"[a\"]\n    errorCodes: [X]\n", 3, "not a topic name or pattern"},
		{"claims nothing", "rules:\n  - name: r\n    topics: [\"*.DLT\"]\n", 2, "claims nothing"},
		{"bad code", "rules:\n  - name: r\n    topics: [\"*.DLT\"]\n    errorCodes: [\"DB LOCK\"]\n", 4, "not an error code"},
		{"bad duration", rule + "    minAge: soon\n", 5, `minAge "soon" is not a duration`},
		{"negative duration", rule + "    minAge: -1m\n", 5, "want a positive duration"},
		{"too long", rule + "    minAge: 200h\n", 5, "longer than the DLTs keep records"},
		{"zero backoff", rule + "    backoff: [0s]\n", 5, "want a positive duration"},
		{"descending ladder", rule + "    backoff:\n      - 5m\n      - 1m\n", 7, "a ladder only climbs"},
		{"ladder longer than guard", rule + "    backoff: [1m, 2m, 3m]\n    maxReplays: 2\n", 5, "never used"},
		{"maxReplays zero", rule + "    maxReplays: 0\n", 5, "maxReplays 0: want 1 to 100"},
		{"maxReplays text", rule + "    maxReplays: three\n", 5, "whole number"},
		{"rate", rule + "    rate: 0\n", 5, "rate 0"},
		{"action", rule + "    action: retry\n", 5, `action "retry": want redrive or hold`},
		{"hold with a ladder", "rules:\n  - name: r\n    topics: [\"*.DLT\"]\n    errorCodes: [X]\n    action: hold\n    backoff: [1m]\n", 6, "backoff has no meaning"},
		{"paused not a bool", rule + "    paused: sometimes\n", 5, "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Parse([]byte(tt.doc), "policy.yaml")
			if p != nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("accepted (%v, %v)", p, err)
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Source != "policy.yaml" {
				t.Fatalf("error %T %v", err, err)
			}
			found := false
			for _, pr := range ie.Problems {
				if pr.Line == tt.line && strings.Contains(pr.Reason, tt.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %+v, want one at line %d mentioning %q", ie.Problems, tt.line, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, "policy.yaml") || !strings.Contains(msg, "not used") {
				t.Errorf("message %q does not say which policy and that it was not used", msg)
			}
		})
	}
}

// TestFromNodeReportsConfigFileLines reads a policy from the redrive section of a context, as
// the configuration file holds it: problems name the file's lines.
func TestFromNodeReportsConfigFileLines(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Contexts map[string]struct {
			Redrive yaml.Node `yaml:"redrive"`
		} `yaml:"contexts"`
	}
	doc := "contexts:\n  prod:\n    redrive:\n      rules:\n        - name: r\n          topics: [\"*.DLT\"]\n          errorCodes: [X]\n          rate: -1\n"
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	n := cfg.Contexts["prod"].Redrive
	_, err := FromNode(&n, "config.yaml, context prod")
	var ie *InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) != 1 || ie.Problems[0].Line != 8 {
		t.Fatalf("error %v, want one problem at line 8", err)
	}
	good := strings.Replace(doc, "rate: -1", "rate: 5", 1)
	if err := yaml.Unmarshal([]byte(good), &cfg); err != nil {
		t.Fatal(err)
	}
	n = cfg.Contexts["prod"].Redrive
	p, err := FromNode(&n, "config.yaml, context prod")
	if err != nil || p.Rules[0].Rate != 5 || p.Rules[0].Line != 5 {
		t.Fatalf("FromNode: %+v, %v", p, err)
	}
}

// TestFileSourceKeepsTheLastGoodPolicy changes a policy file under a running source: a valid
// change is taken, a bad one is refused with its line and the last good policy stays in force.
func TestFileSourceKeepsTheLastGoodPolicy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(string(DefaultText()))
	src, err := NewFileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	p, problem := src.Policy()
	if problem != nil || len(p.Rules) != 3 {
		t.Fatalf("policy %+v, problem %v", p, problem)
	}
	first := p.Digest

	write("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n    backoff: [5m, 1m]\n")
	p, problem = src.Policy()
	if p.Digest != first || !errors.Is(problem, ErrInvalid) || !strings.Contains(problem.Error(), "line 5") ||
		!strings.Contains(problem.Error(), "a ladder only climbs") || !strings.Contains(problem.Error(), "still applying policy "+first) {
		t.Fatalf("bad change: policy %s, problem %v", p.Digest, problem)
	}
	// Asked again, the same refused file keeps saying so.
	if p, problem = src.Policy(); p.Digest != first || problem == nil {
		t.Fatalf("asked again: %s, %v", p.Digest, problem)
	}

	write("rules:\n  - name: locks\n    topics: [\"*.DLT\"]\n    errorCodes: [DB_LOCK_TIMEOUT]\n")
	p, problem = src.Policy()
	if problem != nil || p.Digest == first || len(p.Rules) != 1 {
		t.Fatalf("good change: %+v, %v", p, problem)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if q, problem := src.Policy(); q != p || problem == nil {
		t.Fatalf("file gone: %v, %v", q, problem)
	}

	write("rules: [\n")
	if _, err := NewFileSource(path); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad file at start: %v", err)
	}
}
