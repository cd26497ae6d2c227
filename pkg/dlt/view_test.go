package dlt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/secret"
)

func TestViewValue(t *testing.T) {
	mask := secret.NewFields()
	tests := []struct {
		name, value       string
		null              bool
		kind, contains    string
		masked, truncated bool
		limit             int
		notContains       string
	}{
		{name: "json keeps field order and masks", value: `{"z":1,"paymentKey":"tgen_20240101abcdef","a":{"token":"abcdefghijk"}}`,
			kind: ValueJSON, contains: "{\n  \"z\": 1,\n  \"paymentKey\": \"tgen***\",\n  \"a\": {\n    \"token\": \"ab***\"", masked: true, notContains: "20240101"},
		{name: "json without secrets", value: `[1,{"a":"b"}]`, kind: ValueJSON, contains: "\"a\": \"b\""},
		{name: "text", value: "plain text\nline two", kind: ValueText, contains: "line two"},
		{name: "binary", value: "\x00\x01\x02\xffabc", kind: ValueBinary, contains: "00000000  00 01 02 ff 61 62 63"},
		{name: "escape-heavy text is dumped", value: "\x1b[2J\x1b]0;x\x07", kind: ValueBinary, contains: "|.[2J.]0;x.|"},
		{name: "empty", value: "", kind: ValueEmpty},
		{name: "null", null: true, kind: ValueNull},
		{name: "long json is cut", value: `{"a":"` + strings.Repeat("é", 100) + `"}`, limit: 50, kind: ValueJSON, truncated: true, contains: "é"},
		{name: "long binary is cut", value: strings.Repeat("\x00", 1000), limit: 100, kind: ValueBinary, truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v []byte
			if !tt.null {
				v = []byte(tt.value)
			}
			got := ViewValue(v, mask, tt.limit)
			if got.Kind != tt.kind || got.Masked != tt.masked || got.Truncated != tt.truncated || got.Size != len(v) {
				t.Fatalf("view %+v", got)
			}
			if !strings.Contains(got.Text, tt.contains) || (tt.notContains != "" && strings.Contains(got.Text, tt.notContains)) {
				t.Fatalf("text %q", got.Text)
			}
			if tt.truncated && !strings.HasPrefix(got.Marker, "[truncated: showing") {
				t.Fatalf("marker %q", got.Marker)
			}
			if !utf8.ValidString(got.Text) {
				t.Fatal("cut inside a rune")
			}
		})
	}
	if v := ViewValue([]byte(`{"paymentKey":"tgen_20240101abcdef"}`), nil, 0); v.Masked || !strings.Contains(v.Text, "20240101") {
		t.Fatalf("nil mask must reveal: %+v", v)
	}
}

func TestMaskHeaders(t *testing.T) {
	hs := []Header{{Key: "Authorization", Text: "Bearer abcdefghijklmnop"}, {Key: "traceparent", Text: "00-abc"}}
	got := MaskHeaders(hs, secret.NewFields())
	if got[0].Text != "Beare***" || got[1].Text != "00-abc" || hs[0].Text != "Bearer abcdefghijklmnop" {
		t.Fatalf("masked %+v (input %+v)", got, hs)
	}
}

// FuzzDecodeHeaders splits its input into many headers, so truncated and oversized Spring ints
// and longs, Connect numbers and non-UTF-8 names all meet the decoder together.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add([]byte("kafka_dlt-original-topic\x00orders-failed\x01kafka_dlt-original-partition\x00\x00\x00"), []byte(`{"errorCode":"X"}`))
	f.Add([]byte("__connect.errors.topic\x00t\x01__connect.errors.offset\x00-1\x01x-original-topic\x00../etc"), []byte{0xff})
	f.Add(binary.BigEndian.AppendUint64([]byte("kafka_dlt-original-timestamp\x00"), 1<<63), []byte(nil))
	f.Fuzz(func(t *testing.T, raw, value []byte) {
		var hs []kgo.RecordHeader
		for _, part := range bytes.Split(raw, []byte{1}) {
			k, v, _ := bytes.Cut(part, []byte{0})
			hs = append(hs, kgo.RecordHeader{Key: string(k), Value: v})
		}
		d := Decode(&kgo.Record{Topic: "t.DLT", Value: value, Headers: hs})
		if len(d.Headers) != len(hs) || d.ErrorCode == "" || d.ErrorSource == "" {
			t.Fatalf("decoded %+v", d)
		}
		if d.Origin.Topic != "" && headerTopic([]byte(d.Origin.Topic)) != d.Origin.Topic {
			t.Fatalf("origin topic %q is not a topic name", d.Origin.Topic)
		}
		for _, h := range d.Headers {
			if (h.Kind == "int32" || h.Kind == "int64") && !isNumericHeader(h.Key) {
				t.Fatalf("header %q read as a number", h.Key)
			}
		}
		for _, p := range d.Problems {
			if len(p) > 400 {
				t.Fatalf("problem text of %d bytes", len(p))
			}
		}
	})
}

// FuzzViewValue renders arbitrary values: a view always comes back, within its limit, valid
// UTF-8, and masking never turns valid JSON into invalid JSON.
func FuzzViewValue(f *testing.F) {
	f.Add([]byte(`{"paymentKey":"tgen_123456789","n":[1,{"token":42}]}`), uint16(64))
	f.Add([]byte("\x1b]52;c;aGk=\x07"), uint16(0))
	f.Add([]byte(`"\u202e"`), uint16(3))
	f.Fuzz(func(t *testing.T, value []byte, limit uint16) {
		mask := secret.NewFields()
		v := ViewValue(value, mask, int(limit))
		if v.Kind == "" || v.Size != len(value) || !utf8.ValidString(v.Text) {
			t.Fatalf("view %+v", v)
		}
		max := int(limit)
		if max == 0 {
			max = DefaultViewLimit
		}
		if v.Kind != ValueBinary && len(v.Text) > max {
			t.Fatalf("view of %d bytes, limit %d", len(v.Text), max)
		}
		if json.Valid(value) {
			m, _, err := mask.MaskJSON(value)
			if err != nil || !json.Valid(m) {
				t.Fatalf("MaskJSON(%q) = %q, %v", value, m, err)
			}
		}
	})
}

// FuzzDecodeBriefAgrees checks the fast decoder reads exactly what the full one does.
func FuzzDecodeBriefAgrees(f *testing.F) {
	f.Add([]byte(`{"errorCode":"X","errorSource":"s","errorMessage":"m","timestamp":"2026-11-25T03:00:00Z","n":{"a":[1]}}`), []byte("kafka_dlt-original-topic\x00t"))
	f.Add([]byte(`{"errorCode":12.5e3,"errorSource":{"b":1,"a":2},"errorCode":null}`), []byte(""))
	f.Add([]byte(`{"errorCode":"\ud800"} `), []byte("__connect.errors.topic\x00t"))
	f.Add([]byte(`{"errorCode":"x"}}`), []byte(""))
	f.Add([]byte("{\"errorCode\":\"\xff\"}"), []byte(""))
	f.Add([]byte(`{"\u0065rrorCode":"E\u0041","errorSource":"a\"b","errorMessage":"plain","errorCod\u0065":"last"}`), []byte(""))
	f.Add([]byte("{\"errorCode\":\"caf\xc3\xa9\",\"\xffCode\":1}"), []byte(""))
	f.Fuzz(func(t *testing.T, value, raw []byte) {
		var hs []kgo.RecordHeader
		for _, part := range bytes.Split(raw, []byte{1}) {
			k, v, _ := bytes.Cut(part, []byte{0})
			hs = append(hs, kgo.RecordHeader{Key: string(k), Value: v})
		}
		r := &kgo.Record{Topic: "t.DLT", Value: value, Headers: hs}
		full, brief := Decode(r), DecodeBrief(r)
		if got := OriginTopic(hs); got != full.OriginalTopic() {
			t.Fatalf("OriginTopic = %q, Decode says %q", got, full.OriginalTopic())
		}
		if brief.Fields != nil || brief.Headers != nil {
			t.Fatal("brief decode filled Fields or Headers")
		}
		full.Fields, full.Headers = nil, nil
		if fmt.Sprintf("%+v", full) != fmt.Sprintf("%+v", brief) {
			t.Fatalf("decoders disagree on %q:\nfull  %+v\nbrief %+v", value, full, brief)
		}
	})
}
