package replay

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

const recrDLT = "recr.DLT"

// seedRecr writes n SAGA dead letters to recr.DLT, for orders from on, stamped at (+1s each).
func seedRecr(t *testing.T, c *kfake.Cluster, from, n int, at time.Time) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		r := replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, at.Add(time.Duration(i-from)*time.Second))
		r.Topic = recrDLT
		recs = append(recs, r)
	}
	replaytest.Produce(t, c, recs...)
}

// recreate deletes recr.DLT and creates it again, empty, with three partitions.
func recreate(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	if err := c.DeleteTopic(recrDLT); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(recrDLT, 3, nil); err != nil {
		t.Fatal(err)
	}
}

func replayedCount(t *testing.T, e *Engine, dltTopic string) int {
	t.Helper()
	rs, err := e.Replayed(context.Background(), dltTopic)
	if err != nil {
		t.Fatal(err)
	}
	return rs.Count(dltTopic)
}

// assertReplayedFrom checks that the target holds want replayed records, perCoord from each
// DLT coordinate.
func assertReplayedFrom(t *testing.T, c *kfake.Cluster, want int, perCoord int) {
	t.Helper()
	got := replayedFrom(t, c, event.TopicOrdersFailed)
	total := 0
	for k, n := range got {
		total += n
		if n != perCoord {
			t.Errorf("%s replayed %d times, want %d (one per incarnation of the DLT)", k, n, perCoord)
		}
	}
	if total != want {
		t.Fatalf("%s holds %d replayed records, want %d", event.TopicOrdersFailed, total, want)
	}
}

// TestRecreatedDLTRecordsAreNew is the loss of issue "recreated DLT": replay 100 records, delete
// the DLT, create it again with 100 new dead letters at the same offsets, replay again. The
// new incarnation's records are new: all 100 are replayed, none skipped. The old runs stay in
// the history, marked as replays of an earlier topic of that name.
func TestRecreatedDLTRecordsAreNew(t *testing.T) {
	ctx := context.Background()
	c := replaytest.NewCluster(t)
	if err := c.CreateTopic(recrDLT, 3, nil); err != nil {
		t.Fatal(err)
	}
	seedRecr(t, c, 1, 100, replaytest.Base)
	e := newEngine(t, c)
	if sum := mustReplay(t, e, Request{Topic: recrDLT}); sum.Replayed != 100 {
		t.Fatalf("first replay: %s", countsString(sum.Counts))
	}

	recreate(t, c)
	seedRecr(t, c, 1000, 100, replaytest.Base.Add(time.Hour))
	if n := replayedCount(t, e, recrDLT); n != 0 {
		t.Fatalf("the recreated DLT shows %d records replayed before any was", n)
	}
	plan, err := e.Plan(ctx, Request{Topic: recrDLT})
	if err != nil || plan.Replay != 100 || plan.Skipped != 0 {
		t.Fatalf("plan on the recreated DLT: %+v %v", plan, err)
	}
	sum := mustReplay(t, e, Request{Topic: recrDLT})
	if sum.Replayed != 100 || sum.Skipped != 0 {
		t.Fatalf("replay of the recreated DLT: %s, want all 100 replayed", countsString(sum.Counts))
	}
	// Each coordinate now reached the target twice: once per incarnation, each a different record.
	assertReplayedFrom(t, c, 200, 2)
	if again := mustReplay(t, e, Request{Topic: recrDLT}); again.Skipped != 100 || again.Replayed != 0 {
		t.Fatalf("rerun on the recreated DLT: %s", countsString(again.Counts))
	}
	if n := replayedCount(t, e, recrDLT); n != 100 {
		t.Fatalf("the recreated DLT shows %d records replayed, want 100", n)
	}

	runs, err := e.History(ctx, recrDLT)
	if err != nil || len(runs) != 3 {
		t.Fatalf("history: %+v %v", runs, err)
	}
	var earlier, current int
	for _, r := range runs {
		if r.TopicID == "" {
			t.Errorf("run %s has no topic id", r.RunID)
		}
		if r.Recreated {
			earlier++
			if r.InLedger != 100 || r.Counts.Replayed != 100 {
				t.Errorf("the earlier incarnation's run lost its replays: %+v", r)
			}
		} else {
			current++
		}
	}
	if earlier != 1 || current != 2 {
		t.Fatalf("history marks %d runs as of an earlier topic and %d as of this one, want 1 and 2: %+v", earlier, current, runs)
	}
}

// TestRecreatedDuringARunStops: a run reads the incarnation whose ID it recorded; if the topic
// is deleted and created again while it reads, it stops instead of reading the new one.
func TestRecreatedDuringARunStops(t *testing.T) {
	c := replaytest.NewCluster(t)
	if err := c.CreateTopic(recrDLT, 3, nil); err != nil {
		t.Fatal(err)
	}
	seedRecr(t, c, 1, 30, replaytest.Base)
	e := newEngine(t, c)
	sc := e.openReplayScan(context.Background(), recrDLT, "AAAAAAAAAAAAAAAAAAAAAA", []partRange{{p: 0, start: 0, end: 10}}, fetchBulk)
	defer sc.close()
	_, err := sc.run(context.Background(), func(*kgo.Record) (bool, error) { return true, nil }, nil)
	if !errors.Is(err, ErrTopicRecreated) {
		t.Fatalf("scan of a topic whose id changed: %v", err)
	}
}

// legacyLedger writes, as versions before topic ids wrote them, a completed run of dltTopic
// that replayed the dead letters at offsets 0..n-1 of partition 0.
func legacyLedger(t *testing.T, c *kfake.Cluster, e *Engine, dltTopic string, n int) string {
	t.Helper()
	if err := e.ensureLedger(context.Background()); err != nil {
		t.Fatal(err)
	}
	runID := uuid.NewString()
	enc := newEntryEncoder(runID, dltTopic, "", "old@version", "before topic ids", "")
	enc.stamps = false // earlier versions wrote neither ids nor stamps
	var rows []batchRow
	for o := range n {
		rows = append(rows, batchRow{from: Coord{dltTopic, 0, int64(o)}, target: Coord{event.TopicOrdersFailed, 0, int64(o)}, count: 1, seq: uint32(o + 1)})
	}
	run := `{"kind":"run","runId":"` + runID + `","dlt":"` + dltTopic + `","actor":"old@version","time":"2026-11-24T03:00:00Z","reason":"before topic ids","status":"completed","started":"2026-11-24T03:00:00Z","counts":{"selected":` +
		strconv.Itoa(n) + `,"replayed":` + strconv.Itoa(n) + `,"skippedAlreadyReplayed":0,"refused":0,"failed":0}}`
	replaytest.Produce(t, c,
		&kgo.Record{Topic: e.LedgerTopic(), Key: []byte(BatchKey(dltTopic, runID, 1)), Value: enc.batch("2026-11-24T03:00:00Z", rows)},
		&kgo.Record{Topic: e.LedgerTopic(), Key: []byte(RunKey(runID)), Value: []byte(run)},
	)
	return runID
}

// TestLegacyLedgerEntries: entries written before the ledger recorded topic ids stay readable
// in the history, and never make a record be replayed twice: until a run records the DLT's
// id they are taken as the current incarnation's; from then on as the incarnation that run
// saw, so a DLT recreated later has its new records replayed.
func TestLegacyLedgerEntries(t *testing.T) {
	ctx := context.Background()
	c := replaytest.NewCluster(t)
	if err := c.CreateTopic(recrDLT, 3, nil); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, c)
	seedRecr(t, c, 0, 10, replaytest.Base) // the legacy run covered partition 0
	var p0 int
	for _, r := range replaytest.ReadCommitted(t, c, recrDLT) {
		if r.Partition == 0 {
			p0++
		}
	}
	legacyRun := legacyLedger(t, c, e, recrDLT, p0)

	runs, err := e.History(ctx, recrDLT)
	if err != nil || len(runs) != 1 || runs[0].RunID != legacyRun || runs[0].InLedger != p0 || runs[0].TopicID != "" || runs[0].Recreated {
		t.Fatalf("history of a legacy ledger: %+v %v", runs, err)
	}
	// The legacy entries are this incarnation's: nothing is replayed twice.
	sum := mustReplay(t, e, Request{Topic: recrDLT})
	if sum.Skipped != p0 || sum.Replayed != 10-p0 {
		t.Fatalf("first run after the upgrade: %s, want %d skipped as replayed by the legacy run", countsString(sum.Counts), p0)
	}
	// Recreated: the legacy entries belong to the incarnation the first id-recording run saw.
	recreate(t, c)
	seedRecr(t, c, 100, 10, replaytest.Base.Add(time.Hour))
	sum = mustReplay(t, e, Request{Topic: recrDLT})
	if sum.Replayed != 10 || sum.Skipped != 0 {
		t.Fatalf("replay of the recreated DLT: %s, want all 10 replayed", countsString(sum.Counts))
	}
	runs, err = e.History(ctx, recrDLT)
	if err != nil || len(runs) != 3 {
		t.Fatalf("history: %+v %v", runs, err)
	}
	for _, r := range runs {
		if r.RunID == legacyRun && (r.InLedger != p0 || r.Counts.Replayed != p0) {
			t.Errorf("the legacy run lost its replays: %+v", r)
		}
	}
}

// TestRecreatedDLTWithoutTopicIDs: on a broker without topic ids (Kafka before 2.8), the ledger
// records each replayed dead letter's timestamp, and a record at a replayed offset with another
// timestamp is another record.
func TestRecreatedDLTWithoutTopicIDs(t *testing.T) {
	c := replaytest.NewCluster(t, kfake.MaxVersions(kversion.V2_7_0()))
	if err := c.CreateTopic(recrDLT, 3, nil); err != nil {
		t.Fatal(err)
	}
	seedRecr(t, c, 1, 30, replaytest.Base)
	e := newEngine(t, c)
	if id, err := e.topicID(context.Background(), recrDLT); err != nil || id != "" {
		t.Fatalf("a 2.7 broker gave topic id %q (%v)", id, err)
	}
	if sum := mustReplay(t, e, Request{Topic: recrDLT}); sum.Replayed != 30 {
		t.Fatalf("first replay: %s", countsString(sum.Counts))
	}
	if sum := mustReplay(t, e, Request{Topic: recrDLT}); sum.Skipped != 30 {
		t.Fatalf("rerun: %s, want all skipped", countsString(sum.Counts))
	}
	recreate(t, c)
	seedRecr(t, c, 1000, 30, replaytest.Base.Add(time.Hour))
	sum := mustReplay(t, e, Request{Topic: recrDLT})
	if sum.Replayed != 30 || sum.Skipped != 0 {
		t.Fatalf("replay of the recreated DLT: %s, want all 30 replayed", countsString(sum.Counts))
	}
	assertReplayedFrom(t, c, 60, 2)
}
