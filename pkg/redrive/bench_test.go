package redrive

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// What a pass and a survey cost on a large DLT, beside what an operator's dry run of the same
// DLT costs (`dlt replay --dry-run`, with and without a --where on the error code): a pass
// plans each redrive rule with the policy's expression, which decodes every record in full.
//
//	go test ./pkg/redrive -run '^$' -bench . -benchtime 5x

const benchRecords = 20_000

func benchCluster(b *testing.B) (*replay.Engine, *clock) {
	b.Helper()
	c := replaytest.NewCluster(b)
	t0 := base()
	recs := make([]*kgo.Record, 0, benchRecords)
	for i := range benchRecords {
		code := "DB_LOCK_TIMEOUT"
		if i%2 == 1 {
			code = "STOCK_SHORT"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i+1), code, 1, t0.Add(-time.Hour)))
	}
	replaytest.Produce(b, c, recs...)
	clk := newClock(t0)
	e := newEngine(b, c, clk, func(cfg *replay.Config) { cfg.BatchSize = replay.DefaultBatchSize })
	return e, clk
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(benchRecords)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPlanPolicyRule plans the default policy's transient-db rule over the DLT: what each
// pass does per rule and DLT before it replays anything.
func BenchmarkPlanPolicyRule(b *testing.B) {
	e, clk := benchCluster(b)
	sel, err := Default().Selector(ordersDLT, clk.Now())
	if err != nil {
		b.Fatal(err)
	}
	rs := sel.Rules[0]
	req := replay.Request{Topic: ordersDLT, Selection: replay.Selection{Until: rs.Until, Where: rs.Due}}
	b.ResetTimer()
	for b.Loop() {
		p, err := e.Plan(context.Background(), req)
		if err != nil || p.Replay != benchRecords/2 {
			b.Fatalf("plan %+v, %v", p, err)
		}
	}
	reportRate(b)
}

// BenchmarkPlanOperatorWhere is an operator's dry run of the same records by hand:
// --where 'errorCode == "DB_LOCK_TIMEOUT"'.
func BenchmarkPlanOperatorWhere(b *testing.B) {
	e, _ := benchCluster(b)
	w, err := replay.CompileWhere(`errorCode == "DB_LOCK_TIMEOUT"`)
	if err != nil {
		b.Fatal(err)
	}
	req := replay.Request{Topic: ordersDLT, Selection: replay.Selection{Where: w}}
	b.ResetTimer()
	for b.Loop() {
		p, err := e.Plan(context.Background(), req)
		if err != nil || p.Replay != benchRecords/2 {
			b.Fatalf("plan %+v, %v", p, err)
		}
	}
	reportRate(b)
}

// BenchmarkPlanWholeDLT is a dry run of the whole DLT without --where: the floor.
func BenchmarkPlanWholeDLT(b *testing.B) {
	e, _ := benchCluster(b)
	req := replay.Request{Topic: ordersDLT}
	b.ResetTimer()
	for b.Loop() {
		p, err := e.Plan(context.Background(), req)
		if err != nil || p.Replay != benchRecords {
			b.Fatalf("plan %+v, %v", p, err)
		}
	}
	reportRate(b)
}

// BenchmarkSurvey surveys every DLT (the metrics), the large one included.
func BenchmarkSurvey(b *testing.B) {
	e, clk := benchCluster(b)
	p := Default()
	b.ResetTimer()
	for b.Loop() {
		s, err := TakeSurvey(context.Background(), e, p, clk.Now(), 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range s.DLTs {
			if d.Topic == ordersDLT && d.Records != benchRecords {
				b.Fatalf("survey %+v", d)
			}
		}
	}
	reportRate(b)
}
