package replay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/replay/replaytest"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"2h", now.Add(-2 * time.Hour), ""},
		{"90m", now.Add(-90 * time.Minute), ""},
		{"7d", now.Add(-7 * 24 * time.Hour), ""},
		{"1d12h", now.Add(-36 * time.Hour), ""},
		{"0s", now, ""},
		{"2026-11-25T03:00:00Z", time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), ""},
		{"2026-11-25T12:00:00+09:00", time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), ""},
		{"2026-11-24", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), ""},
		{"", time.Time{}, "empty time"},
		{"yesterday", time.Time{}, "neither a duration"},
		{"-2h", time.Time{}, "must not be negative"},
		{"xd", time.Time{}, "neither a duration"},
		{"1e9d", time.Time{}, "neither a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTime(tt.in, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadSelection) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseOffsets(t *testing.T) {
	tests := []struct {
		in   string
		want OffsetRange
		err  bool
	}{
		{"5", OffsetRange{5, 5, true}, false},
		{"100-200", OffsetRange{100, 200, true}, false},
		{"100-", OffsetRange{100, -1, true}, false},
		{" 7 ", OffsetRange{7, 7, true}, false},
		{"-5", OffsetRange{}, true},
		{"9-3", OffsetRange{}, true},
		{"a-b", OffsetRange{}, true},
		{"1-2-3", OffsetRange{}, true},
		{"", OffsetRange{}, true},
	}
	for _, tt := range tests {
		got, err := ParseOffsets(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseOffsets(%q) = %+v, %v", tt.in, got, err)
		}
		if err == nil {
			back, _ := ParseOffsets(got.String())
			if back != got {
				t.Errorf("%q does not round-trip through String: %q", tt.in, got.String())
			}
		}
	}
}

func TestParseHeaderMatch(t *testing.T) {
	for in, want := range map[string]HeaderMatch{"a=b": {"a", "b"}, "a=": {"a", ""}, "k=v=w": {"k", "v=w"}} {
		if got, err := ParseHeaderMatch(in); err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "=v", "novalue"} {
		if _, err := ParseHeaderMatch(in); !errors.Is(err, ErrBadSelection) {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestWhere(t *testing.T) {
	saga := dlt.Decode(replaytest.Saga(2, 42, "DB_LOCK_TIMEOUT", 3, replaytest.Base))
	saga.Offset = 17
	spring := dlt.Decode(replaytest.Spring(1, 7, replaytest.Base))
	connect := dlt.Decode(replaytest.Connect(0, 9, replaytest.Base))
	tests := []struct {
		expr            string
		saga, spr, conn bool
	}{
		{`errorCode == "DB_LOCK_TIMEOUT" && quantity > 1`, true, false, false},
		{`quantity >= 4`, false, false, false},
		{`orderId == 42`, true, false, false},
		{`errorSource == "order-service-group"`, false, true, false},
		{`errorCode == "DataException" && format == "connect"`, false, false, true},
		{`partition == 2 && offset > 10 && meta.offset == 17`, true, false, false},
		{`originalTopic == "orders-failed"`, true, false, true},
		{`headers["kafka_dlt-original-consumer-group"] == "order-service-group"`, false, true, false},
		{`timestamp == "2026-11-25T03:00:00Z"`, true, false, false}, // the value field shadows the record time
		{`meta.timestamp < now()`, true, true, true},
		{`key matches "^4"`, true, false, false},
		{`replayCount == 0 && size > 0`, true, true, true},
		{`errorMessage contains "lock"`, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			w, err := CompileWhere(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				name string
				rec  *dlt.Record
				want bool
			}{{"saga", &saga, tt.saga}, {"spring", &spring, tt.spr}, {"connect", &connect, tt.conn}} {
				got, _ := w.Match(c.rec)
				if got != c.want {
					t.Errorf("%s: %v, want %v", c.name, got, c.want)
				}
			}
		})
	}
	for _, bad := range []string{"", "errorCode ===", `errorCode == "x" &&`, "1 +", "quantity"} {
		w, err := CompileWhere(bad)
		if err == nil {
			// a non-boolean expression may only be found out when run
			if ok, rerr := w.Match(&saga); ok || rerr == nil {
				t.Errorf("%q: compiled and matched (%v, %v)", bad, ok, rerr)
			}
			continue
		}
		if !errors.Is(err, ErrBadSelection) {
			t.Errorf("%q: %v is not a selection error", bad, err)
		}
	}
}

func TestSelectionMatch(t *testing.T) {
	r := replaytest.Saga(1, 5, "X", 1, replaytest.Base)
	r.Offset = 9
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "tenant", Value: []byte("kr")})
	d := dlt.Decode(r)
	key := "5"
	other := "6"
	tests := []struct {
		name string
		sel  Selection
		want bool
	}{
		{"everything", Selection{}, true},
		{"since before", Selection{Since: replaytest.Base.Add(-time.Second)}, true},
		{"since after", Selection{Since: replaytest.Base.Add(time.Second)}, false},
		{"until is exclusive", Selection{Until: replaytest.Base}, false},
		{"partition", Selection{Partitions: []int32{0, 1}}, true},
		{"other partition", Selection{Partitions: []int32{2}}, false},
		{"offset range", Selection{Offsets: OffsetRange{5, 9, true}}, true},
		{"offset outside", Selection{Offsets: OffsetRange{10, -1, true}}, false},
		{"key", Selection{Key: &key}, true},
		{"other key", Selection{Key: &other}, false},
		{"header", Selection{Headers: []HeaderMatch{{"tenant", "kr"}}}, true},
		{"header value differs", Selection{Headers: []HeaderMatch{{"tenant", "jp"}}}, false},
	}
	for _, tt := range tests {
		got, err := tt.sel.Match(&d)
		if err != nil || got != tt.want {
			t.Errorf("%s: %v %v", tt.name, got, err)
		}
		fast, ok, err := tt.sel.decodeIfSelected(r, decodeRoute, nil)
		if err != nil || ok != tt.want || (ok && fast.Offset != 9) {
			t.Errorf("%s: decodeIfSelected disagrees: %v %v", tt.name, ok, err)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2h", "7d", "1d2h", "2026-11-25", "2026-11-25T03:00:00Z", "", "d", "9999999d", "1.5d"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			if !errors.Is(err, ErrBadSelection) {
				t.Fatalf("%q: error %v is not ErrBadSelection", s, err)
			}
			return
		}
		if got.IsZero() {
			t.Fatalf("%q parsed to the zero time", s)
		}
	})
}

func FuzzParseOffsets(f *testing.F) {
	for _, s := range []string{"1", "1-2", "5-", "-1", "9-3", "18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseOffsets(s)
		if err != nil {
			return
		}
		if !r.Set || r.From < 0 || (r.To >= 0 && r.To < r.From) || r.To < -1 {
			t.Fatalf("%q → %+v", s, r)
		}
		if back, err := ParseOffsets(r.String()); err != nil || back != r {
			t.Fatalf("%q → %+v does not round-trip", s, r)
		}
	})
}

func FuzzParseHeaderMatch(f *testing.F) {
	f.Add("a=b")
	f.Add("=")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseHeaderMatch(s)
		if err == nil && (m.Key == "" || m.Key+"="+m.Value != s) {
			t.Fatalf("%q → %+v", s, m)
		}
	})
}

// FuzzWhere compiles arbitrary expressions and runs them on records decoded from arbitrary
// values: a typo or a hostile payload must give an error, never a crash.
func FuzzWhere(f *testing.F) {
	f.Add(`errorCode == "DB_LOCK_TIMEOUT" && quantity > 1`, []byte(`{"errorCode":"DB_LOCK_TIMEOUT","quantity":2}`))
	f.Add(`meta.headers["x"] matches "["`, []byte(`{}`))
	f.Add(`len(value) > 1`, []byte(`{"value":[1,2,{"a":null}]}`))
	f.Add(`orderId / 0 > 1`, []byte(`{"orderId":1e400}`))
	f.Add(`repeat("x", 1000000000) == ""`, []byte(`null`))
	f.Add(`$env["quantity"] > 1 && meta.size > 0`, []byte(`{"quantity":2}`))
	f.Add(`let q = quantity; q > 1 && errorCode == "E"`, []byte(`{"quantity":2,"errorCode":"E","partition":"p"}`))
	f.Fuzz(func(t *testing.T, src string, value []byte) {
		w, err := CompileWhere(src)
		if err != nil {
			if !errors.Is(err, ErrBadSelection) {
				t.Fatalf("compile error %v is not ErrBadSelection", err)
			}
			return
		}
		d := dlt.Decode(&kgo.Record{Topic: "t.DLT", Value: value, Key: value, Headers: []kgo.RecordHeader{{Key: "x", Value: value}}})
		ok, err := w.Match(&d)
		// The trimmed environment (only the names the expression uses) decides as the full one.
		full := &Where{src: w.src, prog: w.prog}
		fok, ferr := full.Match(&d)
		if ok != fok || (err == nil) != (ferr == nil) {
			t.Fatalf("%q on %q: trimmed env says %v/%v, full env %v/%v", src, value, ok, err, fok, ferr)
		}
	})
}
