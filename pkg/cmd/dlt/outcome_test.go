package dlt_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/cmdutil"
	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// TestOutcomeAfterAReplay: two ORDER_ALREADY_FAILED dead letters are replayed with four others
// and go straight back to the DLT. history, outcome and stats say so, and how far the target's
// consumer group has read.
func TestOutcomeAfterAReplay(t *testing.T) {
	h := newHarness(t)
	var recs []*kgo.Record
	for i := 1; i <= 6; i++ {
		code := "DB_LOCK_TIMEOUT"
		if i <= 2 {
			code = "ORDER_ALREADY_FAILED"
		}
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), code, 1, replaytest.Base.Add(time.Duration(i)*time.Minute)))
	}
	replaytest.Produce(t, h.c, recs...)
	r := h.run(t, false, "", "dlt", "replay", "orders-failed.DLT", "--reason", "INC-7", "--yes", "--group", event.GroupProductService, "-o", "json")
	if r.err != nil {
		t.Fatalf("replay: %v\n%s", r.err, r.out)
	}
	lines := ndjson(t, r.out)
	runID := lines[len(lines)-1]["runId"].(string)

	// product-service consumes the replayed records: the two of already failed orders fail
	// again and go back to the DLT (dlt.Build keeps the replay headers); it commits what it
	// read on partitions 0 and 1.
	var again []*kgo.Record
	commits := kadm.Offsets{}
	for _, rec := range replaytest.ReadCommitted(t, h.c, event.TopicOrdersFailed) {
		if strings.Contains(string(rec.Value), `"errorCode":"ORDER_ALREADY_FAILED"`) {
			d := dlt.Build(rec, dlt.Failure{Source: "product-service", Code: "ORDER_ALREADY_FAILED", Message: "order already failed",
				Group: event.GroupProductService, At: replaytest.Base.Add(time.Hour)})
			d.Partition, d.Timestamp = rec.Partition, replaytest.Base.Add(time.Hour)
			again = append(again, d)
		}
		if rec.Partition != 2 {
			commits.AddOffset(rec.Topic, rec.Partition, rec.Offset+1, -1)
		}
	}
	replaytest.Produce(t, h.c, again...)
	if err := kadm.NewClient(replaytest.Client(t, h.c)).CommitAllOffsets(context.Background(), event.GroupProductService, commits); err != nil {
		t.Fatal(err)
	}

	golden(t, "outcome_table", h.ok(t, "dlt", "outcome", runID[:18]))
	var view struct {
		Run     map[string]any `json:"run"`
		Outcome struct {
			Replayed int `json:"replayed"`
			CameBack int `json:"cameBack"`
		} `json:"outcome"`
	}
	if err := json.Unmarshal([]byte(h.ok(t, "dlt", "outcome", runID, "-o", "json")), &view); err != nil || view.Run["runId"] != runID ||
		view.Outcome.Replayed != 6 || view.Outcome.CameBack != 2 {
		t.Fatalf("outcome -o json: %+v %v", view, err)
	}
	history := h.ok(t, "dlt", "history")
	if !strings.Contains(history, "2 ORDER_ALREADY_FAILED") || !strings.Contains(history, "4/6 product-service-group") {
		t.Fatalf("history does not show what became of the run:\n%s", history)
	}
	stats := h.ok(t, "dlt", "stats", "orders-failed.DLT")
	if !strings.Contains(stats, "2 (replay does not help)") {
		t.Fatalf("stats does not mark ORDER_ALREADY_FAILED:\n%s", stats)
	}
	if r := h.run(t, false, "", "dlt", "outcome", "0000"); r.code != cmdutil.ExitError || !strings.Contains(r.err.Error(), "no such replay run") {
		t.Fatalf("outcome of an unknown run: exit %d, %v", r.code, r.err)
	}
}
