package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

func TestSpansAndWindow(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 30) // 10 per partition, offsets 0..9
	e := newEngine(t, c)
	ctx := context.Background()
	spans, err := e.Spans(ctx, ordersDLT)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(spans) != "[{0 0 10} {1 0 10} {2 0 10}]" {
		t.Fatalf("spans = %v", spans)
	}
	tests := []struct {
		name   string
		coords []Coord
		want   []string // "p/o key" or "nil"
	}{
		{"contiguous", []Coord{{Partition: 1, Offset: 2}, {Partition: 1, Offset: 3}, {Partition: 1, Offset: 4}}, []string{"1/2 7", "1/3 10", "1/4 13"}},
		{"across partitions, out of order", []Coord{{Partition: 2, Offset: 9}, {Partition: 0, Offset: 0}}, []string{"2/9 29", "0/0 3"}},
		{"past the end and negative", []Coord{{Partition: 0, Offset: 10}, {Partition: 0, Offset: 9}}, []string{"nil", "0/9 30"}},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := e.Window(ctx, ordersDLT, tt.coords)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				if r == nil {
					got = append(got, "nil")
					continue
				}
				got = append(got, fmt.Sprintf("%d/%d %s", r.Partition, r.Offset, r.Key))
				if r.ErrorCode == "" || r.Fields != nil {
					t.Errorf("window records should be briefly decoded: %+v", r)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("window = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := e.Window(ctx, "no-such.DLT", []Coord{{Partition: 0, Offset: 0}}); err == nil {
		t.Fatal("a window of a missing topic did not fail")
	}
}

// TestWindowSparse reads a window whose coordinates lie far apart: each cluster is read on its
// own, and the records between them are not returned.
func TestWindowSparse(t *testing.T) {
	c := replaytest.NewCluster(t)
	var recs []*kgo.Record
	for i := 0; i < 2000; i++ {
		recs = append(recs, replaytest.Saga(0, int64(i), "X", 1, replaytest.Base))
	}
	replaytest.Produce(t, c, recs...)
	e := newEngine(t, c)
	coords := []Coord{{Partition: 0, Offset: 5}, {Partition: 0, Offset: 1999}, {Partition: 0, Offset: 700}}
	got, err := e.Window(context.Background(), ordersDLT, coords)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r == nil || r.Offset != coords[i].Offset {
			t.Fatalf("window[%d] = %+v, want offset %d", i, r, coords[i].Offset)
		}
	}
}

func TestIndex(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 30)
	e := newEngine(t, c)
	ctx := context.Background()
	where, err := CompileWhere("quantity > 3")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		sel   *Selection
		keep  func(*dlt.Record) bool
		want  int
		first string
	}{
		{"all", nil, nil, 30, "orders-failed.DLT/0/0"},
		{"group by keep", nil, func(d *dlt.Record) bool { return d.ErrorCode == "STOCK_ROW_MISSING" }, 15, "orders-failed.DLT/0/1"},
		{"where", &Selection{Where: where}, nil, 7, "orders-failed.DLT/0/0"},
		{"where and keep", &Selection{Where: where}, func(d *dlt.Record) bool { return d.Partition == 2 }, 2, "orders-failed.DLT/2/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Coord
			var progress []IndexProgress
			ends, sum, err := e.Index(ctx, ordersDLT, tt.sel, tt.keep, func(p IndexProgress) { progress = append(progress, p) },
				func(c Coord) error { got = append(got, c); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want || got[0].String() != tt.first {
				t.Fatalf("index = %d coords starting %v, want %d starting %s", len(got), got[:min(len(got), 1)], tt.want, tt.first)
			}
			if sum.Scanned != 30 || fmt.Sprint(ends) != "map[0:10 1:10 2:10]" {
				t.Fatalf("scanned %d, ends %v", sum.Scanned, ends)
			}
			if last := progress[len(progress)-1]; last.Scanned != 30 || last.Matched != int64(tt.want) {
				t.Fatalf("last progress %+v", last)
			}
			for i := 1; i < len(got); i++ {
				a, b := got[i-1], got[i]
				if a.Partition > b.Partition || (a.Partition == b.Partition && a.Offset >= b.Offset) {
					t.Fatalf("index out of order at %d: %v then %v", i, a, b)
				}
			}
		})
	}
	stop := fmt.Errorf("stop")
	n := 0
	_, _, err = e.Index(ctx, ordersDLT, nil, nil, nil, func(Coord) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("fn's error ends the scan: err %v after %d", err, n)
	}
}

func TestHistogram(t *testing.T) {
	c := replaytest.NewCluster(t)
	var recs []*kgo.Record
	// 3 records 50 minutes before end (bucket 2: [-50m, -45m)), 5 records 7 minutes before
	// (bucket 10), 2 after end (ignored).
	end := replaytest.Base.Add(time.Hour)
	for i, ago := range []time.Duration{50, 50, 50, 7, 7, 7, 7, 7, -1, -1} {
		recs = append(recs, replaytest.Saga(int32(i%3), int64(i), "X", 1, end.Add(-ago*time.Minute)))
	}
	replaytest.Produce(t, c, recs...)
	e := newEngine(t, c)
	h, err := e.Histogram(context.Background(), []string{ordersDLT, "payments-failed.DLT"}, end, 5*time.Minute, 12)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(h[ordersDLT]); got != "[0 0 3 0 0 0 0 0 0 0 5 0]" {
		t.Fatalf("orders-failed.DLT buckets %s", got)
	}
	if got := fmt.Sprint(h["payments-failed.DLT"]); got != "[0 0 0 0 0 0 0 0 0 0 0 0]" {
		t.Fatalf("empty topic buckets %s", got)
	}
}

func TestReplayedAndFind(t *testing.T) {
	c := replaytest.NewCluster(t)
	at := replaytest.Base
	replaytest.Produce(t, c,
		&kgo.Record{Topic: event.TopicPaymentsFailed, Partition: 0, Key: event.Key(7), Timestamp: at, Value: []byte(`{"orderId":7,"eventType":"PaymentFailed"}`)},
		&kgo.Record{Topic: event.TopicPaymentsFailed, Partition: 1, Key: []byte("proxy-rekeyed"), Timestamp: at.Add(time.Second), Value: []byte(`{"orderId":7}`)},
		&kgo.Record{Topic: event.TopicPaymentsFailed, Partition: 1, Key: event.Key(77), Timestamp: at.Add(2 * time.Second), Value: []byte(`{"orderId":77,"note":"7"}`)},
		replaytest.Saga(2, 7, "STOCK_ROW_MISSING", 1, at.Add(3*time.Second)),
		replaytest.Saga(2, 8, "STOCK_ROW_MISSING", 1, at.Add(4*time.Second)),
	)
	e := newEngine(t, c)
	ctx := context.Background()
	rs, err := e.Replayed(ctx, "")
	if err != nil || rs.Count(ordersDLT) != 0 {
		t.Fatalf("empty ledger: %v, %v", rs.Count(ordersDLT), err)
	}
	mustReplay(t, e, Request{Topic: ordersDLT, Selection: Selection{Partitions: []int32{2}, Offsets: OffsetRange{From: 0, To: 0, Set: true}}})
	rs, err = e.Replayed(ctx, ordersDLT)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := rs.Lookup(Coord{Topic: ordersDLT, Partition: 2, Offset: 0})
	if !ok || m.Count != 1 || m.RunID == "" || rs.Count(ordersDLT) != 1 {
		t.Fatalf("lookup = %+v %v, count %d", m, ok, rs.Count(ordersDLT))
	}
	if _, ok := rs.Lookup(Coord{Topic: ordersDLT, Partition: 2, Offset: 1}); ok {
		t.Fatal("a record that was not replayed is marked")
	}

	f, err := e.Find(ctx, FindQuery{Topics: []string{event.TopicPaymentsFailed, event.TopicOrdersFailed, ordersDLT, "no-such-topic"}, Key: "7", Field: "orderId"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.Records {
		got = append(got, fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset))
	}
	// payments-failed 0/0 by key, 1/0 by its orderId field; orders-failed holds the replayed
	// copy of the dead letter (stamped now, so last); the dead letter itself.
	want := []string{"payments-failed/0/0", "payments-failed/1/0", "orders-failed.DLT/2/0", "orders-failed/"}
	if len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || !strings.HasPrefix(got[3], want[3]) {
		t.Fatalf("found %v, want %v", got, want)
	}
	if fmt.Sprint(f.Missing) != "[no-such-topic]" || f.Scanned != 6 {
		t.Fatalf("missing %v, scanned %d", f.Missing, f.Scanned)
	}
	f, err = e.Find(ctx, FindQuery{Topics: []string{event.TopicPaymentsFailed}, Key: "7", Field: "orderId", Limit: 1})
	if err != nil || len(f.Records) != 1 || fmt.Sprint(f.Limited) != "[payments-failed]" {
		t.Fatalf("limited find: %d records, limited %v, %v", len(f.Records), f.Limited, err)
	}
}

func TestFieldIs(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{`{"orderId":7}`, true},
		{`{"orderId":"7"}`, true},
		{`{"orderId":7.0}`, false},
		{`{"orderId":77}`, false},
		{`{"other":7}`, false},
		{`[7]`, false},
		{`not json 7`, false},
	}
	for _, tt := range tests {
		if got := fieldIs([]byte(tt.value), "orderId", "7"); got != tt.want {
			t.Errorf("fieldIs(%s) = %v, want %v", tt.value, got, tt.want)
		}
	}
}
