// Package dlt is the dead-letter record format: how a SAGA service turns a record it could not
// process into a dead letter, and how opsctl reads a dead letter back — whether the SAGA
// services, Spring Kafka's DeadLetterPublishingRecoverer or Kafka Connect wrote it.
//
// A dead letter written here keeps the original key, carries the original event's JSON fields
// plus errorSource, errorCode, errorMessage and timestamp (both DLT schemas of the design), and
// Spring-compatible kafka_dlt-* headers. Decoding never fails: whatever a record holds, Decode
// returns what it could read and lists what it could not in Problems.
package dlt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Failure says why a record is being dead-lettered.
type Failure struct {
	// Source is the service that failed, e.g. "order-service" (errorSource).
	Source string
	// Code is a stable, machine-readable error code such as "DB_LOCK_TIMEOUT" (errorCode).
	Code string
	// Message is the human-readable error (errorMessage).
	Message string
	// Class names the error type, written as kafka_dlt-exception-fqcn.
	Class string
	// Stack is an optional stack or cause chain, written as kafka_dlt-exception-stacktrace.
	Stack string
	// Group is the consumer group that failed.
	Group string
	// At is when processing failed.
	At time.Time
}

// Build returns the dead letter for orig: same key, on orig.Topic+".DLT". A JSON-object value
// gains the error fields (replacing earlier ones, so a record that failed again carries the
// latest failure); any other value is kept byte for byte and the failure lives in the headers
// only. Original headers are kept — business headers, trace context and opsctl's replay
// headers, so the replay count survives another failure — except older kafka_dlt-* ones.
func Build(orig *kgo.Record, f Failure) *kgo.Record {
	at := f.At
	if at.IsZero() {
		at = time.Now()
	}
	out := &kgo.Record{
		Topic:   orig.Topic + ".DLT",
		Key:     orig.Key,
		Value:   withErrorFields(orig.Value, f, at),
		Context: orig.Context,
	}
	for _, h := range orig.Headers {
		if !strings.HasPrefix(h.Key, SpringPrefix) {
			out.Headers = append(out.Headers, h)
		}
	}
	class := f.Class
	if class == "" {
		class = "com.come2us.saga." + codeClass(f.Code)
	}
	tsType := "CreateTime"
	if orig.Attrs.TimestampType() == 1 {
		tsType = "LogAppendTime"
	}
	out.Headers = append(out.Headers,
		kgo.RecordHeader{Key: HeaderOriginalTopic, Value: []byte(orig.Topic)},
		kgo.RecordHeader{Key: HeaderOriginalPartition, Value: binary.BigEndian.AppendUint32(nil, uint32(orig.Partition))},
		kgo.RecordHeader{Key: HeaderOriginalOffset, Value: binary.BigEndian.AppendUint64(nil, uint64(orig.Offset))},
		kgo.RecordHeader{Key: HeaderOriginalTimestamp, Value: binary.BigEndian.AppendUint64(nil, uint64(orig.Timestamp.UnixMilli()))},
		kgo.RecordHeader{Key: HeaderOriginalTimestampType, Value: []byte(tsType)},
		kgo.RecordHeader{Key: HeaderOriginalGroup, Value: []byte(f.Group)},
		kgo.RecordHeader{Key: HeaderExceptionFQCN, Value: []byte(class)},
		kgo.RecordHeader{Key: HeaderExceptionMessage, Value: []byte(f.Message)},
	)
	if f.Stack != "" {
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: HeaderExceptionStacktrace, Value: []byte(f.Stack)})
	}
	return out
}

// codeClass turns DB_LOCK_TIMEOUT into DbLockTimeoutException, so Spring-minded tools that group
// by exception class still see one class per error code.
func codeClass(code string) string {
	if code == "" {
		return "ProcessingException"
	}
	var b strings.Builder
	for _, part := range strings.FieldsFunc(code, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		b.WriteString(strings.ToUpper(part[:1]) + strings.ToLower(part[1:]))
	}
	return b.String() + "Exception"
}

func withErrorFields(value []byte, f Failure, at time.Time) []byte {
	trimmed := bytes.TrimSpace(value)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return value
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return value
	}
	set := func(k, v string) {
		b, _ := json.Marshal(v)
		fields[k] = b
	}
	set(FieldErrorSource, f.Source)
	set(FieldErrorCode, f.Code)
	set(FieldErrorMessage, f.Message)
	set(FieldTimestamp, at.UTC().Format(time.RFC3339Nano))
	out, err := json.Marshal(fields)
	if err != nil {
		return value
	}
	return out
}

// TargetGroup returns the consumer group a replayed record is meant for, or "" when any group
// may process it.
func TargetGroup(headers []kgo.RecordHeader) string {
	return headerString(headers, HeaderTargetGroup)
}

// ReplayCount returns how many times a record has been replayed (0 when it never was, or the
// header is not a non-negative decimal).
func ReplayCount(headers []kgo.RecordHeader) int {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key != HeaderReplayCount {
			continue
		}
		v := headers[i].Value
		if len(v) == 0 || len(v) > 9 { // up to 999,999,999: no overflow, no allocation
			return 0
		}
		n := 0
		for _, c := range v {
			if c < '0' || c > '9' {
				return 0
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	return 0
}

func headerString(headers []kgo.RecordHeader, key string) string {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key == key {
			return string(headers[i].Value)
		}
	}
	return ""
}
