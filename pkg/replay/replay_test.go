package replay

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

func TestReplayThenRerunSkipsThenForce(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 30)
	e := newEngine(t, c)

	var results []Result
	sum := mustReplay(t, e, Request{Topic: ordersDLT, OnResult: func(r Result) { results = append(results, r) }})
	if got := countsString(sum.Counts); got != "selected=30 replayed=30 skipped=0 refused=0 failed=0" || sum.Status != RunCompleted {
		t.Fatalf("first run: %s status %s", got, sum.Status)
	}
	if len(results) != 30 {
		t.Fatalf("%d per-record results, want 30", len(results))
	}
	ids := map[string]Result{}
	for _, r := range results {
		if r.Action != ActionReplayed || r.Target == nil || r.Target.Topic != event.TopicOrdersFailed || r.Target.Offset < 0 || r.ReplayCount != 1 {
			t.Fatalf("result %+v", r)
		}
		if _, dup := ids[r.ReplayID]; dup || r.ReplayID == "" {
			t.Fatalf("replay id %q repeated or empty", r.ReplayID)
		}
		ids[r.ReplayID] = r
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, 30)
	// Each replayed record carries its result's replay id, at the offset the result reports.
	for _, rec := range replaytest.ReadCommitted(t, c, event.TopicOrdersFailed) {
		id, _ := header(rec, dlt.HeaderReplayID)
		r, ok := ids[id]
		if !ok || r.Target.Partition != rec.Partition || r.Target.Offset != rec.Offset {
			t.Fatalf("record at %d/%d carries replay id %q, results say %+v", rec.Partition, rec.Offset, id, r)
		}
	}

	sum = mustReplay(t, e, Request{Topic: ordersDLT})
	if got := countsString(sum.Counts); got != "selected=30 replayed=0 skipped=30 refused=0 failed=0" {
		t.Fatalf("rerun: %s", got)
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, 30)

	sel := Selection{Offsets: OffsetRange{From: 0, To: 0, Set: true}, Partitions: []int32{1}}
	sum = mustReplay(t, e, Request{Topic: ordersDLT, Selection: sel, Force: true})
	if got := countsString(sum.Counts); got != "selected=1 replayed=1 skipped=0 refused=0 failed=0" {
		t.Fatalf("forced: %s", got)
	}
	counts := map[string]int{}
	for _, r := range replaytest.ReadCommitted(t, c, event.TopicOrdersFailed) {
		from, _ := header(r, dlt.HeaderReplayedFrom)
		n, _ := header(r, dlt.HeaderReplayCount)
		counts[from+"#"+n]++
	}
	if counts["orders-failed.DLT/1/0#1"] != 1 || counts["orders-failed.DLT/1/0#2"] != 1 {
		t.Fatalf("forced replay should carry replay count 2 beside the first replay's 1: %v", counts)
	}
}

func TestReplayedRecordShape(t *testing.T) {
	c := replaytest.NewCluster(t)
	orig := replaytest.Saga(0, 42, "DB_LOCK_TIMEOUT", 2, replaytest.Base)
	orig.Headers = append(orig.Headers,
		kgoHeader(dlt.HeaderReplayCount, "1"), kgoHeader(dlt.HeaderReplayID, "old"), kgoHeader(dlt.HeaderTargetGroup, "old-group"),
		kgoHeader("x-original-topic", "elsewhere"), kgoHeader("tenant", "kr"))
	spring := replaytest.Spring(2, 7, replaytest.Base)
	connect := replaytest.Connect(1, 9, replaytest.Base)
	replaytest.Produce(t, c, orig, spring, connect)
	e := newEngine(t, c)

	mustReplay(t, e, Request{Topic: ordersDLT, Group: event.GroupProductService})
	mustReplay(t, e, Request{Topic: springDLT})
	mustReplay(t, e, Request{Topic: connectDLT})

	got := replaytest.ReadCommitted(t, c, event.TopicOrdersFailed)
	got = append(got, replaytest.ReadCommitted(t, c, event.TopicPaymentsFailed)...)
	if len(got) != 3 {
		t.Fatalf("%d replayed records, want 3", len(got))
	}
	byFrom := map[string]*struct{ value, key string }{}
	for _, r := range got {
		from, _ := header(r, dlt.HeaderReplayedFrom)
		byFrom[from] = &struct{ value, key string }{string(r.Value), string(r.Key)}
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, dlt.SpringPrefix) || strings.HasPrefix(h.Key, dlt.ConnectPrefix) || h.Key == "x-original-topic" {
				t.Errorf("%s: dead-letter header %s kept", from, h.Key)
			}
		}
		id, _ := header(r, dlt.HeaderReplayID)
		if id == "" || id == "old" {
			t.Errorf("%s: replay id %q", from, id)
		}
		var n int
		for _, h := range r.Headers {
			if h.Key == dlt.HeaderReplayCount || h.Key == dlt.HeaderReplayID || h.Key == dlt.HeaderReplayedFrom || h.Key == dlt.HeaderTargetGroup {
				n++
			}
		}
		switch from {
		case "orders-failed.DLT/0/0":
			if v, _ := header(r, dlt.HeaderReplayCount); v != "2" {
				t.Errorf("replay count %q, want 2 (was replayed once before)", v)
			}
			if v, _ := header(r, dlt.HeaderTargetGroup); v != event.GroupProductService {
				t.Errorf("target group %q", v)
			}
			if v, _ := header(r, "traceparent"); !strings.HasPrefix(v, "00-4bf92f") {
				t.Errorf("trace context lost: %q", v)
			}
			if v, _ := header(r, "tenant"); v != "kr" {
				t.Errorf("business header lost: %q", v)
			}
			if n != 4 {
				t.Errorf("%d opsctl headers, want one each of four", n)
			}
			if string(r.Value) != string(orig.Value) || string(r.Key) != "42" {
				t.Errorf("value or key changed: %s / %s", r.Key, r.Value)
			}
		case "payments-failed-dlt/2/0":
			if r.Topic != event.TopicPaymentsFailed || string(r.Value) != string(spring.Value) {
				t.Errorf("spring replay went to %s with %s", r.Topic, r.Value)
			}
			if v, _ := header(r, "b3"); v == "" {
				t.Error("spring trace header b3 lost")
			}
			if _, ok := header(r, dlt.HeaderTargetGroup); ok || n != 3 {
				t.Errorf("no --group: want no target group header and three opsctl headers, got %d", n)
			}
		case "connect-orders-dlt/1/0":
			if string(r.Value) != string(connect.Value) || string(r.Key) != "9" {
				t.Errorf("connect value changed: %q", r.Value)
			}
		default:
			t.Errorf("unexpected replayed-from %q", from)
		}
	}
}

func TestReplayRules(t *testing.T) {
	at := replaytest.Base
	noTarget := replaytest.Saga(0, 1, "X", 1, at)
	noTarget.Headers = nil
	poisoned := replaytest.Saga(1, 2, "X", 1, at)
	poisoned.Headers = append(poisoned.Headers, kgoHeader(dlt.HeaderReplayCount, "3"))
	missing := replaytest.Saga(2, 3, "X", 1, at)
	for i, h := range missing.Headers {
		if h.Key == dlt.HeaderOriginalTopic {
			missing.Headers[i].Value = []byte("no-such-topic")
		}
	}
	fine := replaytest.Saga(0, 4, "X", 1, at)

	tests := []struct {
		name      string
		allowlist []string
		req       Request
		want      string // counts, or an error substring
		codes     map[string]int
	}{
		{name: "defaults", req: Request{}, want: "selected=4 replayed=1 skipped=0 refused=3 failed=0",
			codes: map[string]int{RefuseNoTarget: 1, RefusePoison: 1, RefuseUnknownTopic: 1}},
		{name: "force passes the poison guard", req: Request{Force: true}, want: "selected=4 replayed=2 skipped=0 refused=2 failed=0"},
		{name: "higher max-replays", req: Request{MaxReplays: 4}, want: "selected=4 replayed=2 skipped=0 refused=2 failed=0"},
		{name: "allowlist without the target", allowlist: []string{"payments-failed"}, req: Request{},
			want: "selected=4 replayed=0 skipped=0 refused=4 failed=0", codes: map[string]int{RefuseNotAllowed: 3, RefuseNoTarget: 1}},
		{name: "allowlist with the target", allowlist: []string{"orders-failed"}, req: Request{}, want: "selected=4 replayed=1 skipped=0 refused=3 failed=0"},
		{name: "--to without an allowlist", req: Request{To: "orders-failed"}, want: "--to needs a topic allowlist"},
		{name: "--to off the allowlist", allowlist: []string{"orders-failed"}, req: Request{To: "payments-failed"}, want: "not on the context's allowlist"},
		{name: "--to on the allowlist", allowlist: []string{"orders-failed", "payments-failed"}, req: Request{To: "payments-failed", Force: true},
			want: "selected=4 replayed=4 skipped=0 refused=0 failed=0"},
		{name: "--to the DLT itself", allowlist: []string{ordersDLT}, req: Request{To: ordersDLT}, want: "selected=4 replayed=0 skipped=0 refused=4 failed=0",
			codes: map[string]int{RefuseLoop: 4}},
		{name: "no reason", req: Request{Reason: " "}, want: "needs --reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := replaytest.NewCluster(t)
			replaytest.Produce(t, c, noTarget, poisoned, missing, fine)
			e := newEngine(t, c, func(cfg *Config) { cfg.Allowlist = tt.allowlist })
			codes := map[string]int{}
			tt.req.Topic = ordersDLT
			tt.req.OnResult = func(r Result) {
				if r.Action == ActionRefused {
					codes[r.Code]++
				}
			}
			if tt.req.Reason == "" {
				tt.req.Reason = "test"
			}
			plan, perr := e.Plan(context.Background(), tt.req)
			sum, err := e.Replay(context.Background(), tt.req)
			if !strings.HasPrefix(tt.want, "selected=") {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "nothing was changed") {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				if n := len(replaytest.ReadCommitted(t, c, e.LedgerTopic())); n != 0 {
					t.Fatalf("a refused request wrote %d ledger records", n)
				}
				return
			}
			if err != nil || perr != nil {
				t.Fatalf("replay: %v, plan: %v", err, perr)
			}
			if got := countsString(sum.Counts); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if plan.Selected != int64(sum.Selected) || plan.Replay != int64(sum.Replayed) || plan.Refused != int64(sum.Refused) {
				t.Fatalf("plan %+v disagrees with the run %+v", plan, sum.Counts)
			}
			if wantStatus := map[bool]string{true: RunPartial, false: RunCompleted}[sum.Refused > 0]; sum.Status != wantStatus {
				t.Fatalf("status %s, want %s", sum.Status, wantStatus)
			}
			for code, n := range tt.codes {
				if codes[code] != n {
					t.Errorf("refusals %v, want %s=%d", codes, code, n)
				}
			}
		})
	}
}

func TestReplayLimitAndRate(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 20)
	e := newEngine(t, c)
	var progress []Progress
	sum := mustReplay(t, e, Request{Topic: ordersDLT, Limit: 8, Rate: 500, OnProgress: func(p Progress) { progress = append(progress, p) }})
	if sum.Replayed != 8 || !sum.Limited {
		t.Fatalf("limited run: %+v", sum)
	}
	if len(progress) == 0 || progress[len(progress)-1].Replayed != 8 {
		t.Fatalf("progress %+v", progress)
	}
	sum = mustReplay(t, e, Request{Topic: ordersDLT, Limit: 8})
	if sum.Replayed != 8 || sum.Skipped != 8 {
		t.Fatalf("second limited run should skip the first eight and replay eight more: %s", countsString(sum.Counts))
	}
	sum = mustReplay(t, e, Request{Topic: ordersDLT})
	if sum.Replayed != 4 || sum.Skipped != 16 {
		t.Fatalf("last run: %s", countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, 20)
}

func TestPlanIsReadOnlyAndMatchesRun(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 12)
	e := newEngine(t, c)
	where, err := CompileWhere(`errorCode == "DB_LOCK_TIMEOUT" && quantity > 1`)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Topic: ordersDLT, Selection: Selection{Where: where}, Reason: "r"}
	plan, err := e.Plan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(replaytest.ReadCommitted(t, c, e.LedgerTopic())); n != 0 {
		t.Fatalf("a plan wrote %d ledger records", n)
	}
	if len(replaytest.ReadCommitted(t, c, event.TopicOrdersFailed)) != 0 {
		t.Fatal("a plan replayed records")
	}
	// odd i → DB_LOCK_TIMEOUT; quantity = 1 + i%4 > 1 unless i%4 == 0 (never for odd i)
	if plan.Selected != 6 || plan.Replay != 6 || len(plan.Targets) != 1 || plan.Targets[0].Topic != event.TopicOrdersFailed {
		t.Fatalf("plan %+v", plan)
	}
	var spanned int64
	for _, sp := range plan.Targets[0].Partitions {
		spanned += sp.Count
	}
	if spanned != 6 || len(plan.Targets[0].Samples) != 3 {
		t.Fatalf("plan spans %+v samples %v", plan.Targets[0].Partitions, plan.Targets[0].Samples)
	}

	// Records arriving after the plan are not replayed by a run bound to it.
	seedSaga(t, c, 3)
	req.Bound = plan.EndOffsets
	sum := mustReplay(t, e, req)
	if sum.Replayed != 6 {
		t.Fatalf("bound run replayed %d, want the plan's 6", sum.Replayed)
	}
}

func TestHistory(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 9)
	replaytest.Produce(t, c, replaytest.Spring(0, 1, replaytest.Base))
	clock := replaytest.Base
	e := newEngine(t, c, func(cfg *Config) { cfg.Now = func() time.Time { clock = clock.Add(time.Minute); return clock } })
	mustReplay(t, e, Request{Topic: ordersDLT, Limit: 4, Reason: "first half"})
	mustReplay(t, e, Request{Topic: ordersDLT, Reason: "the rest"})
	mustReplay(t, e, Request{Topic: springDLT, Reason: "spring"})

	runs, err := e.History(context.Background(), ordersDLT)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Reason != "the rest" || runs[1].Reason != "first half" {
		t.Fatalf("history %+v", runs)
	}
	if runs[0].Counts.Replayed != 5 || runs[0].Counts.Skipped != 4 || runs[1].Counts.Replayed != 4 || runs[0].Status != RunCompleted || runs[0].Actor != "oncall@laptop" {
		t.Fatalf("history counts %+v", runs)
	}
	if runs[0].InLedger != 5 || runs[0].Finished == nil {
		t.Fatalf("history ledger entries %+v", runs[0])
	}
	all, err := e.History(context.Background(), "")
	if err != nil || len(all) != 3 {
		t.Fatalf("all history: %d runs, %v", len(all), err)
	}
}

// TestLedgerSurvivesCompaction: kfake's Compact compacts the ledger and applies every topic's
// retention against the wall clock, so the dead letters here are stamped relative to the time the
// test starts, not to a fixed date: ten recent ones that retention keeps, and one on partition 0
// that is eight days old (the DLT keeps seven), which retention deletes. Replays are remembered
// through compaction, and the deleted dead letter is simply no longer there to select.
func TestLedgerSurvivesCompaction(t *testing.T) {
	c := replaytest.NewCluster(t)
	now := time.Now()
	// Retention deletes whole batches: the old dead letter goes in a batch of its own.
	replaytest.Produce(t, c, replaytest.Saga(0, 100, "DB_LOCK_TIMEOUT", 1, now.Add(-8*24*time.Hour)))
	var recs []*kgo.Record
	for i := 1; i <= 10; i++ {
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, now.Add(-time.Duration(i)*time.Minute)))
	}
	replaytest.Produce(t, c, recs...)
	e := newEngine(t, c)
	if sum := mustReplay(t, e, Request{Topic: ordersDLT}); sum.Replayed != 11 {
		t.Fatalf("first run: %s", countsString(sum.Counts))
	}
	mustReplay(t, e, Request{Topic: ordersDLT, Force: true, Selection: Selection{Partitions: []int32{0}}})
	c.Compact()
	sum := mustReplay(t, e, Request{Topic: ordersDLT})
	if sum.Skipped != 10 || sum.Replayed != 0 || sum.Selected != 10 {
		t.Fatalf("after compaction: %s (want the 10 recent dead letters skipped, the expired one gone)", countsString(sum.Counts))
	}
	runs, err := e.History(context.Background(), ordersDLT)
	if err != nil || len(runs) != 3 {
		t.Fatalf("history after compaction: %v %v", runs, err)
	}
}

func TestReplayUnknownTopic(t *testing.T) {
	c := replaytest.NewCluster(t)
	e := newEngine(t, c)
	_, err := e.Replay(context.Background(), Request{Topic: "nope.DLT", Reason: "r"})
	if !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Get(ctx, ordersDLT, 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get on an empty topic: %v", err)
	}
}

func TestRecordTooLargeForItsTopicFailsAlone(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 6)
	big := replaytest.Saga(0, 99, "X", 1, replaytest.Base)
	big.Value = []byte(`{"errorCode":"X","pad":"` + strings.Repeat("x", 1_100_000) + `"}`)
	replaytest.Produce(t, c, big)
	e := newEngine(t, c)
	var failed []Result
	sum, err := e.Replay(context.Background(), Request{Topic: ordersDLT, Reason: "r", OnResult: func(r Result) {
		if r.Action == ActionFailed {
			failed = append(failed, r)
		}
	}})
	if err != nil || sum.Status != RunPartial || sum.Replayed != 6 || sum.Failed != 1 {
		t.Fatalf("%v: %s %s", err, sum.Status, countsString(sum.Counts))
	}
	if len(failed) != 1 || failed[0].From.Offset != 2 || !strings.Contains(failed[0].Reason, "MESSAGE_TOO_LARGE") {
		t.Fatalf("failed %+v", failed)
	}
	// The operator raises the topic's limit and runs again: only the big one is replayed.
	v := "4194304"
	adm := kadm.NewClient(replaytest.Client(t, c))
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, event.TopicOrdersFailed); err != nil {
		t.Fatal(err)
	}
	sum = mustReplay(t, newEngine(t, c), Request{Topic: ordersDLT})
	if sum.Replayed != 1 || sum.Skipped != 6 {
		t.Fatalf("after raising the limit: %s", countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, 7)
}

// TestLedgerBatchesRecordWhereEachReplayWent: the ledger's batch entries name, for every dead
// letter replayed, the target record it became, and that record carries the replay id and the
// origin the entry says.
func TestLedgerBatchesRecordWhereEachReplayWent(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 20)
	e := newEngine(t, c) // batches of 7: three transactions
	sum := mustReplay(t, e, Request{Topic: ordersDLT})
	targets := map[Coord]*kgo.Record{}
	for _, r := range replaytest.ReadCommitted(t, c, event.TopicOrdersFailed) {
		targets[Coord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}] = r
	}
	runID, err := uuid.Parse(sum.RunID)
	if err != nil {
		t.Fatal(err)
	}
	rows, batches := 0, 0
	for _, rec := range replaytest.ReadCommitted(t, c, e.LedgerTopic()) {
		en, err := decodeEntry(rec.Key, rec.Value)
		if err != nil {
			t.Fatalf("ledger record %s: %v", rec.Key, err)
		}
		if en.Kind != KindBatch {
			continue
		}
		batches++
		for _, row := range en.Replays {
			rows++
			to := Coord{Topic: en.Targets[row.Target], Partition: row.TargetPartition, Offset: row.TargetOffset}
			got := targets[to]
			if got == nil {
				t.Fatalf("row %+v: no record at %s", row, to)
			}
			id := runID
			binary.BigEndian.PutUint32(id[12:], row.Seq)
			from := Coord{Topic: ordersDLT, Partition: row.Partition, Offset: row.Offset}.String()
			if v, _ := header(got, dlt.HeaderReplayID); v != id.String() {
				t.Errorf("%s: replay id %s, ledger says %s", to, v, id)
			}
			if v, _ := header(got, dlt.HeaderReplayedFrom); v != from {
				t.Errorf("%s: replayed from %s, ledger says %s", to, v, from)
			}
		}
	}
	if rows != 20 || batches != 3 {
		t.Fatalf("ledger holds %d rows in %d batch entries, want 20 in 3", rows, batches)
	}
}

// TestSmallLedgerLimitSplitsBatchEntries: a ledger topic whose max.message.bytes is small gets
// more, smaller batch entries, never one it would reject.
func TestSmallLedgerLimitSplitsBatchEntries(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 20)
	e := newEngine(t, c, func(cfg *Config) { cfg.BatchSize = 20 })
	compact, limit := "compact", "2000"
	adm := kadm.NewClient(replaytest.Client(t, c))
	if _, err := adm.CreateTopic(context.Background(), 3, -1, map[string]*string{"cleanup.policy": &compact, "max.message.bytes": &limit}, e.LedgerTopic()); err != nil {
		t.Fatal(err)
	}
	sum := mustReplay(t, e, Request{Topic: ordersDLT})
	if sum.Replayed != 20 {
		t.Fatalf("replayed %s", countsString(sum.Counts))
	}
	entries := 0
	for _, rec := range replaytest.ReadCommitted(t, c, e.LedgerTopic()) {
		if len(rec.Value) > 2000 {
			t.Errorf("ledger record of %d bytes on a topic that takes 2000", len(rec.Value))
		}
		if en, err := decodeEntry(rec.Key, rec.Value); err == nil && en.Kind == KindBatch {
			entries++
		}
	}
	if entries < 4 { // 2000/2/150 = 6 rows per entry
		t.Fatalf("%d batch entries for 20 rows", entries)
	}
	if sum := mustReplay(t, e, Request{Topic: ordersDLT}); sum.Skipped != 20 || sum.Replayed != 0 {
		t.Fatalf("rerun: %s", countsString(sum.Counts))
	}
	assertExactlyOnce(t, c, event.TopicOrdersFailed, ordersDLT, 20)
}

// TestNewItemHeadersStayApart builds replayed records from dead letters with few, many and
// more headers than a slab piece holds, and checks that each keeps exactly its own headers:
// the room given back after one record must not be shared with the record before it.
func TestNewItemHeadersStayApart(t *testing.T) {
	r := &run{uuid: newRunID()}
	mk := func(i, business int) *kgo.Record {
		hs := []kgo.RecordHeader{{Key: dlt.HeaderOriginalTopic, Value: []byte("orders")}, {Key: "kafka_dlt-exception-message", Value: []byte("boom")}}
		for j := range business {
			hs = append(hs, kgo.RecordHeader{Key: fmt.Sprintf("h%d", j), Value: []byte(fmt.Sprintf("%d/%d", i, j))})
		}
		return &kgo.Record{Topic: "orders.DLT", Offset: int64(i), Key: []byte(strconv.Itoa(i)), Headers: hs}
	}
	sizes := []int{0, 1, 3, headerSlab/8 + 10, 2, 0, 5, headerSlab / 8, 1}
	var items []*item
	for range 200 { // enough records to cross several header slabs
		for _, n := range sizes {
			i := len(items)
			items = append(items, r.newItem(mk(i, n), Coord{Topic: "orders.DLT", Partition: 0, Offset: int64(i)}, decision{action: ActionReplayed, target: "orders", count: 1}))
		}
	}
	for i, it := range items {
		n := sizes[i%len(sizes)]
		hs := it.out.Headers
		if len(hs) != n+3 || cap(hs) != len(hs) {
			t.Fatalf("record %d: %d headers (cap %d), want %d", i, len(hs), cap(hs), n+3)
		}
		for j := range n {
			if hs[j].Key != fmt.Sprintf("h%d", j) || string(hs[j].Value) != fmt.Sprintf("%d/%d", i, j) {
				t.Fatalf("record %d header %d = %s=%s", i, j, hs[j].Key, hs[j].Value)
			}
		}
		if hs[n].Key != dlt.HeaderReplayID || string(hs[n+2].Value) != fmt.Sprintf("orders.DLT/0/%d", i) {
			t.Fatalf("record %d replay headers %v", i, hs[n:])
		}
	}
}

// TestOperationClientsSendNoClientMetrics: the clients a replay opens for itself (scans,
// lanes) live for one operation and send no client metrics (KIP-714), which would cost each
// of them a compressed report and a round trip as it closes.
func TestOperationClientsSendNoClientMetrics(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 20)
	e := newEngine(t, c)
	if _, err := e.Topics(context.Background()); err != nil { // the engine's own client is in use
		t.Fatal(err)
	}
	var pushes atomic.Int32
	c.ControlKey(int16(kmsg.PushTelemetry), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pushes.Add(1)
		return nil, nil, false
	})
	mustReplay(t, e, Request{Topic: ordersDLT})
	mustReplay(t, e, Request{Topic: ordersDLT}) // a rerun: scans only
	if n := pushes.Load(); n != 0 {
		t.Fatalf("the replay's clients pushed client metrics %d times", n)
	}
}

// TestReplayCopiesRecycledDeadLetters: a replay's scan (rawScan) decodes every dead letter into
// the same record, header slice and decompression buffer, so the memory of the dead letters it
// has decided is reused while their replays are still on their way. Every replayed record must
// still carry its own dead letter's key, value and headers, null and empty ones as they were,
// and the buffer must really be reused. Likewise the records to replay are built in the memory
// of batches already committed (slabs): each must still be its own dead letter's.
func TestReplayCopiesRecycledDeadLetters(t *testing.T) {
	c := replaytest.NewCluster(t)
	const n = 3000
	recs := make([]*kgo.Record, 0, n)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		r := replaytest.Spring(int32(i%3), int64(i), replaytest.Base)
		// A stack trace that does not compress: the dead letters span many fetches, so later
		// fetches reuse the memory of earlier ones.
		trace := make([]byte, 1024)
		for j := range trace {
			trace[j] = byte(rnd.Uint32())
		}
		for j := range r.Headers {
			if r.Headers[j].Key == dlt.HeaderExceptionStacktrace {
				r.Headers[j].Value = trace
			}
		}
		switch i % 5 {
		case 1:
			r.Key = nil
		case 2:
			r.Value = nil
		case 3:
			r.Value = []byte{}
		}
		r.Headers = append(r.Headers, kgoHeader("tenant", strconv.Itoa(i)), kgo.RecordHeader{Key: "null"}, kgo.RecordHeader{Key: "empty", Value: []byte{}})
		recs = append(recs, r)
	}
	for chunk := range slices.Chunk(recs, 60) { // many small compressed batches
		replaytest.Produce(t, c, chunk...)
	}
	e := newEngine(t, c, func(cfg *Config) { cfg.BatchSize = 100 })
	if sum := mustReplay(t, e, Request{Topic: springDLT}); sum.Replayed != n {
		t.Fatalf("replayed %d of %d: %+v", sum.Replayed, n, sum)
	}
	if e.scanBuffersReused.Load() == 0 {
		t.Error("the replay's scan never decompressed into memory it had used before")
	}
	if e.slabsReused.Load() == 0 {
		t.Error("the replay never built records in the memory of committed ones")
	}
	got := replaytest.ReadCommitted(t, c, event.TopicPaymentsFailed)
	if len(got) != n {
		t.Fatalf("%d replayed records, want %d", len(got), n)
	}
	seen := map[int]bool{}
	for _, r := range got {
		v, _ := header(r, "tenant")
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 || i >= n || seen[i] {
			t.Fatalf("replayed record with tenant header %q (%v), seen before: %v", v, err, seen[i])
		}
		seen[i] = true
		want := recs[i]
		if !bytes.Equal(r.Key, want.Key) || (r.Key == nil) != (want.Key == nil) {
			t.Errorf("record %d: key %q (nil %v), want %q (nil %v)", i, r.Key, r.Key == nil, want.Key, want.Key == nil)
		}
		if !bytes.Equal(r.Value, want.Value) || (r.Value == nil) != (want.Value == nil) {
			t.Errorf("record %d: value %q (nil %v), want %q (nil %v)", i, r.Value, r.Value == nil, want.Value, want.Value == nil)
		}
		if b3, _ := header(r, "b3"); b3 != "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1" {
			t.Errorf("record %d: b3 %q", i, b3)
		}
		for _, h := range r.Headers {
			if (h.Key == "null" && h.Value != nil) || (h.Key == "empty" && (h.Value == nil || len(h.Value) != 0)) {
				t.Errorf("record %d: header %s = %q (nil %v)", i, h.Key, h.Value, h.Value == nil)
			}
		}
		if from, _ := header(r, dlt.HeaderReplayedFrom); from != fmt.Sprintf("%s/%d/%d", springDLT, i%3, i/3) {
			t.Errorf("record %d: replayed from %s", i, from)
		}
	}
}

// TestProblemsOnlyReportsRefusalsAndFailures: with ProblemsOnly (the CLI's table output) a
// run makes results only for the records it refuses or fails, on a first run and a rerun.
func TestProblemsOnlyReportsRefusalsAndFailures(t *testing.T) {
	c := replaytest.NewCluster(t)
	noTarget := replaytest.Saga(0, 1, "X", 1, replaytest.Base)
	noTarget.Headers = nil
	replaytest.Produce(t, c, noTarget, replaytest.Saga(1, 2, "X", 1, replaytest.Base), replaytest.Saga(2, 3, "X", 1, replaytest.Base))
	e := newEngine(t, c)
	for _, run := range []struct{ name, counts string }{
		{"first run", "selected=3 replayed=2 skipped=0 refused=1 failed=0"},
		{"rerun", "selected=3 replayed=0 skipped=2 refused=1 failed=0"},
	} {
		var got []string
		sum := mustReplay(t, e, Request{Topic: ordersDLT, ProblemsOnly: true, OnResult: func(r Result) {
			got = append(got, r.Action+" "+r.From.String())
		}})
		if c := countsString(sum.Counts); c != run.counts {
			t.Errorf("%s: %s, want %s", run.name, c, run.counts)
		}
		if want := []string{ActionRefused + " " + ordersDLT + "/0/0"}; !slices.Equal(got, want) {
			t.Errorf("%s: results %q, want %q", run.name, got, want)
		}
	}
}
