package replay

import (
	"bytes"
	"encoding/json/jsontext"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// legacyEncoder writes replay entries in the format earlier versions wrote (one entry per dead
// letter), which the ledger still reads.
type legacyEncoder struct{ prefix []byte }

func newLegacyEncoder(runID, dltTopic, actor, reason, group string) *legacyEncoder {
	return &legacyEncoder{prefix: headerJSON(KindReplay, runID, dltTopic, "", actor, reason, group)}
}

// replay returns the value of one replay entry; at is the time already formatted as RFC 3339.
func (enc *legacyEncoder) replay(at, replayID string, target Coord, count int) []byte {
	b := make([]byte, 0, len(enc.prefix)+160+len(target.Topic))
	b = append(b, enc.prefix...)
	b = append(b, `,"time":"`...)
	b = append(b, at...)
	b = append(b, `","replayId":`...)
	b = appendJSONString(b, replayID)
	b = append(b, `,"target":{"topic":`...)
	b = appendJSONString(b, target.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(target.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, target.Offset, 10)
	b = append(b, `},"replayCount":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	return append(b, '}')
}

func TestEntryEncoderDecodesAsEntry(t *testing.T) {
	enc := newLegacyEncoder("run-1", "orders-failed.DLT", "kim@laptop \"ops\"", "INC-42: lock \u202e fixed\n", "product-service-group")
	at := time.Date(2026, 11, 25, 3, 0, 0, 5, time.UTC)
	v := enc.replay(at.Format(time.RFC3339Nano), "rid", Coord{Topic: "orders-failed", Partition: 2, Offset: 99}, 3)
	e, err := decodeEntry([]byte("orders-failed.DLT/1/7"), v)
	if err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	want := Entry{Kind: KindReplay, RunID: "run-1", DLT: "orders-failed.DLT", Actor: "kim@laptop \"ops\"", Time: at,
		Reason: "INC-42: lock \u202e fixed\n", ReplayID: "rid", From: &Coord{"orders-failed.DLT", 1, 7},
		Target: &Coord{"orders-failed", 2, 99}, ReplayCount: 3, Group: "product-service-group"}
	if *e.From != *want.From || *e.Target != *want.Target || e.Kind != want.Kind || e.RunID != want.RunID || e.DLT != want.DLT ||
		e.Actor != want.Actor || !e.Time.Equal(at) || e.Reason != want.Reason || e.ReplayID != want.ReplayID || e.ReplayCount != 3 || e.Group != want.Group {
		t.Fatalf("decoded %+v", e)
	}
}

func TestBatchEntryDecodesAsEntry(t *testing.T) {
	enc := newEntryEncoder("0190f1e2-0000-7000-8000-000000000000", "orders-failed.DLT", "AAAAAAAAAAAAAAAAAAAAAQ", "kim@laptop", "INC-42 \"quoted\"", "")
	rows := []batchRow{
		{from: Coord{"orders-failed.DLT", 1, 7}, target: Coord{"orders-failed", 2, 99}, count: 1, seq: 1},
		{from: Coord{"orders-failed.DLT", 0, 1 << 40}, target: Coord{"payments-paid", 0, 3}, count: 3, seq: 1<<32 - 1},
		{from: Coord{"orders-failed.DLT", 2, 0}, target: Coord{"orders-failed", 1, 0}, count: 2, seq: 2},
	}
	v := enc.batch("2026-11-25T03:00:00Z", rows)
	key := []byte(BatchKey("orders-failed.DLT", "0190f1e2-0000-7000-8000-000000000000", 4))
	if _, ok := ParseCoord(string(key)); ok {
		t.Fatalf("batch key %s parses as a coordinate", key)
	}
	e, err := decodeEntry(key, v)
	if err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	if e.Kind != KindBatch || e.DLT != "orders-failed.DLT" || e.Reason != `INC-42 "quoted"` || len(e.Targets) != 2 || len(e.Replays) != 3 ||
		strings.Join(e.Columns, ",") != strings.Join(BatchColumns, ",") {
		t.Fatalf("decoded %+v", e)
	}
	for i, r := range rows {
		got := e.Replays[i]
		if got.Partition != r.from.Partition || got.Offset != r.from.Offset || e.Targets[got.Target] != r.target.Topic ||
			got.TargetPartition != r.target.Partition || got.TargetOffset != r.target.Offset || got.ReplayCount != r.count || got.Seq != r.seq {
			t.Fatalf("row %d: %+v, want %+v", i, got, r)
		}
	}
	ix := newLedgerIndex()
	ix.add(key, v, "orders-failed.DLT", true)
	ix.add(key, v, "other.DLT", true) // another DLT's reader skips it
	if n := ix.view("orders-failed.DLT", "AAAAAAAAAAAAAAAAAAAAAQ").count(); n != 3 || ix.bad != 0 {
		t.Fatalf("index holds %d (bad %d)", n, ix.bad)
	}
	if n := ix.view("orders-failed.DLT", "AAAAAAAAAAAAAAAAAAAAAg").count(); n != 0 {
		t.Fatalf("another incarnation of the DLT has %d replays", n)
	}
	if got, ok := ix.view("orders-failed.DLT", "AAAAAAAAAAAAAAAAAAAAAQ").lookup(0, 1<<40, -1); !ok || got.count != 3 {
		t.Fatalf("lookup %+v %v", got, ok)
	}
}

// TestIndexKeepsTheLatestReplay: entries of one dead letter may sit in different partitions
// (a batch entry and an older per-record entry, or two batch entries), read in any order; the
// highest replay count wins, and history counts each dead letter for that run only.
func TestIndexKeepsTheLatestReplay(t *testing.T) {
	old := newLegacyEncoder("run-1", "d.DLT", "a@b", "first", "")
	newer := newEntryEncoder("run-2", "d.DLT", "", "a@b", "again", "")
	oldKey, oldVal := []byte("d.DLT/0/5"), old.replay("2026-11-25T03:00:00Z", "id", Coord{"t", 0, 1}, 1)
	newKey := []byte(BatchKey("d.DLT", "run-2", 1))
	newVal := newer.batch("2026-11-25T04:00:00Z", []batchRow{{from: Coord{"d.DLT", 0, 5}, target: Coord{"t", 0, 2}, count: 2, seq: 1}})
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		ix := newLedgerIndex()
		keys, vals := [][]byte{oldKey, newKey}, [][]byte{oldVal, newVal}
		for _, i := range order {
			ix.add(keys[i], vals[i], "d.DLT", true)
		}
		got, ok := ix.view("d.DLT", "").lookup(0, 5, -1)
		if !ok || got.count != 2 || got.run != "run-2" || ix.runReplays["run-1"] != 0 || ix.runReplays["run-2"] != 1 {
			t.Fatalf("order %v: %+v %v, per run %v", order, got, ok, ix.runReplays)
		}
	}
}

func TestBatchEntryRejectsBadRows(t *testing.T) {
	head := `{"kind":"batch","runId":"r","dlt":"d","actor":"a","reason":"x","time":"2026-11-25T03:00:00Z","targets":["t"],"replays":`
	for _, rows := range []string{
		`[[0,1,0,0,0,1]]`,            // six columns
		`[[0,1,0,0,0,1,1,9]]`,        // eight
		`[[0,1,1,0,0,1,1]]`,          // target out of range
		`[[0,-1,0,0,0,1,1]]`,         // negative offset
		`[[0,1,0,0,0,0,1]]`,          // replay count 0
		`[[0,1.5,0,0,0,1,1]]`,        // not an integer
		`[[0,"1",0,0,0,1,1]]`,        // a string
		`[[4294967296,1,0,0,0,1,1]]`, // partition out of range
		`[1]`,
		`{}`,
	} {
		ix := newLedgerIndex()
		ix.add([]byte(BatchKey("d", "r", 1)), []byte(head+rows+`}`), "", false)
		if ix.bad != 1 || ix.view("d", "").count() != 0 {
			t.Errorf("%s: bad %d, indexed %d", rows, ix.bad, ix.view("d", "").count())
		}
	}
}

// FuzzDecodeEntry: whatever a ledger record holds, decoding it never panics, and a batch entry
// that decodes has rows that index its targets.
func FuzzDecodeEntry(f *testing.F) {
	enc := newEntryEncoder("r", "d", "", "a", "why", "g")
	f.Add([]byte("d/run/r/1"), enc.batch("2026-11-25T03:00:00Z", []batchRow{{from: Coord{"d", 1, 2}, target: Coord{"t", 0, 3}, count: 1, seq: 1, stamp: 5}}))
	f.Add([]byte("d/0/1"), newLegacyEncoder("r", "d", "a", "why", "g").replay("2026-11-25T03:00:00Z", "id", Coord{"t", 1, 2}, 3))
	f.Add([]byte("run/r"), []byte(`{"kind":"run","runId":"r","status":"running"}`))
	f.Add([]byte("d/run/r/1"), []byte(`{"kind":"batch","runId":"r","dlt":"d","targets":[],"replays":[[0,0,0,0,0,1,0]]}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e, err := decodeEntry(key, value)
		if err == nil && e.Kind == KindBatch {
			for _, r := range e.Replays {
				if r.Target < 0 || r.Target >= len(e.Targets) || r.ReplayCount < 1 {
					t.Fatalf("accepted row %+v with %d targets", r, len(e.Targets))
				}
			}
		}
		ix := newLedgerIndex()
		ix.add(key, value, "", true)
	})
}

// tokenRows reads batch rows token by token with encoding/json/jsontext: slow, plainly right,
// the reference parseRows must agree with.
func tokenRows(raw []byte) ([]BatchReplay, bool) {
	dec := jsontext.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, false
	}
	var out []BatchReplay
	for dec.PeekKind() == '[' {
		if _, err := dec.ReadToken(); err != nil {
			return nil, false
		}
		var v [7]int64
		for i := range v {
			tok, err := dec.ReadToken()
			if err != nil || tok.Kind() != '0' {
				return nil, false
			}
			if v[i], err = strconv.ParseInt(tok.String(), 10, 64); err != nil || v[i] < 0 {
				return nil, false
			}
		}
		if tok, err := dec.ReadToken(); err != nil || tok.Kind() != ']' {
			return nil, false
		}
		if v[0] > math.MaxInt32 || v[3] > math.MaxInt32 || v[5] > math.MaxInt32 || v[6] > math.MaxUint32 || v[2] > math.MaxInt32 {
			return nil, false
		}
		out = append(out, BatchReplay{Partition: int32(v[0]), Offset: v[1], Target: int(v[2]), TargetPartition: int32(v[3]),
			TargetOffset: v[4], ReplayCount: int(v[5]), Seq: uint32(v[6])})
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != ']' {
		return nil, false
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return out, true
}

// FuzzParseRowsAgreesWithTokens: on any valid JSON value, parseRows accepts exactly what the
// token-by-token reader accepts (apart from integers of more than 18 digits, which parseRows
// refuses as out of range), and reads the same rows.
func FuzzParseRowsAgreesWithTokens(f *testing.F) {
	for _, s := range []string{`[]`, ` [ [0,1,0,0,0,1,1] , [ 2 , 3 , 0 , 1 , 9 , 2 , 7 ] ] `, `[[0,1,0,0,0,1]]`,
		`[[0,1,0,0,0,1,1,9]]`, `[[0,-1,0,0,0,1,1]]`, `[[0,1.5,0,0,0,1,1]]`, `[[0,1e3,0,0,0,1,1]]`, `[[0,"1",0,0,0,1,1]]`,
		`[[4294967296,1,0,0,0,1,1]]`, `[[0,1,0,0,0,1,4294967296]]`, `[1]`, `{}`, `[[]]`, `[[0,1,0,0,0,1,1],1]`,
		`[[0,1,0,0,0,1,1]`, `[[00,1,0,0,0,1,1]]`, `[[0,9223372036854775807,0,0,0,1,1]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !jsontext.Value(raw).IsValid() {
			return // the decoder checks validity before parseRows sees a value
		}
		got, err := parseRows(raw, nil)
		want, ok := tokenRows(raw)
		if err == nil && !ok {
			t.Fatalf("%s: parseRows accepted %v, the token reader refuses it", raw, got)
		}
		if err != nil && ok && !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("%s: parseRows refused (%v) what the token reader reads as %v", raw, err, want)
		}
		if err == nil && !slices.Equal(got, want) {
			t.Fatalf("%s: parseRows read %v, the token reader %v", raw, got, want)
		}
	})
}

// TestOffsetTableMatchesMap: the ledger index's per-partition table of replays (a slice where
// the offsets lie close together, a map where they do not) holds what a map would, whatever
// order the offsets come in: ascending runs, descending ones, far outliers, overwrites.
func TestOffsetTableMatchesMap(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var tab offsetTable
		want := map[int64]replayed{}
		next := rng.Int64N(5000)
		for i := range 3000 {
			var o int64
			switch rng.IntN(10) {
			case 0:
				o = rng.Int64N(1 << 40) // far from the rest
			case 1, 2:
				o = max(0, next-rng.Int64N(4000)) // back down, maybe below the slice
			default:
				o = next
				next += 1 + rng.Int64N(3)
			}
			r := replayed{count: int32(i + 1), run: strconv.Itoa(i), stamp: int64(i)}
			tab.put(o, r)
			r.set = true
			want[o] = r
		}
		if tab.len() != len(want) {
			t.Fatalf("seed %d: %d offsets, want %d", seed, tab.len(), len(want))
		}
		for o, w := range want {
			if got, ok := tab.get(o); !ok || got != w {
				t.Fatalf("seed %d: offset %d holds %+v (%v), want %+v", seed, o, got, ok, w)
			}
		}
		seen := 0
		tab.each(func(o int64) {
			seen++
			if _, ok := want[o]; !ok {
				t.Fatalf("seed %d: offset %d listed, never put", seed, o)
			}
		})
		if seen != len(want) {
			t.Fatalf("seed %d: each listed %d offsets, want %d", seed, seen, len(want))
		}
		for range 1000 {
			o := rng.Int64N(next + 10)
			if _, ok := tab.get(o); ok != (want[o] != replayed{}) {
				t.Fatalf("seed %d: offset %d present %v, want %v", seed, o, ok, !ok)
			}
		}
		if len(tab.dense) > 8*max(minDense, len(want)) {
			t.Fatalf("seed %d: a slice of %d for %d offsets", seed, len(tab.dense), len(want))
		}
	}
	var none *offsetTable
	if _, ok := none.get(1); ok || none.len() != 0 {
		t.Fatal("an absent table holds something")
	}
}
