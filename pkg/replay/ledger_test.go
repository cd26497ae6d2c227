package replay

import (
	"testing"
	"time"
)

func TestEntryEncoderDecodesAsEntry(t *testing.T) {
	enc := newEntryEncoder("run-1", "orders-failed.DLT", "kim@laptop \"ops\"", "INC-42: lock \u202e fixed\n", "product-service-group")
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
	run, dlt, n, ok := scanReplayEntry(v)
	if !ok || run != "run-1" || dlt != "orders-failed.DLT" || n != 3 {
		t.Fatalf("fast path: %q %q %d %v", run, dlt, n, ok)
	}
}

// FuzzScanReplayEntry holds the ledger's fast path to the full decode: whatever it accepts,
// the full decode reads the same way.
func FuzzScanReplayEntry(f *testing.F) {
	f.Add([]byte(`{"kind":"replay","runId":"r","dlt":"d","replayCount":2,"target":{"topic":"t"}}`))
	f.Add([]byte(`{"kind":"run","runId":"r"}`))
	f.Add([]byte(`{"kind":"replay","runId":"r","replayCount":1.5}`))
	f.Add([]byte(`{"kind":"replay","runId":"r","kind":"run"}`))
	f.Add(newEntryEncoder("run", "d", "a@b", "why \"q\"", "g").replay("2026-11-25T03:00:00Z", "id", Coord{"t", 1, 2}, 3))
	f.Add([]byte(`{"kind":"replay","runId":"r","dlt":"d","dlt":"x","target":{},"replayCount":1}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		run, dlt, n, ok := scanReplayEntry(v)
		if !ok {
			return
		}
		e, err := decodeEntry([]byte("d/0/1"), v)
		if err != nil {
			t.Fatalf("fast path accepted %q, full decode says %v", v, err)
		}
		if e.RunID != run || e.DLT != dlt || e.ReplayCount != n || e.Kind != KindReplay {
			t.Fatalf("%q: fast %q %q %d, full %+v", v, run, dlt, n, e)
		}
	})
}
