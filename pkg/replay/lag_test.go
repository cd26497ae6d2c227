package replay

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

// TestOriginLags: orders-failed holds 5 records on partition 0 and 3 on partition 1; one group
// has read 2 of partition 0 and all of partition 1, another 4 of partition 0 only. The DLT of
// orders-failed shows their summed lag on it; a DLT whose original topic nobody reads is known
// to have no lag figure, and one whose original topic does not exist has no entry.
func TestOriginLags(t *testing.T) {
	ctx := context.Background()
	c := replaytest.NewCluster(t)
	var recs []*kgo.Record
	for i := range 8 {
		p := int32(0)
		if i >= 5 {
			p = 1
		}
		recs = append(recs, &kgo.Record{Topic: event.TopicOrdersFailed, Partition: p, Value: []byte("{}")})
	}
	replaytest.Produce(t, c, recs...)
	adm := kadm.NewClient(replaytest.Client(t, c))
	commit := func(group string, offs map[int32]int64) {
		t.Helper()
		o := kadm.Offsets{}
		for p, at := range offs {
			o.AddOffset(event.TopicOrdersFailed, p, at, -1)
		}
		if err := adm.CommitAllOffsets(ctx, group, o); err != nil {
			t.Fatal(err)
		}
	}
	commit(event.GroupProductService, map[int32]int64{0: 2, 1: 3})
	commit("audit", map[int32]int64{0: 4})

	e := newEngine(t, c)
	ordersDLT, paidDLT := event.DLT(event.TopicOrdersFailed), event.DLT(event.TopicPaymentsPaid)
	lags, err := e.OriginLags(ctx, []string{ordersDLT, paidDLT, "connect-orders-dlt"})
	if err != nil {
		t.Fatal(err)
	}
	l := lags[ordersDLT]
	if !l.Known() || l.Topic != event.TopicOrdersFailed || len(l.Groups) != 2 {
		t.Fatalf("lag of %s: %+v", ordersDLT, l)
	}
	// audit: 5-4 on partition 0, and all 3 of partition 1, where it has committed nothing: a
	// group that reads a topic is behind on all of it until it commits.
	if g := l.Groups[0]; g.Group != "audit" || g.Lag != 4 {
		t.Errorf("audit: %+v", g)
	}
	if g := l.Groups[1]; g.Group != event.GroupProductService || g.Lag != 3 {
		t.Errorf("%s: %+v", event.GroupProductService, g)
	}
	if l.Lag != 7 {
		t.Errorf("summed lag %d, want 7", l.Lag)
	}
	if p := lags[paidDLT]; p == nil || p.Known() || p.Topic != event.TopicPaymentsPaid {
		t.Errorf("lag of %s, read by no group: %+v", paidDLT, p)
	}
	if _, ok := lags["connect-orders-dlt"]; ok {
		t.Errorf("connect-orders-dlt has no original topic named connect-orders, yet: %+v", lags["connect-orders-dlt"])
	}
	if got := e.OriginTopic("payments-failed-dlt"); got != "payments-failed" {
		t.Errorf("OriginTopic(payments-failed-dlt) = %q", got)
	}
	if got := e.OriginTopic(".DLT"); got != "" {
		t.Errorf("OriginTopic(.DLT) = %q, want none", got)
	}
}
