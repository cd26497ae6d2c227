package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
)

// Request is one replay (or its dry run): which records, where to, and why.
type Request struct {
	// Topic is the dead-letter topic to replay from.
	Topic string
	// Selection picks the records (its Limit is ignored; see Limit below).
	Selection Selection
	// To overrides every record's target topic. It needs an allowlist in the context, and must
	// be on it.
	To string
	// Group, when set, is written as x-opsctl-target-group so only that consumer group
	// processes the replayed records.
	Group string
	// Reason is why the operator replays; required for Replay, recorded in the ledger.
	Reason string
	// Force replays records the ledger says were replayed already, and records past the poison
	// guard.
	Force bool
	// MaxReplays is the poison guard: a record replayed this many times is refused unless
	// Force. 0 means the engine's configured default.
	MaxReplays int
	// Limit caps how many records this run replays (0: no cap). Skipped and refused records do
	// not count, so repeated limited runs work through a DLT.
	Limit int
	// Rate caps replayed records per second (0: no cap).
	Rate float64
	// Bound caps each partition's scan at these end offsets, typically a confirmed Plan's
	// EndOffsets, so a run never replays a record that arrived after the operator saw the plan.
	// nil means the end offsets when the run starts.
	Bound map[int32]int64
	// OnProgress, when set, is called as the run advances (from the Replay goroutine).
	OnProgress func(Progress)
	// OnResult, when set, is called once for every selected record with what became of it,
	// after its batch committed or failed (from the Replay goroutine).
	OnResult func(Result)
	// ProblemsOnly limits OnResult to the records refused or failed, for a caller that shows
	// only those: a large replay then makes no result for each record it replays or skips.
	ProblemsOnly bool
}

// Result actions.
const (
	ActionReplayed = "replayed"
	ActionSkipped  = "skipped" // already replayed, per the ledger
	ActionRefused  = "refused"
	ActionFailed   = "failed"
)

// Refusal codes, stable for scripts; Result.Reason carries the detail.
const (
	RefuseNoTarget     = "no-target"      // no original topic in the headers
	RefuseNotAllowed   = "not-allowed"    // target not on the allowlist
	RefuseUnknownTopic = "unknown-target" // target topic does not exist
	RefuseLoop         = "loop"           // target is the DLT itself or the ledger
	RefusePoison       = "max-replays"    // replayed max-replays times already
)

// Result is what became of one selected record.
type Result struct {
	From   Coord  `json:"from"`
	Action string `json:"action"`
	// Code is the refusal code for refused records.
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Target is where the record went (replayed) or would have gone.
	Target      *Coord `json:"target,omitempty"`
	ReplayID    string `json:"replayId,omitempty"`
	ReplayCount int    `json:"replayCount,omitempty"`
}

// Progress is a snapshot of a running replay.
type Progress struct {
	Scanned int64 `json:"scanned"`
	Counts
	// Planned is how many records the run expects to replay when it knows (from Bound's plan),
	// else 0.
	Planned int64 `json:"planned,omitempty"`
	// Total is how many offsets the run reads: Scanned reaches it when the scan is done (less
	// when it stops early, at a limit or on an error), a progress bar's end when there was no plan.
	Total int64 `json:"total,omitempty"`
}

// TargetPlan is what a plan sends to one topic.
type TargetPlan struct {
	Topic string `json:"topic"`
	Count int64  `json:"count"`
	// Partitions are the DLT offset ranges the records come from.
	Partitions []PartitionSpan `json:"partitions"`
	Samples    []Coord         `json:"samples"`
}

// PartitionSpan is the offsets of one DLT partition a plan covers.
type PartitionSpan struct {
	Partition int32 `json:"partition"`
	First     int64 `json:"first"`
	Last      int64 `json:"last"`
	Count     int64 `json:"count"`
}

// RefusalPlan groups the refused records of a plan by code and target.
type RefusalPlan struct {
	Code    string  `json:"code"`
	Target  string  `json:"target,omitempty"`
	Reason  string  `json:"reason"`
	Count   int64   `json:"count"`
	Samples []Coord `json:"samples"`
}

// Plan is what a replay would do, computed without changing anything.
type Plan struct {
	Topic     string `json:"topic"`
	Selection string `json:"selection"`
	// EndOffsets are the DLT end offsets the plan read to; pass them as Request.Bound.
	EndOffsets map[int32]int64 `json:"endOffsets"`
	Scanned    int64           `json:"scanned"`
	Selected   int64           `json:"selected"`
	Replay     int64           `json:"replay"`
	Skipped    int64           `json:"skippedAlreadyReplayed"`
	Refused    int64           `json:"refused"`
	// Limited says the plan stopped at Request.Limit records to replay.
	Limited        bool          `json:"limited,omitempty"`
	Targets        []TargetPlan  `json:"targets"`
	Refusals       []RefusalPlan `json:"refusals"`
	SkippedSamples []Coord       `json:"skippedSamples"`
	// Group is the x-opsctl-target-group the replayed records will carry.
	Group           string         `json:"group,omitempty"`
	WhereErrors     int64          `json:"whereErrors,omitempty"`
	FirstWhereError string         `json:"firstWhereError,omitempty"`
	WhereMissing    []FieldMissing `json:"whereMissing,omitempty"`
}

const maxSamples = 3

// decision is what the rules say about one record.
type decision struct {
	action string // ActionReplayed (to be), ActionSkipped or ActionRefused
	code   string
	reason string // for refusals; a skip's reason is made on demand (why)
	target string
	count  int    // the replay count the replayed record will carry
	prev   string // for skips: the run that replayed the record
}

// why is the decision's reason.
func (d *decision) why() string {
	if d.action == ActionSkipped {
		return "already replayed by run " + d.prev + " (--force to replay again)"
	}
	return d.reason
}

// rules applies the replay rules to records, given what the ledger knows.
type rules struct {
	req *Request
	// ledger is what the ledger says about the incarnation of the DLT being read.
	ledger      ledgerView
	allow       map[string]bool
	exists      map[string]bool
	maxReplays  int
	ledgerTopic string
}

// newRules returns the rules of req, given the ledger and the topic ID of the DLT being read.
func (e *Engine) newRules(ctx context.Context, req *Request, ledger *ledgerIndex, dltID string) (*rules, error) {
	tds, err := e.adm.ListTopics(fresh(ctx))
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return e.rulesWith(req, ledger, dltID, tds), nil
}

// rulesWith returns the rules of req, given the ledger, the topic ID of the DLT being read and a
// listing of the cluster's topics (the targets that exist).
func (e *Engine) rulesWith(req *Request, ledger *ledgerIndex, dltID string, tds kadm.TopicDetails) *rules {
	ru := &rules{req: req, ledger: ledger.view(req.Topic, dltID), maxReplays: req.MaxReplays, ledgerTopic: e.cfg.LedgerTopic, exists: map[string]bool{}}
	if ru.maxReplays <= 0 {
		ru.maxReplays = e.cfg.MaxReplays
	}
	if len(e.cfg.Allowlist) > 0 {
		ru.allow = map[string]bool{}
		for _, t := range e.cfg.Allowlist {
			ru.allow[t] = true
		}
	}
	for _, td := range tds {
		if td.Err == nil {
			ru.exists[td.Topic] = true
		}
	}
	return ru
}

func (ru *rules) decide(d *dlt.Record) decision {
	from := Coord{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset}
	prev, seen := ru.ledger.lookup(from.Partition, from.Offset, d.Timestamp.UnixMilli())
	if seen && !ru.req.Force {
		return decision{action: ActionSkipped, prev: prev.run}
	}
	target := d.OriginalTopic()
	if ru.req.To != "" {
		target = ru.req.To
	}
	refuse := func(code, reason string) decision {
		return decision{action: ActionRefused, code: code, reason: reason, target: target}
	}
	switch {
	case target == "":
		return refuse(RefuseNoTarget, "no original topic in the headers ("+dlt.HeaderOriginalTopic+", "+dlt.ConnectTopic+", "+dlt.HeaderXOriginalTopic+")")
	case target == d.Topic || target == ru.ledgerTopic:
		return refuse(RefuseLoop, fmt.Sprintf("target %s is the dead-letter topic or the replay ledger", target))
	case ru.allow != nil && !ru.allow[target]:
		return refuse(RefuseNotAllowed, fmt.Sprintf("target %s is not on the context's allowlist", target))
	case !ru.exists[target]:
		return refuse(RefuseUnknownTopic, fmt.Sprintf("target topic %s does not exist", target))
	}
	count := d.ReplayCount
	if seen && int(prev.count) > count {
		count = int(prev.count)
	}
	if count >= ru.maxReplays && !ru.req.Force {
		return refuse(RefusePoison, fmt.Sprintf("replayed %d times already (max-replays %d; --force to replay again)", count, ru.maxReplays))
	}
	return decision{action: ActionReplayed, target: target, count: count + 1}
}

// validate checks a request against the context's rules before anything is read or written.
func (e *Engine) validate(req *Request, needReason bool) error {
	if req.Topic == "" {
		return fmt.Errorf("%w: no dead-letter topic given; nothing was changed", ErrRefused)
	}
	if req.Topic == e.cfg.LedgerTopic {
		return fmt.Errorf("%w: %s is the replay ledger, not a dead-letter topic; nothing was changed", ErrRefused, req.Topic)
	}
	if needReason && strings.TrimSpace(req.Reason) == "" {
		return fmt.Errorf("%w: a replay needs --reason (it is recorded in the ledger); nothing was changed", ErrRefused)
	}
	if req.To != "" {
		if len(e.cfg.Allowlist) == 0 {
			return fmt.Errorf("%w: --to needs a topic allowlist in the context (dlt.allowlist); without one a record may only go back to the topic its own headers name; nothing was changed", ErrRefused)
		}
		if !slices.Contains(e.cfg.Allowlist, req.To) {
			return fmt.Errorf("%w: --to %s is not on the context's allowlist (%s); nothing was changed", ErrRefused, req.To, strings.Join(e.cfg.Allowlist, ", "))
		}
	}
	if req.Rate < 0 || req.Limit < 0 || req.MaxReplays < 0 {
		return fmt.Errorf("%w: --rate, --limit and --max-replays must not be negative; nothing was changed", ErrRefused)
	}
	return nil
}

// walk scans the request's records and calls fn with each selected record and its decision,
// stopping at the replay limit. fn must not keep the *kgo.Record or the *dlt.Record after it
// returns, nor anything they share: d is reused, and a replay's records are recycled (see
// fetchPool). afterPoll, when not nil, runs after the records of each fetch, before the scan may
// wait for the next one. It is shared by Plan and Replay so both decide alike. With
// interleave (a replay without a limit) partitions are read together; otherwise in partition
// order, so a plan is deterministic and a limit takes the same records in the plan and the run.
// pre, when not nil, is the scan of ranges already opened by openWalk; walk closes it.
func (e *Engine) walk(ctx context.Context, req *Request, ru *rules, ranges []partRange, sum *ScanSummary, interleave bool,
	pre *rangeScan, fn func(*kgo.Record, *dlt.Record, decision) (bool, error), afterPoll func() error,
) error {
	sel := req.Selection
	sel.Limit = 0
	var toReplay int
	all := interleave && req.Limit == 0
	scan := func(each func(*kgo.Record) (bool, error)) error {
		if pre == nil {
			return e.scanWith(ctx, req.Topic, ranges, fetchBulk, all, each, afterPoll)
		}
		defer pre.close()
		_, err := pre.run(ctx, each, afterPoll)
		return err
	}
	// One decoded record, reused: fn must not keep d after it returns.
	var d dlt.Record
	topics := &topicNames{}
	tally := newWhereTally(&sel)
	defer func() { sum.WhereMissing = tally.report() }()
	return scan(func(r *kgo.Record) (bool, error) {
		sum.Scanned++
		ok, err := sel.decodeInto(r, decodeRoute, &d, topics, tally)
		if err != nil {
			sum.whereFailed(err)
			return true, nil
		}
		if !ok {
			return true, nil
		}
		dec := ru.decide(&d)
		if dec.action == ActionReplayed && req.Limit > 0 && toReplay >= req.Limit {
			sum.Limited = true
			return false, nil
		}
		sum.Selected++
		if dec.action == ActionReplayed {
			toReplay++
		}
		return fn(r, &d, dec)
	})
}

// openWalk opens the scan a walk with interleave will read, so that its first fetch is on its
// way while the caller does other work (a replay takes its fences and reads the ledger
// meanwhile). It returns nil when the walk reads partition by partition (a limit) and opens
// its own scans. The dead-letter records below the ranges' ends do not change, so reading
// them early reads the same records. The caller closes it (walk does).
func (e *Engine) openWalk(ctx context.Context, req *Request, dltID string, ranges []partRange) (*rangeScan, error) {
	if req.Limit != 0 {
		return nil, nil
	}
	return e.openReplayScan(ctx, req.Topic, dltID, ranges, cmp.Or(e.replayFetch, fetchBulk)), nil
}

// bounded narrows ranges to the request's Bound and returns the end offsets used.
func bounded(ranges []partRange, bound map[int32]int64) ([]partRange, map[int32]int64) {
	ends := map[int32]int64{}
	out := ranges[:0:0]
	for _, r := range ranges {
		if bound != nil {
			b, ok := bound[r.p]
			if !ok {
				continue // a partition the plan did not cover
			}
			r.end = min(r.end, b)
		}
		ends[r.p] = r.end
		out = append(out, r)
	}
	return out, ends
}

// Plan computes what Replay would do for req — counts per target, offset ranges, samples,
// refusals — reading the DLT and the ledger and changing nothing. It takes no fence, so it never
// disturbs a replay in progress; the run itself re-reads the ledger after taking the fence.
func (e *Engine) Plan(ctx context.Context, req Request) (_ *Plan, err error) {
	ctx, done := e.guard(ctx)
	defer done()
	defer func() { err = explain(ctx, err) }()
	if err := e.validate(&req, false); err != nil {
		return nil, err
	}
	ranges, err := e.topicRanges(ctx, req.Topic, &req.Selection)
	if err != nil {
		return nil, err
	}
	ranges, ends := bounded(ranges, req.Bound)
	if err := e.checkWhere(ctx, req.Topic, ranges, &req.Selection); err != nil {
		return nil, err
	}
	dltID, err := e.topicID(ctx, req.Topic)
	if err != nil {
		return nil, err
	}
	ledger, err := e.readLedger(ctx, req.Topic, false)
	if err != nil {
		return nil, err
	}
	ru, err := e.newRules(ctx, &req, ledger, dltID)
	if err != nil {
		return nil, err
	}
	p := &Plan{Topic: req.Topic, Selection: req.Selection.Describe(), EndOffsets: ends, Group: req.Group,
		Targets: []TargetPlan{}, Refusals: []RefusalPlan{}, SkippedSamples: []Coord{}}
	targets := map[string]*TargetPlan{}
	spans := map[string]map[int32]*PartitionSpan{}
	refusals := map[string]*RefusalPlan{}
	var sum ScanSummary
	err = e.walk(ctx, &req, ru, ranges, &sum, false, nil, func(_ *kgo.Record, d *dlt.Record, dec decision) (bool, error) {
		c := Coord{Topic: d.Topic, Partition: d.Partition, Offset: d.Offset}
		switch dec.action {
		case ActionSkipped:
			p.Skipped++
			if len(p.SkippedSamples) < maxSamples {
				p.SkippedSamples = append(p.SkippedSamples, c)
			}
		case ActionRefused:
			p.Refused++
			k := dec.code + "\x00" + dec.target
			rp := refusals[k]
			if rp == nil {
				rp = &RefusalPlan{Code: dec.code, Target: dec.target, Reason: dec.reason}
				refusals[k] = rp
			}
			rp.Count++
			if len(rp.Samples) < maxSamples {
				rp.Samples = append(rp.Samples, c)
			}
		case ActionReplayed:
			p.Replay++
			tp := targets[dec.target]
			if tp == nil {
				tp = &TargetPlan{Topic: dec.target}
				targets[dec.target] = tp
				spans[dec.target] = map[int32]*PartitionSpan{}
			}
			tp.Count++
			if len(tp.Samples) < maxSamples {
				tp.Samples = append(tp.Samples, c)
			}
			sp := spans[dec.target][d.Partition]
			if sp == nil {
				sp = &PartitionSpan{Partition: d.Partition, First: d.Offset, Last: d.Offset}
				spans[dec.target][d.Partition] = sp
			}
			sp.Count++
			sp.First, sp.Last = min(sp.First, d.Offset), max(sp.Last, d.Offset)
		}
		return true, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	p.Scanned, p.Selected, p.Limited = sum.Scanned, sum.Selected, sum.Limited
	p.WhereErrors, p.FirstWhereError, p.WhereMissing = sum.WhereErrors, sum.FirstWhereError, sum.WhereMissing
	for t, tp := range targets {
		for _, sp := range spans[t] {
			tp.Partitions = append(tp.Partitions, *sp)
		}
		sort.Slice(tp.Partitions, func(i, j int) bool { return tp.Partitions[i].Partition < tp.Partitions[j].Partition })
		p.Targets = append(p.Targets, *tp)
	}
	sort.Slice(p.Targets, func(i, j int) bool { return p.Targets[i].Topic < p.Targets[j].Topic })
	for _, rp := range refusals {
		p.Refusals = append(p.Refusals, *rp)
	}
	sort.Slice(p.Refusals, func(i, j int) bool {
		if p.Refusals[i].Count != p.Refusals[j].Count {
			return p.Refusals[i].Count > p.Refusals[j].Count
		}
		return p.Refusals[i].Code+p.Refusals[i].Target < p.Refusals[j].Code+p.Refusals[j].Target
	})
	return p, nil
}
