package redrive

import (
	"strings"
	"testing"
	"time"

	"github.com/come2us/opsctl/pkg/dlt"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	p := Default()
	sel, err := p.Selector("orders-failed.DLT", now)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(code, exception string, count int, age time.Duration) *dlt.Record {
		return &dlt.Record{Topic: "orders-failed.DLT", ErrorCode: code, Exception: exception, ReplayCount: count, Timestamp: now.Add(-age),
			// A SAGA dead letter carries a "timestamp" value field too: the selector must read
			// the record's own timestamp, not this.
			Fields: map[string]any{"timestamp": "2020-01-01T00:00:00Z", "errorCode": "STOCK_SHORT"}}
	}
	tests := []struct {
		name  string
		rec   *dlt.Record
		class Class
		rule  string
	}{
		{"lock timeout, too young", rec("DB_LOCK_TIMEOUT", "", 0, 30*time.Second), ClassWaiting, "transient-db"},
		{"lock timeout, old enough", rec("DB_LOCK_TIMEOUT", "", 0, 61*time.Second), ClassDue, "transient-db"},
		{"failed once again, waiting for step 2", rec("DB_TIMEOUT", "", 1, 2*time.Minute), ClassWaiting, "transient-db"},
		{"failed once again, step 2 reached", rec("DB_TIMEOUT", "", 1, 5*time.Minute+time.Second), ClassDue, "transient-db"},
		{"failed twice again, waiting for step 3", rec("DB_CONFLICT", "", 2, 14*time.Minute), ClassWaiting, "transient-db"},
		{"failed twice again, step 3 reached", rec("DB_CONFLICT", "", 2, 15*time.Minute+time.Second), ClassDue, "transient-db"},
		{"replayed maxReplays times: poison guard", rec("DB_LOCK_TIMEOUT", "", 3, 24*time.Hour), ClassOperator, ""},
		{"network", rec("DB_UNAVAILABLE", "", 0, 2*time.Minute), ClassDue, "transient-network"},
		{"spring lock exception", rec("CannotAcquireLockException", "org.springframework.dao.CannotAcquireLockException", 0, time.Hour), ClassDue, "transient-db"},
		{"business error, held", rec("STOCK_SHORT", "", 0, time.Hour), ClassOperator, "operator-only"},
		{"connect conversion error, held", rec("DataException", "org.apache.kafka.connect.errors.DataException", 0, time.Hour), ClassOperator, "operator-only"},
		{"a code no rule names", rec("SOMETHING_NEW", "", 0, time.Hour), ClassOperator, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			class, rule, err := sel.Classify(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			name := ""
			if rule != nil {
				name = rule.Name
			}
			if class != tt.class || name != tt.rule {
				t.Errorf("classified %s by %q, want %s by %q", class, name, tt.class, tt.rule)
			}
		})
	}

	t.Run("paused", func(t *testing.T) {
		t.Parallel()
		paused := *p
		paused.Paused = true
		sel, err := paused.Selector("orders-failed.DLT", now)
		if err != nil {
			t.Fatal(err)
		}
		if class, _, _ := sel.Classify(rec("DB_LOCK_TIMEOUT", "", 0, time.Hour)); class != ClassWaiting {
			t.Errorf("a due record under a paused policy is %s, want waiting", class)
		}
	})
}

// TestSelectorTopicsAndOrder checks rules read only their topics and the first rule that names
// a code decides, even when it holds.
func TestSelectorTopicsAndOrder(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`
rules:
  - name: hold-payments
    topics: ["payments-*"]
    action: hold
    errorCodes: [DB_LOCK_TIMEOUT]
  - name: locks
    topics: ["*.DLT", "*-dlt"]
    errorCodes: [DB_LOCK_TIMEOUT]
    minAge: 0s
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	for topic, want := range map[string]Class{"payments-failed.DLT": ClassOperator, "orders-failed.DLT": ClassDue} {
		sel, err := p.Selector(topic, now)
		if err != nil {
			t.Fatal(err)
		}
		class, _, err := sel.Classify(&dlt.Record{Topic: topic, ErrorCode: "DB_LOCK_TIMEOUT", Timestamp: now.Add(-time.Second)})
		if err != nil || class != want {
			t.Errorf("%s: %s (%v), want %s", topic, class, err, want)
		}
	}
	sel, err := p.Selector("orders-failed.DLT", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.Rules) != 1 || strings.Contains(sel.Rules[0].Due.Source(), "payments") {
		t.Errorf("orders-failed.DLT got rules %+v", sel.Rules)
	}
	// The expression the ledger records names the rule's codes, its guard and its ladder.
	src := sel.Rules[0].Due.Source()
	for _, want := range []string{`meta.errorCode in ["DB_LOCK_TIMEOUT"]`, "meta.replayCount < 3", `meta.timestamp < date("2026-11-25T03:00:00.000Z")`} {
		if !strings.Contains(src, want) {
			t.Errorf("selection %q lacks %q", src, want)
		}
	}
}

// classifyUncached is Classify evaluating every expression for every record.
func (s *Selector) classifyUncached(d *dlt.Record) (Class, *Rule, error) {
	for i := range s.Rules {
		rs := &s.Rules[i]
		ok, err := rs.Claimed.Match(d)
		if err != nil || !ok {
			if err != nil {
				return ClassOperator, nil, err
			}
			continue
		}
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
	return ClassOperator, nil, nil
}

// TestClassifyRemembersClaimsFaithfully classifies records of every code, count and age
// twice — remembering claims, and evaluating every expression — and wants the same answers:
// the claims depend only on what they remember.
func TestClassifyRemembersClaimsFaithfully(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	sel, err := Default().Selector("orders-failed.DLT", now)
	if err != nil {
		t.Fatal(err)
	}
	codes := []struct{ code, exception string }{
		{"DB_LOCK_TIMEOUT", ""}, {"DB_UNAVAILABLE", ""}, {"STOCK_SHORT", ""}, {"NEW_CODE", ""},
		{"CannotAcquireLockException", "org.springframework.dao.CannotAcquireLockException"},
		{"DataException", "org.apache.kafka.connect.errors.DataException"},
	}
	for round := range 2 {
		for _, c := range codes {
			for count := range 5 {
				for _, age := range []time.Duration{time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour} {
					d := &dlt.Record{Topic: "orders-failed.DLT", ErrorCode: c.code, Exception: c.exception, ReplayCount: count, Timestamp: now.Add(-age)}
					gotClass, gotRule, err1 := sel.Classify(d)
					wantClass, wantRule, err2 := sel.classifyUncached(d)
					if err1 != nil || err2 != nil || gotClass != wantClass || gotRule != wantRule {
						t.Fatalf("round %d, %s/%d/%s: remembered %s %v (%v), evaluated %s %v (%v)", round, c.code, count, age, gotClass, gotRule, err1, wantClass, wantRule, err2)
					}
				}
			}
		}
	}
	if len(sel.claims) != len(codes)*5 {
		t.Errorf("%d claims remembered for %d combinations", len(sel.claims), len(codes)*5)
	}
}
