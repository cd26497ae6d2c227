package replay

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

func mustWhere(t *testing.T, src string) *Where {
	t.Helper()
	w, err := CompileWhere(src)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWhereNamingAFieldNoRecordHasIsRefused: `errorcode != "X"` (for errorCode) names nothing
// any record has, so it is nil everywhere and would select every record. It is refused, with a
// suggestion, before anything is listed, planned or replayed.
func TestWhereNamingAFieldNoRecordHasIsRefused(t *testing.T) {
	const n = 30
	c := replaytest.NewCluster(t)
	seedSaga(t, c, n)
	e := newEngine(t, c)
	ctx := context.Background()
	tests := []struct{ where, suggestion string }{
		{`errorcode != "X"`, "did you mean errorCode?"},
		{`quanttiy > 1`, "did you mean quantity?"},
		{`ORDERID == 3 || nosuchthing == 1`, `"ORDERID" (did you mean orderId?), "nosuchthing"`},
	}
	for _, tt := range tests {
		sel := Selection{Where: mustWhere(t, tt.where)}
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, ErrBadSelection) || !strings.Contains(err.Error(), tt.suggestion) || !strings.Contains(err.Error(), "30 records read") {
				t.Errorf("%s --where %s: %v, want a bad selection suggesting %q", what, tt.where, err, tt.suggestion)
			}
		}
		listed := 0
		_, err := e.List(ctx, ordersDLT, &sel, func(*dlt.Record) error { listed++; return nil })
		check("list", err)
		if listed != 0 {
			t.Errorf("list --where %s listed %d records before refusing", tt.where, listed)
		}
		_, err = e.Stats(ctx, ordersDLT, &sel)
		check("stats", err)
		_, err = e.Plan(ctx, Request{Topic: ordersDLT, Selection: sel})
		check("plan", err)
		_, err = e.Replay(ctx, Request{Topic: ordersDLT, Selection: sel, Reason: "r"})
		check("replay", err)
	}
	if got := replaytest.ReadCommitted(t, c, event.TopicOrdersFailed); len(got) != 0 {
		t.Fatalf("refused --where expressions replayed %d records", len(got))
	}
	runs, err := e.History(ctx, ordersDLT)
	if err != nil || len(runs) != 0 {
		t.Fatalf("refused replays recorded runs: %+v %v", runs, err)
	}
	// Metadata, fields every record has, and the expression's own variables pass.
	for _, ok := range []string{`errorCode != "X"`, `meta.errorCode == "DB_LOCK_TIMEOUT"`, `partition == 1`, `let q = quantity; q > 1`, `headers["traceparent"] != ""`} {
		sel := Selection{Where: mustWhere(t, ok)}
		if _, err := e.Plan(ctx, Request{Topic: ordersDLT, Selection: sel}); err != nil {
			t.Errorf("plan --where %s: %v", ok, err)
		}
	}
}

// TestWhereReportsFieldsSomeRecordsLack: a field --where names that only some records have is
// counted, so the operator sees how many records it was nil for.
func TestWhereReportsFieldsSomeRecordsLack(t *testing.T) {
	c := replaytest.NewCluster(t)
	seedSaga(t, c, 30)
	var bare []*kgo.Record
	for i := range 5 {
		bare = append(bare, &kgo.Record{Topic: ordersDLT, Partition: int32(i % 3), Timestamp: replaytest.Base,
			Value:   []byte(`{"orderId":1,"errorSource":"product-service","errorCode":"X"}`),
			Headers: []kgo.RecordHeader{kgoHeader(dlt.HeaderOriginalTopic, event.TopicOrdersFailed)}})
	}
	replaytest.Produce(t, c, bare...)
	e := newEngine(t, c)
	ctx := context.Background()
	sel := Selection{Where: mustWhere(t, `quantity > 1 && orderId > 0`)}
	want := []FieldMissing{{Field: "quantity", Missing: 5, Of: 35}}

	plan, err := e.Plan(ctx, Request{Topic: ordersDLT, Selection: sel})
	if err != nil || !reflect.DeepEqual(plan.WhereMissing, want) {
		t.Fatalf("plan: %v, missing %+v, want %+v", err, plan.WhereMissing, want)
	}
	st, err := e.Stats(ctx, ordersDLT, &sel)
	if err != nil || !reflect.DeepEqual(st.WhereMissing, want) {
		t.Fatalf("stats: %v, missing %+v", err, st.WhereMissing)
	}
	sum, err := e.Replay(ctx, Request{Topic: ordersDLT, Selection: sel, Reason: "r"})
	if err != nil || !reflect.DeepEqual(sum.WhereMissing, want) || int64(sum.Replayed) != plan.Replay {
		t.Fatalf("replay: %v, missing %+v, %s (plan %d)", err, sum.WhereMissing, countsString(sum.Counts), plan.Replay)
	}
}

func TestSuggest(t *testing.T) {
	names := append(MetaNames(), "quantity", "orderId", "paymentKey")
	for in, want := range map[string]string{
		"errorcode": "errorCode", "ERRORSOURCE": "errorSource", "quantiy": "quantity", "paymentkey": "paymentKey",
		"zzz": "", "orderid": "orderId", "ofset": "offset",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWhereReadsOnlyNamedFieldsAlike: --where decodes only the value fields it names, and
// selects exactly what it selected on fully decoded records — value fields that shadow
// metadata, nested and duplicate members, values that are not JSON objects — and a selected
// record still reaches a listing fully decoded.
func TestWhereReadsOnlyNamedFieldsAlike(t *testing.T) {
	recs := append(replaytest.Hostile(0, replaytest.Base),
		replaytest.Saga(0, 7, "PG_TIMEOUT", 3, replaytest.Base), replaytest.Spring(1, 8, replaytest.Base), replaytest.Connect(2, 9, replaytest.Base),
		&kgo.Record{Topic: ordersDLT, Offset: 4, Value: []byte(`{"offset":"shadowed","errorCode":7,"quantity":1,"quantity":5,"meta":{"x":1},"nested":{"a":[1,{"b":2}]}}`)},
		&kgo.Record{Topic: ordersDLT, Offset: 5, Value: []byte(`{"quantity":2} trailing`)},
		&kgo.Record{Topic: ordersDLT, Offset: 6, Value: []byte(`[{"quantity":9}]`)})
	for _, src := range []string{
		`quantity > 2`, `errorCode == "PG_TIMEOUT" && quantity > 2`, `offset == "shadowed"`, `errorCode == 7`,
		`nested.a[1].b == 2`, `meta.x == 1`, `meta.offset == 4`, `orderId == 7 || format == "spring"`,
		`quantity == nil`, `errorMessage contains "gnp"`, `len($env) > 3`,
	} {
		w := mustWhere(t, src)
		sel := &Selection{Where: w}
		for _, r := range recs {
			full := dlt.Decode(r)
			want, wantErr := w.Match(&full)
			for _, mode := range []decodeMode{decodeRoute, decodeBrief, decodeFull} {
				var d dlt.Record
				got, err := sel.decodeInto(r, mode, &d, nil, nil)
				if got != want || (err == nil) != (wantErr == nil) {
					t.Errorf("%s on %s@%d (mode %d): %v, %v; on the fully decoded record %v, %v", src, r.Topic, r.Offset, mode, got, err, want, wantErr)
				}
				if got && mode == decodeFull && !reflect.DeepEqual(d.Fields, full.Fields) {
					t.Errorf("%s on %s@%d: a selected record is listed with fields %v, want %v", src, r.Topic, r.Offset, d.Fields, full.Fields)
				}
			}
		}
	}
}
