package canary

// Canary gates: the design's rollback criteria and per-phase pass criteria (section 8 of the
// digest), each with its figure and threshold, judged on Prometheus data. A criterion whose
// data is missing is "unknown", never "pass": a canary must not be widened on the strength of a
// metric nobody scraped.

import (
	"fmt"
	"math"
	"strconv"
)

// Verdict is the outcome of one criterion, or of a whole gate.
type Verdict string

// Verdicts.
const (
	VerdictPass    Verdict = "pass"
	VerdictFail    Verdict = "fail"
	VerdictUnknown Verdict = "unknown"
)

// CriterionKind says whether a criterion triggers a rollback or gates a phase.
type CriterionKind string

// Criterion kinds.
const (
	// CriterionRollback criteria roll the canary back when they fail.
	CriterionRollback CriterionKind = "rollback"
	// CriterionPhase criteria must pass before the canary leaves their phase.
	CriterionPhase CriterionKind = "phase"
)

// CriterionUnit says how a criterion's figure is measured and shown.
type CriterionUnit string

// Criterion units.
const (
	// CriterionRatio is a fraction shown as a percentage (0.03 → 3%).
	CriterionRatio CriterionUnit = "ratio"
	// CriterionMillis is a latency difference in milliseconds.
	CriterionMillis CriterionUnit = "ms"
	// CriterionReady is the fraction of canary pods that are ready.
	CriterionReady CriterionUnit = "ready"
	// CriterionCount is a number of records (dead letters).
	CriterionCount CriterionUnit = "count"
)

// CriterionOp is the comparison a figure must satisfy against the threshold to pass.
type CriterionOp string

// Comparisons.
const (
	CriterionBelow   CriterionOp = "<"
	CriterionAtMost  CriterionOp = "<="
	CriterionAtLeast CriterionOp = ">="
)

// Gate query names: the keys of the context's prometheus.queries map that override the
// default PromQL (see GateDefaultQueries).
const (
	GateQueryCanary5xx      = "canary_5xx_ratio"
	GateQueryCanaryLatency  = "canary_latency_ms"
	GateQueryStableLatency  = "stable_latency_ms"
	GateQueryBusinessErrors = "canary_business_error_ratio"
	GateQueryPodsReady      = "canary_pods_ready_ratio"
	GateQueryCPU            = "canary_cpu_limit_ratio"
	GateQueryMemory         = "canary_memory_limit_ratio"
	// GateQueryDeadLetters counts the records the canary's consumers sent to a dead-letter
	// topic in the window: the growth of the service's DLTs that v2 caused.
	GateQueryDeadLetters = "canary_dead_letters"
	// GateQueryCanaryRequests counts the requests the canary served in the window of the
	// traffic criteria: below the minimum sample those criteria are unknown.
	GateQueryCanaryRequests = "canary_requests"
)

// DefaultGateMinRequests is the minimum number of canary requests in the window for the
// traffic criteria (5xx, latency, business errors) to be judged: 1 error in 14 requests is
// 7.14 % and proves nothing.
const DefaultGateMinRequests = 100

// Sampled reports whether the criterion's figure is drawn from the canary's requests (error
// ratios, mean latency), and so needs a minimum number of them to mean anything.
func (c Criterion) Sampled() bool {
	switch c.Query {
	case GateQueryCanary5xx, GateQueryCanaryLatency, GateQueryBusinessErrors:
		return true
	}
	return false
}

// Criterion is one check of the design with its figure and threshold.
type Criterion struct {
	// ID is stable for scripts: "rollback.5xx", "phase1.latency"...
	ID   string        `json:"id"`
	Kind CriterionKind `json:"kind"`
	// Phase is the phase (0–3) whose pass criteria this is; -1 for rollback criteria.
	Phase int    `json:"phase"`
	Name  string `json:"name"`
	// Query names the PromQL giving the figure; Baseline, when set, names a second query
	// subtracted from it (canary latency minus stable latency).
	Query     string        `json:"query"`
	Baseline  string        `json:"baseline,omitempty"`
	Unit      CriterionUnit `json:"unit"`
	Threshold float64       `json:"threshold"`
	// PassIf is the comparison that passes; the design states rollback criteria as its
	// negation ("5xx ≥ 3% rolls back" is PassIf "<" 0.03).
	PassIf CriterionOp `json:"passIf"`
}

// GateRollbackCriteria are the design's rollback conditions: any failing one means "set the
// VirtualService back to v1 at once".
func GateRollbackCriteria() []Criterion {
	return []Criterion{
		{ID: "rollback.5xx", Kind: CriterionRollback, Phase: -1, Name: "canary 5xx rate (1m average)", Query: GateQueryCanary5xx, Unit: CriterionRatio, Threshold: 0.03, PassIf: CriterionBelow},
		{ID: "rollback.latency", Kind: CriterionRollback, Phase: -1, Name: "canary mean latency over stable", Query: GateQueryCanaryLatency, Baseline: GateQueryStableLatency, Unit: CriterionMillis, Threshold: 200, PassIf: CriterionBelow},
		{ID: "rollback.business", Kind: CriterionRollback, Phase: -1, Name: "canary business error rate", Query: GateQueryBusinessErrors, Unit: CriterionRatio, Threshold: 0.01, PassIf: CriterionBelow},
		{ID: "rollback.ready", Kind: CriterionRollback, Phase: -1, Name: "canary pods ready", Query: GateQueryPodsReady, Unit: CriterionReady, Threshold: 1, PassIf: CriterionAtLeast},
		{ID: "rollback.cpu", Kind: CriterionRollback, Phase: -1, Name: "canary CPU of limit", Query: GateQueryCPU, Unit: CriterionRatio, Threshold: 0.80, PassIf: CriterionAtMost},
		{ID: "rollback.memory", Kind: CriterionRollback, Phase: -1, Name: "canary memory of limit", Query: GateQueryMemory, Unit: CriterionRatio, Threshold: 0.85, PassIf: CriterionAtMost},
		// A dead letter written by v2 is a record v1 would have processed (or a new bug in
		// v2's consumers): any growth of the service's DLTs caused by the canary breaches.
		{ID: "rollback.dlt", Kind: CriterionRollback, Phase: -1, Name: "canary dead letters (1m)", Query: GateQueryDeadLetters, Unit: CriterionCount, Threshold: 0, PassIf: CriterionAtMost},
	}
}

// GatePhaseCriteria are the pass criteria of phase (the seed's table): what must hold before
// the canary leaves that phase for the next. Phase 0 (10%): pods 100% ready and no errors;
// phase 1 (30%): latency increase < 200 ms and error rate < 1%; phase 2 (50%): 5xx < 0.3% and
// business errors < 1%; phase 3 (100%): pods stable. "No log anomalies" (phase 3) is not a
// metric and stays a human check.
func GatePhaseCriteria(phase int) []Criterion {
	p := func(id, name, query, baseline string, unit CriterionUnit, th float64, op CriterionOp) Criterion {
		return Criterion{ID: fmt.Sprintf("phase%d.%s", phase, id), Kind: CriterionPhase, Phase: phase, Name: name,
			Query: query, Baseline: baseline, Unit: unit, Threshold: th, PassIf: op}
	}
	switch phase {
	case 0:
		return []Criterion{
			p("ready", "canary pods ready", GateQueryPodsReady, "", CriterionReady, 1, CriterionAtLeast),
			p("errors", "canary 5xx rate (no errors)", GateQueryCanary5xx, "", CriterionRatio, 0, CriterionAtMost),
		}
	case 1:
		return []Criterion{
			p("latency", "canary mean latency over stable", GateQueryCanaryLatency, GateQueryStableLatency, CriterionMillis, 200, CriterionBelow),
			p("errors", "canary 5xx rate", GateQueryCanary5xx, "", CriterionRatio, 0.01, CriterionBelow),
		}
	case 2:
		return []Criterion{
			p("5xx", "canary 5xx rate", GateQueryCanary5xx, "", CriterionRatio, 0.003, CriterionBelow),
			p("business", "canary business error rate", GateQueryBusinessErrors, "", CriterionRatio, 0.01, CriterionBelow),
		}
	case 3:
		return []Criterion{
			p("ready", "canary pods ready (stable)", GateQueryPodsReady, "", CriterionReady, 1, CriterionAtLeast),
		}
	}
	return nil
}

// GateCriteria returns the rollback criteria followed by the pass criteria of phase (none for
// a phase outside 0–3): what `canary check` and the gate of every
// step, set and promote judge.
func GateCriteria(phase int) []Criterion {
	return append(GateRollbackCriteria(), GatePhaseCriteria(phase)...)
}

// Judge applies the criterion to a figure. NaN and infinities are unknown: they come from
// divisions by zero (no traffic, no limits), which prove nothing.
func (c Criterion) Judge(v float64) Verdict {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return VerdictUnknown
	}
	var ok bool
	switch c.PassIf {
	case CriterionBelow:
		ok = v < c.Threshold
	case CriterionAtMost:
		ok = v <= c.Threshold
	case CriterionAtLeast:
		ok = v >= c.Threshold
	default:
		return VerdictUnknown
	}
	if ok {
		return VerdictPass
	}
	return VerdictFail
}

// ThresholdText states the threshold the way the design does: the rollback condition for
// rollback criteria ("rollback if ≥ 3%"), the pass condition for phase criteria ("pass if <
// 0.3%").
func (c Criterion) ThresholdText() string {
	var op string
	prefix := "pass if "
	if c.Kind == CriterionRollback {
		prefix = "rollback if "
		op = map[CriterionOp]string{CriterionBelow: "≥", CriterionAtMost: ">", CriterionAtLeast: "<"}[c.PassIf]
	} else {
		op = map[CriterionOp]string{CriterionBelow: "<", CriterionAtMost: "≤", CriterionAtLeast: "≥"}[c.PassIf]
	}
	return prefix + op + " " + c.formatThreshold()
}

func (c Criterion) formatThreshold() string {
	switch c.Unit {
	case CriterionRatio:
		return strconv.FormatFloat(c.Threshold*100, 'f', -1, 64) + "%"
	case CriterionReady:
		return strconv.FormatFloat(c.Threshold*100, 'f', -1, 64) + "% ready"
	case CriterionMillis:
		return "+" + strconv.FormatFloat(c.Threshold, 'f', -1, 64) + " ms"
	case CriterionCount:
		return strconv.FormatFloat(c.Threshold, 'f', -1, 64) + " records"
	}
	return strconv.FormatFloat(c.Threshold, 'f', -1, 64)
}

// FormatValue shows a figure in the criterion's unit. A figure that rounds to zero shows as
// zero without a sign: a canary 0.3 ms faster than stable is "0 ms", not "-0 ms".
func (c Criterion) FormatValue(v float64) string {
	switch c.Unit {
	case CriterionRatio:
		return strconv.FormatFloat(roundTo(v*100, 2), 'f', 2, 64) + "%"
	case CriterionReady:
		return strconv.FormatFloat(roundTo(v*100, 0), 'f', 0, 64) + "% ready"
	case CriterionMillis:
		ms := roundTo(v, 0)
		if ms == 0 {
			return "0 ms"
		}
		return fmt.Sprintf("%+.0f ms", ms)
	case CriterionCount:
		// increase() extrapolates: 0.7 dead letters is at least one record.
		n := math.Ceil(roundTo(v, 6))
		if n == 1 {
			return "1 record"
		}
		return strconv.FormatFloat(n, 'f', 0, 64) + " records"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// roundTo rounds v to digits decimals, turning a negative zero into zero.
func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	r := math.Round(v*p) / p
	if r == 0 {
		return 0 // also -0
	}
	return r
}
