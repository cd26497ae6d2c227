package canary

import (
	"testing"
	"time"

	pcanary "github.com/come2us/opsctl/pkg/canary"
)

// TestWatchLineTooFewRequests: a criterion unknown for want of requests says how many there
// were, not "no data", which an operator would read as a broken Prometheus.
func TestWatchLineTooFewRequests(t *testing.T) {
	t.Parallel()
	crit := pcanary.GateRollbackCriteria()
	few := "only 11 requests in the window (need 100)"
	rep := pcanary.GateReport{Results: []pcanary.GateResult{
		{Criterion: crit[0], Display: "11 requests", Verdict: pcanary.VerdictUnknown, Detail: few},
		{Criterion: crit[1], Display: "11 requests", Verdict: pcanary.VerdictUnknown, Detail: few},
		{Criterion: crit[4], Display: "no data", Verdict: pcanary.VerdictUnknown, Detail: "query canary_cpu_limit_ratio: no data"},
	}}
	got := watchLine(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), rep, true)
	want := "12:00:00 unknown [only 11 requests in the window (need 100): canary 5xx rate (1m average), canary mean latency over stable] [no data: canary CPU of limit]"
	if got != want {
		t.Fatalf("watch line\n got: %s\nwant: %s", got, want)
	}
}
