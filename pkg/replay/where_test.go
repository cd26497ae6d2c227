package replay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestWhereFromValueMatchesDecode: --where decided from the value's members alone
// (whereFromValue, with dlt.FieldsInto's own JSON check) selects exactly what the generic path
// selects — the members dlt.DecodeFields reads, the expression on them and the decoded
// metadata — on random records with hostile values: duplicate members, escapes, nested
// objects, value members that shadow metadata, invalid JSON and values that are not objects.
// The errors, the tally of missing fields and the record a selection hands on agree too.
func TestWhereFromValueMatchesDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var recs []*kgo.Record
	headers := [][]kgo.RecordHeader{nil, replaytest.Spring(0, 1, replaytest.Base).Headers, replaytest.Saga(0, 1, "PG_TIMEOUT", 1, replaytest.Base).Headers,
		replaytest.Connect(0, 1, replaytest.Base).Headers}
	for i := range 3000 {
		r := &kgo.Record{Topic: ordersDLT, Partition: int32(i % 3), Offset: int64(i), Timestamp: replaytest.Base.Add(time.Duration(i) * time.Second),
			Key: []byte("k" + strconv.Itoa(i%3)), Value: []byte(hostileValue(rng)), Headers: headers[rng.IntN(len(headers))]}
		recs = append(recs, r)
	}
	for _, src := range whereFromValueExprs {
		w := mustWhere(t, src)
		sel := &Selection{Where: w}
		for _, mode := range []decodeMode{decodeBrief, decodeFull} {
			gotTally, wantTally := newWhereTally(sel), newWhereTally(sel)
			for _, r := range recs {
				checkWhereFromValue(t, sel, r, mode, gotTally, wantTally)
			}
			if !reflect.DeepEqual(gotTally, wantTally) {
				t.Fatalf("%s: tally %+v, the generic path %+v", src, gotTally, wantTally)
			}
		}
	}
}

// whereFromValueExprs are expressions on value members, metadata they may shadow, and both.
var whereFromValueExprs = []string{
	`errorCode == "PG_TIMEOUT" && quantity > 2`, `errorCode == "PG_TIMEOUT" && quantity > 9`, `quantity > 1`,
	`offset == "shadowed" || offset > 2990`, `topic == "orders.DLT" && size > 40`, `key == "k1" && quantity != nil`,
	`meta.errorCode == "PG_TIMEOUT"`, `errorSource == "order-service"`, `format == "saga" || quantity == nil`,
	`let q = quantity; q > 1 && errorCode != nil`, `headers["kafka_dlt-original-topic"] == "orders.failed"`,
	`quantity + 1 > 2`, `errorCode in ["PG_TIMEOUT", "DB_LOCK_TIMEOUT"]`, `nested.a[0] == 1`, `errorMessage contains "lock"`,
	`partition == 1 && timestamp > meta.timestamp`, `originalTopic == "orders.failed" && quantity >= 2`,
	`errorCode == "UNKNOWN" || errorCode endsWith "Exception"`, `errorSource == "unknown" && quantity > 1`, `format == "spring"`,
	`exception != "" || group != ""`, `originalPartition == 0 && replayCount == 0`, `len(headers) > 2 || errorMessage != ""`,
}

// checkWhereFromValue compares sel.decodeInto on r with the generic path: what decodeInto did
// before it read members alone (dlt.DecodeFields, the expression, dlt.Decode for a listing).
func checkWhereFromValue(t *testing.T, sel *Selection, r *kgo.Record, mode decodeMode, gotTally, wantTally *whereTally) {
	t.Helper()
	w := sel.Where
	var got dlt.Record
	ok, err := sel.decodeInto(r, mode, &got, nil, gotTally)
	want := dlt.DecodeFields(r, w.names)
	wantTally.record(&want)
	wantOK, wantErr := w.Match(&want)
	if wantOK && mode == decodeFull {
		want = dlt.Decode(r)
	}
	if ok != wantOK || fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("%s on %q: %v, %v; the generic path %v, %v", w.Source(), r.Value, ok, err, wantOK, wantErr)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s on %q: selected as\n%+v\nthe generic path\n%+v", w.Source(), r.Value, got, want)
	}
}

// FuzzWhereFromValue: for any value and headers, --where selects what the generic path selects.
func FuzzWhereFromValue(f *testing.F) {
	f.Add([]byte(`{"errorCode":"PG_TIMEOUT","quantity":3,"quantity":1,"offset":"shadowed"}`), uint8(0), uint8(1))
	f.Add([]byte(`{"\u0071uantity":2,"meta":{"errorCode":"PG_TIMEOUT"},"nested":{"a":[1]}}`), uint8(6), uint8(2))
	f.Add([]byte("{\"errorCode\":\"\xff\",\"errorMessage\":\"lock\"}"), uint8(14), uint8(0))
	f.Add([]byte(`{"quantity":3} {"quantity":1}`), uint8(2), uint8(3))
	headers := [][]kgo.RecordHeader{nil, replaytest.Spring(0, 1, replaytest.Base).Headers, replaytest.Saga(0, 1, "PG_TIMEOUT", 1, replaytest.Base).Headers,
		replaytest.Connect(0, 1, replaytest.Base).Headers}
	wheres := make([]*Where, len(whereFromValueExprs))
	for i, src := range whereFromValueExprs {
		w, err := CompileWhere(src)
		if err != nil {
			f.Fatal(err)
		}
		wheres[i] = w
	}
	f.Fuzz(func(t *testing.T, value []byte, expr, hs uint8) {
		r := &kgo.Record{Topic: ordersDLT, Partition: 1, Offset: 7, Timestamp: replaytest.Base, Key: []byte("k1"), Value: value,
			Headers: headers[int(hs)%len(headers)]}
		sel := &Selection{Where: wheres[int(expr)%len(wheres)]}
		for _, mode := range []decodeMode{decodeBrief, decodeFull} {
			checkWhereFromValue(t, sel, r, mode, newWhereTally(sel), newWhereTally(sel))
		}
	})
}

// hostileValue returns a record value for TestWhereFromValueMatchesDecode: mostly a JSON
// object of members named like the expressions' fields and metadata, some damaged.
func hostileValue(rng *rand.Rand) string {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var members []string
	for range rng.IntN(7) {
		name := pick(`"errorCode"`, `"quantity"`, `"\u0071uantity"`, `"offset"`, `"topic"`, `"key"`, `"size"`, `"meta"`,
			`"errorSource"`, `"headers"`, `"format"`, `"nested"`, `"orderId"`, `"q\"x"`, `"errorMessage"`, `"partition"`, `"timestamp"`)
		value := pick(`"PG_TIMEOUT"`, `"DB_LOCK_TIMEOUT"`, `"P\u0047_TIMEOUT"`, `"shadowed"`, `1`, `3`, `10`, `2.5`, `-0`, `1e1`,
			`null`, `true`, `"orders.DLT"`, `"k1"`, `{"a":[1,{"b":2}],"errorCode":"x"}`, `[1,2]`, `"lock \"wait\""`, "\"\xff\"",
			`{"errorCode":"PG_TIMEOUT"}`, `"order-service"`)
		members = append(members, name+pick(":", " : ")+value)
	}
	v := "{" + strings.Join(members, pick(",", ", ")) + "}"
	switch rng.IntN(12) {
	case 0:
		return v[:rng.IntN(len(v)+1)] // cut
	case 1:
		return v + pick(" x", "{}", ",", " ")
	case 2:
		return pick(`[{"quantity":9}]`, `"PG_TIMEOUT"`, "not json\xff", "", `{"quantity":3,}`, `{"quantity":03}`)
	}
	return v
}
