package redrive

import (
	"context"
	"fmt"
	"time"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay"
)

// DLTState is what a survey found in one dead-letter topic: what the agent's metrics, alerts
// and dashboards show per DLT.
type DLTState struct {
	Topic string `json:"topic"`
	// Records counts the records a read_committed consumer sees; LastHour those stamped in the
	// hour before the survey (the DLT's growth per hour); Oldest is the oldest one's stamp.
	Records  int64     `json:"records"`
	LastHour int64     `json:"lastHour"`
	Oldest   time.Time `json:"oldest,omitzero"`
	// Replayed counts the records the ledger says were replayed (by hand or by a redrive):
	// nothing waits on them any more.
	Replayed int64 `json:"replayed"`
	// Operator counts the records no rule will redrive (no rule names their code, a hold rule
	// does, or the poison guard let go), OperatorOldest the oldest one's stamp: they wait for
	// an operator.
	Operator       int64     `json:"operator"`
	OperatorOldest time.Time `json:"operatorOldest,omitzero"`
	// Waiting counts the records a redrive rule claims that wait for their step of the ladder
	// (or for a paused rule to resume); Due those the next pass redrives.
	Waiting int64 `json:"waiting"`
	Due     int64 `json:"due"`
	// Redriven counts the records redrive runs replayed from the DLT within the survey's
	// window; CameBack how many of them failed again and are back in a dead-letter topic.
	Redriven int `json:"redriven"`
	CameBack int `json:"cameBack"`
}

// Survey is the state of every dead-letter topic at one moment.
type Survey struct {
	At time.Time `json:"at"`
	// Window is how far back redrive runs count towards Redriven and CameBack.
	Window time.Duration `json:"window"`
	Policy string        `json:"policy"`
	DLTs   []DLTState    `json:"dlts"`
}

// DefaultWindow is how far back a survey looks at redrive runs.
const DefaultWindow = 24 * time.Hour

// TakeSurvey reads every dead-letter topic once (records decoded briefly, one fetch in
// memory), the ledger, and what became of the redrive runs of the last window: for each DLT,
// how many records it holds and how fast it grows, how old its oldest is, which of them wait
// for an operator and since when, which the policy will redrive, and how many redriven records
// came back. now is the moment ages count from.
func TakeSurvey(ctx context.Context, e *replay.Engine, p *Policy, now time.Time, window time.Duration) (*Survey, error) {
	if window <= 0 {
		window = DefaultWindow
	}
	s := &Survey{At: now, Window: window, Policy: p.Digest, DLTs: []DLTState{}}
	dlts, err := e.DLTs(ctx)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	ledger, err := e.Replayed(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("survey: read the replay ledger: %w", err)
	}
	index := map[string]int{}
	hourAgo := now.Add(-time.Hour)
	for _, topic := range dlts {
		sel, err := p.Selector(topic, now)
		if err != nil {
			return nil, fmt.Errorf("survey: %w", err)
		}
		st := DLTState{Topic: topic}
		var classifyErr error
		tally := func(d *dlt.Record) bool {
			st.Records++
			if !d.Timestamp.Before(hourAgo) {
				st.LastHour++
			}
			if st.Oldest.IsZero() || d.Timestamp.Before(st.Oldest) {
				st.Oldest = d.Timestamp
			}
			if _, done := ledger.Lookup(replay.Coord{Topic: topic, Partition: d.Partition, Offset: d.Offset}); done {
				st.Replayed++
				return false
			}
			class, _, err := sel.Classify(d)
			if err != nil && classifyErr == nil {
				classifyErr = err
			}
			switch class {
			case ClassDue:
				st.Due++
			case ClassWaiting:
				st.Waiting++
			default:
				st.Operator++
				if st.OperatorOldest.IsZero() || d.Timestamp.Before(st.OperatorOldest) {
					st.OperatorOldest = d.Timestamp
				}
			}
			return false // counted: nothing to index
		}
		_, _, err = e.Index(ctx, topic, nil, tally, nil, func(replay.Coord) error { return nil })
		if err != nil {
			return nil, fmt.Errorf("survey %s: %w", topic, err)
		}
		if classifyErr != nil {
			// An expression the policy compiled failed on a record: the survey is refused
			// rather than miscounted.
			return nil, fmt.Errorf("survey %s: classify: %w", topic, classifyErr)
		}
		index[topic] = len(s.DLTs)
		s.DLTs = append(s.DLTs, st)
	}

	runs, err := e.History(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("survey: read the replay history: %w", err)
	}
	var recent []replay.Run
	for _, r := range runs {
		if _, ok := IsRedrive(r.Reason); ok && !r.Started.Before(now.Add(-window)) {
			recent = append(recent, r)
		}
	}
	if len(recent) == 0 {
		return s, nil
	}
	outs, err := e.Outcomes(ctx, recent)
	if err != nil {
		return nil, fmt.Errorf("survey: what became of the redriven records: %w", err)
	}
	for _, o := range outs {
		i, ok := index[o.DLT]
		if !ok {
			continue // a DLT deleted since
		}
		s.DLTs[i].Redriven += o.Replayed
		s.DLTs[i].CameBack += o.CameBack
	}
	return s, nil
}
