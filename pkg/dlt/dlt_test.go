package dlt

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

func TestBuildThenDecode(t *testing.T) {
	orig := &kgo.Record{
		Topic: "orders-failed", Partition: 2, Offset: 1234, Key: []byte("42"),
		Timestamp: time.UnixMilli(1_764_000_000_000).UTC(),
		Value:     []byte(`{"eventId":"e","eventType":"OrderFailed","orderId":42,"orderDetailId":7,"optionValueId":3,"quantity":2,"paymentKey":"pk"}`),
		Headers:   []kgo.RecordHeader{hdr("traceparent", "00-abc-def-01"), hdr("kafka_dlt-original-topic", "stale"), hdr(HeaderReplayCount, "2")},
	}
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	dead := Build(orig, Failure{Source: "product-service", Code: "DB_LOCK_TIMEOUT", Message: "lock wait timeout", Group: "product-service-group", At: at})
	if dead.Topic != "orders-failed.DLT" || string(dead.Key) != "42" {
		t.Fatalf("topic/key = %s/%s", dead.Topic, dead.Key)
	}
	var v map[string]any
	if err := json.Unmarshal(dead.Value, &v); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"orderDetailId": 7.0, "quantity": 2.0, "errorSource": "product-service", "errorCode": "DB_LOCK_TIMEOUT", "errorMessage": "lock wait timeout", "timestamp": "2026-11-25T03:00:00Z"} {
		if v[k] != want {
			t.Errorf("value[%s] = %v, want %v", k, v[k], want)
		}
	}
	dead.Partition, dead.Offset = 2, 99
	d := Decode(dead)
	if d.Format != FormatSaga || d.ErrorCode != "DB_LOCK_TIMEOUT" || d.ErrorSource != "product-service" {
		t.Fatalf("decoded %+v", d)
	}
	if d.Origin != (Origin{Topic: "orders-failed", Partition: 2, Offset: 1234, Timestamp: orig.Timestamp}) {
		t.Fatalf("origin = %+v", d.Origin)
	}
	if d.ReplayCount != 2 || d.Group != "product-service-group" || !d.FailedAt.Equal(at) {
		t.Fatalf("replayCount=%d group=%q failedAt=%v", d.ReplayCount, d.Group, d.FailedAt)
	}
	var stale int
	for _, h := range dead.Headers {
		if h.Key == HeaderOriginalTopic {
			stale++
		}
	}
	if stale != 1 {
		t.Fatalf("want exactly one original-topic header, got %d", stale)
	}
	if len(d.Problems) != 0 {
		t.Fatalf("problems: %v", d.Problems)
	}
}

func TestBuildKeepsNonJSONValue(t *testing.T) {
	orig := &kgo.Record{Topic: "payments-failed", Value: []byte{0xff, 0x00, 'x'}}
	dead := Build(orig, Failure{Source: "order-service", Code: "BAD_SCHEMA"})
	if string(dead.Value) != string(orig.Value) {
		t.Fatalf("binary value changed: %x", dead.Value)
	}
	if d := Decode(dead); d.Format != FormatSpring || d.ErrorCode != "BadSchemaException" {
		t.Fatalf("decoded %+v", d)
	}
}

func springRecord() *kgo.Record {
	p := binary.BigEndian.AppendUint32(nil, 1)
	o := binary.BigEndian.AppendUint64(nil, 77)
	ts := binary.BigEndian.AppendUint64(nil, 1_700_000_000_000)
	return &kgo.Record{
		Topic: "payments-failed-dlt", Value: []byte(`{"orderId":5,"paymentKey":"pk"}`),
		Headers: []kgo.RecordHeader{
			hdr(HeaderOriginalTopic, "payments-failed"),
			{Key: HeaderOriginalPartition, Value: p},
			{Key: HeaderOriginalOffset, Value: o},
			{Key: HeaderOriginalTimestamp, Value: ts},
			hdr(HeaderOriginalGroup, "order-service-group"),
			hdr(HeaderExceptionFQCN, "org.springframework.kafka.listener.ListenerExecutionFailedException"),
			hdr(HeaderExceptionCauseFQCN, "org.springframework.dao.CannotAcquireLockException"),
			hdr(HeaderExceptionMessage, "Listener failed; could not acquire lock"),
		},
	}
}

func TestDecodeSpring(t *testing.T) {
	d := Decode(springRecord())
	if d.Format != FormatSpring || d.ErrorSource != "order-service-group" || d.ErrorCode != "CannotAcquireLockException" {
		t.Fatalf("decoded %+v", d)
	}
	if d.Origin.Topic != "payments-failed" || d.Origin.Partition != 1 || d.Origin.Offset != 77 {
		t.Fatalf("origin = %+v", d.Origin)
	}
	if d.Headers[1].Text != "1" || d.Headers[2].Kind != "int64" || !strings.Contains(d.Headers[3].Text, "2023-11-14T22:13:20Z") {
		t.Fatalf("headers = %+v", d.Headers)
	}
}

func TestDecodeConnect(t *testing.T) {
	r := &kgo.Record{Topic: "dlq-jdbc-sink", Value: []byte("not json"), Headers: []kgo.RecordHeader{
		hdr(ConnectTopic, "orders-failed"), hdr(ConnectPartition, "0"), hdr(ConnectOffset, "12"),
		hdr(ConnectConnector, "jdbc-sink"), hdr(ConnectStage, "VALUE_CONVERTER"),
		hdr(ConnectExceptionClass, "org.apache.kafka.connect.errors.DataException"),
		hdr(ConnectExceptionMessage, "Converting byte[] to Kafka Connect data failed"),
	}}
	d := Decode(r)
	if d.Format != FormatConnect || d.ErrorSource != "jdbc-sink" || d.ErrorCode != "DataException" || d.Origin.Offset != 12 {
		t.Fatalf("decoded %+v", d)
	}
}

func TestDecodeDamaged(t *testing.T) {
	r := springRecord()
	r.Headers[1].Value = []byte{0, 1} // truncated int
	r.Headers[2].Value = nil          // empty long
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: "bin", Value: []byte{0xff, 0xfe}})
	d := Decode(r)
	if d.Origin.Partition != -1 || d.Origin.Offset != -1 || len(d.Problems) != 2 {
		t.Fatalf("origin=%+v problems=%v", d.Origin, d.Problems)
	}
	if d.Headers[len(d.Headers)-1].Text != "0xfffe" {
		t.Fatalf("binary header = %+v", d.Headers[len(d.Headers)-1])
	}
	if d := Decode(&kgo.Record{}); d.Format != FormatUnknown || d.ErrorCode != "UNKNOWN" || d.OriginalTopic() != "" {
		t.Fatalf("empty record decoded as %+v", d)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"errorCode":"X"}`), "kafka_dlt-original-partition", []byte{0, 0, 0, 1})
	f.Add([]byte{0xff}, "__connect.errors.offset", []byte("x"))
	f.Fuzz(func(t *testing.T, value []byte, key string, hv []byte) {
		r := &kgo.Record{Topic: "t.DLT", Value: value, Headers: []kgo.RecordHeader{{Key: key, Value: hv}}}
		d := Decode(r)
		if d.ErrorCode == "" || d.ErrorSource == "" || d.Format == "" {
			t.Fatalf("empty grouping fields: %+v", d)
		}
		b := Build(&kgo.Record{Topic: "t", Value: value, Headers: r.Headers}, Failure{Code: "C", Source: "s"})
		if len(value) > 0 && value[0] != '{' && string(b.Value) != string(value) {
			t.Fatalf("non-object value changed")
		}
		_ = Decode(b)
	})
}

// FuzzObjectFields: the members ObjectFields decodes are exactly those of Decode's Fields, for
// any value, duplicates, escapes and invalid text included.
func FuzzObjectFields(f *testing.F) {
	f.Add([]byte(`{"orderId":7,"quantity":2.50,"errorCode":"X","n":null}`), "quantity")
	f.Add([]byte(`{"a":1,"a":{"b":[1,2]},"\u0061":"c"}`), "a")
	f.Add([]byte(` {"q":"\xff"} `), "q")
	f.Add([]byte(`{"q":1} {"q":2}`), "q")
	f.Add([]byte(`[1,2]`), "q")
	f.Add([]byte(`{"errorCode":"E","\u0065rrorSource":"s","errorCode":{"x":[1,"\u00e9"]},"q":true,"q":false}`), "errorCode")
	f.Add([]byte("{\"q\":\"\xff\"}"), "q")
	f.Fuzz(func(t *testing.T, value []byte, name string) {
		all := jsonObject(value)
		got := ObjectFields(value, []string{name, "orderId"})
		if (all == nil) != (got == nil) {
			t.Fatalf("value %q: all fields %v, named fields %v", value, all, got)
		}
		for _, n := range []string{name, "orderId"} {
			want, ok := all[n]
			have, has := got[n]
			if ok != has || !reflect.DeepEqual(want, have) {
				t.Fatalf("value %q field %q: %#v (%v), Decode's %#v (%v)", value, n, have, has, want, ok)
			}
		}
		// DecodeFields reads the same fields, and otherwise what DecodeBrief reads.
		r := &kgo.Record{Topic: "t.DLT", Value: value}
		d, brief := DecodeFields(r, []string{name, "orderId"}), DecodeBrief(r)
		if !reflect.DeepEqual(d.Fields, got) {
			t.Fatalf("value %q: DecodeFields %#v, ObjectFields %#v", value, d.Fields, got)
		}
		d.Fields = nil
		if !reflect.DeepEqual(d, brief) {
			t.Fatalf("value %q: DecodeFields %+v, DecodeBrief %+v", value, d, brief)
		}
	})
}
