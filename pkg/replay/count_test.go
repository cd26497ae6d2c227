package replay

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// produceTxn writes recs in one transaction of cl and commits or aborts it.
func produceTxn(t *testing.T, cl *kgo.Client, commit bool, recs ...*kgo.Record) {
	t.Helper()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// sagaRange returns SAGA dead letters for orders from, from+1, … (n of them), stamped at.
func sagaRange(from, n int, at time.Time) []*kgo.Record {
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		out = append(out, replaytest.Saga(int32(i%3), int64(i), "DB_LOCK_TIMEOUT", 1, at))
	}
	return out
}

// TestTopicsCountWhatReadCommittedSees: a DLT written by a transactional producer holds aborted
// records and transaction markers, which take offsets; `dlt topics` counts the records a
// read_committed consumer sees, and so does its last-hour count.
func TestTopicsCountWhatReadCommittedSees(t *testing.T) {
	c := replaytest.NewCluster(t)
	e := newEngine(t, c) // now is Base+30m: the last hour starts at Base-30m
	txn := replaytest.Client(t, c, kgo.TransactionalID("spring-listener"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	old, recent := replaytest.Base.Add(-2*time.Hour), replaytest.Base.Add(10*time.Minute)
	produceTxn(t, txn, true, sagaRange(1, 30, old)...)
	produceTxn(t, txn, false, sagaRange(100, 80, recent)...) // aborted: never seen
	produceTxn(t, txn, true, sagaRange(200, 20, recent)...)
	replaytest.Produce(t, c, sagaRange(300, 10, recent)...) // plain writes among them
	produceTxn(t, txn, false, sagaRange(400, 5, old)...)

	topics, err := e.Topics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got *TopicInfo
	for i := range topics {
		if topics[i].Topic == ordersDLT {
			got = &topics[i]
		}
	}
	if got == nil {
		t.Fatalf("%s not listed: %+v", ordersDLT, topics)
	}
	if got.Records != 60 || got.LastHour != 30 {
		t.Fatalf("%s: %d records, %d in the last hour; a read_committed consumer sees 60, 30 of the last hour", ordersDLT, got.Records, got.LastHour)
	}
	if got.Oldest == nil || !got.Oldest.Equal(old) || got.Newest == nil || !got.Newest.Equal(recent) {
		t.Fatalf("oldest %v, newest %v; want %v and %v", got.Oldest, got.Newest, old, recent)
	}
	if n := len(replaytest.ReadCommitted(t, c, ordersDLT)); n != 60 {
		t.Fatalf("a read_committed consumer sees %d records", n)
	}

	// The outline reads offsets only: an upper bound, aborted records and markers included,
	// never below what Topics counts.
	outline, err := e.TopicsOutline(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outline {
		if o.Topic != ordersDLT {
			continue
		}
		if !o.Outline || o.Records < got.Records || o.Records < 145 || o.LastHour != 0 || o.Newest != nil {
			t.Fatalf("outline %+v: want an upper bound of at least the 145 records written, and nothing read", o)
		}
		return
	}
	t.Fatalf("%s not in the outline %+v", ordersDLT, outline)
}
