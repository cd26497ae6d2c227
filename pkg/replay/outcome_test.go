package replay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// outcomeFixture seeds orders-failed.DLT with 6 dead letters, two of them ORDER_ALREADY_FAILED
// (one per partition 0 and 1), four DB_LOCK_TIMEOUT.
func outcomeFixture(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	var recs []*kgo.Record
	for i := 1; i <= 6; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i <= 2 {
			code = "ORDER_ALREADY_FAILED"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), code, 1, replaytest.Base.Add(time.Duration(i)*time.Second)))
	}
	replaytest.Produce(t, c, recs...)
}

// consumeReplays plays product-service on the replayed records: those of an order that has
// already failed fail again and go back to the DLT, as the service's consumer sends them
// (dlt.Build keeps the replay headers); the group then commits what it read on partitions 0
// and 1, and nothing on partition 2.
func consumeReplays(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	var again []*kgo.Record
	commits := kadm.Offsets{}
	for _, r := range replaytest.ReadCommitted(t, c, event.TopicOrdersFailed) {
		if strings.Contains(string(r.Value), `"errorCode":"ORDER_ALREADY_FAILED"`) {
			d := dlt.Build(r, dlt.Failure{Source: "product-service", Code: "ORDER_ALREADY_FAILED", Message: "order 1 already failed",
				Group: event.GroupProductService, At: replaytest.Base.Add(time.Hour)})
			d.Partition, d.Timestamp = r.Partition, replaytest.Base.Add(time.Hour)
			again = append(again, d)
		}
		if r.Partition != 2 {
			commits.AddOffset(r.Topic, r.Partition, r.Offset+1, -1)
		}
	}
	replaytest.Produce(t, c, again...)
	adm := kadm.NewClient(replaytest.Client(t, c))
	if err := adm.CommitAllOffsets(context.Background(), event.GroupProductService, commits); err != nil {
		t.Fatal(err)
	}
}

// TestOutcomeOfAReplay is the new user's case: two ORDER_ALREADY_FAILED dead letters are
// replayed with four others, and both go straight back to the DLT. The run's outcome says so,
// by their new error code, and how far the target's consumer group has read; stats marks the
// error as one replay does not help.
func TestOutcomeOfAReplay(t *testing.T) {
	ctx := context.Background()
	c := replaytest.NewCluster(t)
	outcomeFixture(t, c)
	e := newEngine(t, c)
	sum := mustReplay(t, e, Request{Topic: ordersDLT, Group: event.GroupProductService})
	if sum.Replayed != 6 {
		t.Fatalf("replay: %s", countsString(sum.Counts))
	}
	consumeReplays(t, c)

	run, out, err := e.Outcome(ctx, sum.RunID[:13]) // a unique start of the id will do
	if err != nil {
		t.Fatal(err)
	}
	if run.RunID != sum.RunID || out.Replayed != 6 || out.CameBack != 2 || len(out.ByError) != 1 {
		t.Fatalf("outcome %+v of run %+v", out, run)
	}
	if ec := out.ByError[0]; ec.ErrorSource != "product-service" || ec.ErrorCode != "ORDER_ALREADY_FAILED" || ec.Count != 2 || ec.Sample.Topic != ordersDLT || ec.Sample.Offset < 2 {
		t.Fatalf("came back by error: %+v", out.ByError)
	}
	if len(out.Targets) != 1 || out.Targets[0].Topic != event.TopicOrdersFailed || out.Targets[0].Replayed != 6 || len(out.Targets[0].Groups) != 1 {
		t.Fatalf("targets %+v", out.Targets)
	}
	// Partitions 0 and 1 (four records) were consumed and committed; partition 2 not. Lag
	// counts offsets, transaction markers included, as Kafka's own tools do.
	if g := out.Targets[0].Groups[0]; g.Group != event.GroupProductService || !g.Targeted || g.Consumed != 4 || g.Pending != 2 || g.Lag < 2 {
		t.Fatalf("group progress %+v", g)
	}

	// Both ORDER_ALREADY_FAILED dead letters replayed came back: replaying that error does not
	// help. The two that came back are in the group too, not replayed yet.
	st, err := e.Stats(ctx, ordersDLT, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Groups {
		switch g.ErrorCode {
		case "ORDER_ALREADY_FAILED":
			if g.Count != 4 || g.Replayed != 2 || g.FailedAgain != 2 || !g.ReplayDoesNotHelp {
				t.Errorf("ORDER_ALREADY_FAILED: %+v, want replay marked as not helping", g)
			}
		case "DB_LOCK_TIMEOUT":
			if g.Replayed != 4 || g.FailedAgain != 0 || g.ReplayDoesNotHelp {
				t.Errorf("DB_LOCK_TIMEOUT: %+v", g)
			}
		}
	}

	// A later run, of what was left (the two that came back): nothing came back from it.
	second := mustReplay(t, e, Request{Topic: ordersDLT, Reason: "the rest"})
	runs, err := e.History(ctx, ordersDLT)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := e.Outcomes(ctx, runs)
	if err != nil || len(outs) != 2 || outs[sum.RunID].CameBack != 2 || outs[second.RunID].CameBack != 0 || outs[second.RunID].Replayed != second.Replayed {
		t.Fatalf("outcomes of the history: %v %+v", err, outs)
	}

	if _, _, err := e.Outcome(ctx, "nope"); !errors.Is(err, ErrRunNotFound) {
		t.Fatalf("outcome of an unknown run: %v", err)
	}
}

func TestDoesNotHelp(t *testing.T) {
	for _, tt := range []struct {
		replayed, back int64
		want           bool
	}{{0, 0, false}, {1, 1, false}, {2, 2, true}, {2, 1, false}, {3, 2, true}, {10, 5, false}, {10, 6, true}} {
		if got := DoesNotHelp(tt.replayed, tt.back); got != tt.want {
			t.Errorf("DoesNotHelp(%d, %d) = %v", tt.replayed, tt.back, got)
		}
	}
}
