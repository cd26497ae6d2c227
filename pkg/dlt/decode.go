package dlt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"encoding/json/jsontext"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Format names who wrote a dead letter.
type Format string

// Dead-letter formats opsctl recognises.
const (
	FormatSaga    Format = "saga"    // SAGA services: error fields in the JSON value + Spring headers
	FormatSpring  Format = "spring"  // Spring Kafka DeadLetterPublishingRecoverer
	FormatConnect Format = "connect" // Kafka Connect dead-letter queue
	FormatUnknown Format = "unknown" // no recognised dead-letter metadata
)

// Origin is where a dead letter was first consumed from. Partition and Offset are -1 when unknown.
type Origin struct {
	Topic     string    `json:"topic,omitempty"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Header is one decoded header: Text is printable (numbers for Spring's binary ints and longs)
// but not yet sanitised for a terminal; Kind says how it was read.
type Header struct {
	Key  string `json:"key"`
	Text string `json:"value"`
	Kind string `json:"kind"` // "string", "int32", "int64", "timestamp", "binary"
}

// Record is a dead letter as opsctl understands it.
type Record struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       []byte    `json:"-"`
	Value     []byte    `json:"-"`

	Format       Format    `json:"format"`
	Origin       Origin    `json:"origin"`
	ErrorSource  string    `json:"errorSource"`
	ErrorCode    string    `json:"errorCode"`
	ErrorMessage string    `json:"errorMessage"`
	FailedAt     time.Time `json:"failedAt,omitzero"`
	Exception    string    `json:"exception,omitempty"`
	Stacktrace   string    `json:"-"`
	Group        string    `json:"group,omitempty"`
	ReplayCount  int       `json:"replayCount"`
	TargetGroup  string    `json:"targetGroup,omitempty"`

	// Fields is the value decoded as a JSON object, nil when the value is not one.
	Fields map[string]any `json:"-"`
	// Headers are all headers, decoded, in record order.
	Headers []Header `json:"-"`
	// Raw keeps the record's headers as they were, for replay.
	Raw []kgo.RecordHeader `json:"-"`
	// Problems lists what could not be decoded (truncated headers, non-UTF-8 text, …).
	Problems []string `json:"problems,omitempty"`
}

// Decode reads a dead letter of any supported format. It never fails and never panics; what it
// cannot read is listed in Problems.
func Decode(r *kgo.Record) Record { return decode(r, true, nil) }

// DecodeBrief reads what grouping and replay need — format, origin, error source, code and
// message, failure time, group, replay count, problems — without decoding the whole value into
// Fields or rendering Headers, which are left nil. It reads the same values as Decode at a
// fraction of the cost, for scans over millions of records.
func DecodeBrief(r *kgo.Record) Record { return decode(r, false, nil) }

// DecodeFields is DecodeBrief that also decodes the value's members named in names into
// Fields (each as Decode holds it; Fields is nil when the value is not a JSON object), reading
// the value once: what a filter naming a few fields needs of each record it looks at.
func DecodeFields(r *kgo.Record, names []string) Record {
	if names == nil {
		names = []string{} // none named: still an object's (empty) fields
	}
	return decode(r, false, names)
}

func decode(r *kgo.Record, full bool, names []string) Record {
	d := Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.Key, Value: r.Value, Raw: r.Headers,
		Origin: Origin{Partition: -1, Offset: -1},
	}
	var ef errorFields
	if full {
		d.Fields = objectMembers(r.Value)
		ef = mapErrorFields(d.Fields)
	} else {
		ef, d.Fields, _ = scanObject(r.Value, names)
	}
	var spring, connect bool
	// The original topic comes from the first of these that a header names, whatever order the
	// headers are in: Spring's, then Connect's, then the generic x-original-topic.
	var springTopic, connectTopic, xTopic string
	if full && len(r.Headers) > 0 {
		d.Headers = make([]Header, 0, len(r.Headers))
	}
	for _, h := range r.Headers {
		if full {
			d.Headers = append(d.Headers, decodeHeader(h.Key, h.Value))
		}
		if w := numericWidth(h.Key); w > 0 && len(h.Value) != w {
			d.Problems = append(d.Problems, fmt.Sprintf("header %s: want %d bytes, got %d", clip(h.Key), w, len(h.Value)))
		}
		switch {
		case h.Key == HeaderOriginalTopic:
			spring = true
			springTopic = d.topicHeader(h)
		case h.Key == ConnectTopic:
			connect = true
			connectTopic = d.topicHeader(h)
		case h.Key == HeaderXOriginalTopic:
			xTopic = d.topicHeader(h)
		case strings.HasPrefix(h.Key, SpringPrefix):
			spring = true
			d.readSpring(h)
		case strings.HasPrefix(h.Key, ConnectPrefix):
			connect = true
			d.readConnect(h)
		case h.Key == HeaderTargetGroup:
			d.TargetGroup = string(h.Value)
		}
	}
	for _, t := range []string{springTopic, connectTopic, xTopic} {
		if t != "" {
			d.Origin.Topic = t
			break
		}
	}
	d.ReplayCount = ReplayCount(r.Headers)

	switch {
	case ef.hasCode:
		d.Format = FormatSaga
		d.ErrorSource = ef.source
		d.ErrorCode = ef.code
		if ef.message != "" {
			d.ErrorMessage = ef.message
		}
		if ts, err := time.Parse(time.RFC3339Nano, ef.timestamp); err == nil {
			d.FailedAt = ts
		}
	case spring:
		d.Format = FormatSpring
		d.ErrorSource = d.Group
		d.ErrorCode = shortClass(d.Exception)
	case connect:
		d.Format = FormatConnect
		d.ErrorCode = shortClass(d.Exception)
	default:
		d.Format = FormatUnknown
	}
	if d.ErrorSource == "" {
		d.ErrorSource = "unknown"
	}
	if d.ErrorCode == "" {
		d.ErrorCode = "UNKNOWN"
	}
	if d.FailedAt.IsZero() {
		d.FailedAt = r.Timestamp
	}
	return d
}

// errorFields are the SAGA error fields of a value.
type errorFields struct {
	hasCode                          bool // errorCode is present and not null: a SAGA dead letter
	source, code, message, timestamp string
}

func mapErrorFields(m map[string]any) errorFields {
	if m == nil {
		return errorFields{}
	}
	return errorFields{
		hasCode: m[FieldErrorCode] != nil,
		source:  stringField(m, FieldErrorSource), code: stringField(m, FieldErrorCode),
		message: stringField(m, FieldErrorMessage), timestamp: stringField(m, FieldTimestamp),
	}
}

// scanObject reads the error fields of a JSON object value, and its members named in names
// (when not nil), without building a map of every member: it checks the value in one pass
// (FieldsInto's scan) and decodes only those members. Like objectMembers, it reads nothing
// from a value that is not exactly one valid JSON object (ok false); duplicate members count
// last.
func scanObject(value []byte, names []string) (ef errorFields, fields map[string]any, ok bool) {
	t := bytes.TrimSpace(value)
	if len(t) == 0 || t[0] != '{' {
		return errorFields{}, nil, false
	}
	ms := memberScans.Get().(*memberScan)
	defer ms.release()
	// The error fields first, then the names asked for that are not one of them.
	all := append(ms.names[:0], errorFieldNames[:]...)
	for _, n := range names {
		if !slices.Contains(all, n) {
			all = append(all, n)
		}
	}
	ms.names = all
	raw, ok := ms.scan(t, all)
	if !ok {
		return errorFields{}, nil, false
	}
	if names != nil {
		fields = map[string]any{}
		for _, n := range names {
			v := raw[slices.Index(all, n)]
			if v == nil {
				continue
			}
			x, ok := rawAny(jsontext.Value(v))
			if !ok {
				return errorFields{}, nil, false
			}
			fields[n] = x
		}
	}
	code := jsontext.Value(raw[1])
	return errorFields{
		hasCode: len(code) > 0 && code.Kind() != 'n',
		source:  rawString(raw[0]), code: rawString(code), message: rawString(raw[2]), timestamp: rawString(raw[3]),
	}, fields, true
}

// errorFieldNames are the error fields' names, in the order of scanObject's raw values.
var errorFieldNames = [4]string{FieldErrorSource, FieldErrorCode, FieldErrorMessage, FieldTimestamp}

// rawString renders a raw JSON member the way stringField renders a decoded one.
func rawString(v jsontext.Value) string {
	switch {
	case len(v) == 0 || v.Kind() == 'n':
		return ""
	case v.Kind() == '"':
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner) // nothing to unescape or replace
		}
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			return s
		}
		return ""
	case v.Kind() == '0':
		return string(v)
	}
	var a any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&a); err != nil {
		return ""
	}
	b, _ := json.Marshal(a)
	return string(b)
}

func (d *Record) readSpring(h kgo.RecordHeader) {
	switch h.Key {
	case HeaderOriginalPartition:
		if len(h.Value) == 4 {
			d.Origin.Partition = int32(binary.BigEndian.Uint32(h.Value))
		}
	case HeaderOriginalOffset:
		if len(h.Value) == 8 {
			d.Origin.Offset = int64(binary.BigEndian.Uint64(h.Value))
		}
	case HeaderOriginalTimestamp:
		if len(h.Value) == 8 {
			d.Origin.Timestamp = time.UnixMilli(int64(binary.BigEndian.Uint64(h.Value))).UTC()
		}
	case HeaderOriginalGroup:
		d.Group = string(h.Value)
	case HeaderExceptionCauseFQCN:
		d.Exception = string(h.Value) // the cause says more than Spring's listener wrapper
	case HeaderExceptionFQCN:
		if d.Exception == "" {
			d.Exception = string(h.Value)
		}
	case HeaderExceptionMessage:
		d.ErrorMessage = string(h.Value)
	case HeaderExceptionStacktrace:
		d.Stacktrace = string(h.Value)
	}
}

func (d *Record) readConnect(h kgo.RecordHeader) {
	v := string(h.Value)
	switch h.Key {
	case ConnectPartition:
		if n, err := strconv.ParseInt(v, 10, 32); err == nil {
			d.Origin.Partition = int32(n)
		} else {
			d.Problems = append(d.Problems, fmt.Sprintf("header %s: %q is not a partition", h.Key, clip(v)))
		}
	case ConnectOffset:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			d.Origin.Offset = n
		} else {
			d.Problems = append(d.Problems, fmt.Sprintf("header %s: %q is not an offset", h.Key, clip(v)))
		}
	case ConnectConnector:
		d.ErrorSource = v
		d.Group = "connect-" + v
	case ConnectExceptionClass:
		d.Exception = v
	case ConnectExceptionMessage:
		d.ErrorMessage = v
	case ConnectExceptionTrace:
		d.Stacktrace = v
	}
}

func (d *Record) topicHeader(h kgo.RecordHeader) string {
	t := headerTopic(h.Value)
	if t == "" && len(h.Value) > 0 {
		d.Problems = append(d.Problems, fmt.Sprintf("header %s: %q is not a topic name", h.Key, clip(string(h.Value))))
	}
	return t
}

// clip shortens a header value quoted in a problem, so a megabyte of garbage does not become a
// megabyte of problem text.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// headerTopic reads a topic name from a header. Kafka topic names are short ASCII
// ([a-zA-Z0-9._-], at most 249 characters); anything else cannot be a topic to replay to, so it
// reads as no topic at all rather than as a target that would fail later.
func headerTopic(v []byte) string {
	if !validTopic(v) {
		return ""
	}
	return string(v)
}

// validTopic reports whether v is a legal Kafka topic name.
func validTopic(v []byte) bool {
	if len(v) == 0 || len(v) > 249 {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return string(v) != "." && string(v) != ".."
}

// IsDeadLetterHeader reports whether a header is dead-letter metadata (Spring's kafka_dlt-*,
// Connect's __connect.errors.*, or x-original-topic) rather than a business or trace header.
// A replayed record drops these: they describe the failure, not the event.
func IsDeadLetterHeader(key string) bool {
	return strings.HasPrefix(key, SpringPrefix) || strings.HasPrefix(key, ConnectPrefix) || key == HeaderXOriginalTopic
}

// OriginTopic returns the original topic that headers name, with Decode's precedence (Spring's
// kafka_dlt-original-topic, then Connect's __connect.errors.topic, then x-original-topic) and
// its validation, without decoding anything else: the one thing a replay needs per record.
func OriginTopic(headers []kgo.RecordHeader) string { return OriginTopicFunc(headers, headerTopic) }

// OriginTopicFunc is OriginTopic with name turning a header value into a topic name ("" when
// it is not a legal one): a scan over millions of records passes a cache, so it neither
// checks nor allocates a name it has seen.
func OriginTopicFunc(headers []kgo.RecordHeader, name func([]byte) string) string {
	var spring, connect, x string
	for _, h := range headers {
		switch h.Key {
		case HeaderOriginalTopic:
			spring = name(h.Value)
		case ConnectTopic:
			connect = name(h.Value)
		case HeaderXOriginalTopic:
			x = name(h.Value)
		}
	}
	switch {
	case spring != "":
		return spring
	case connect != "":
		return connect
	}
	return x
}

// TopicName returns v as a topic name, or "" when v is not a legal Kafka topic name.
func TopicName(v []byte) string { return headerTopic(v) }

// OriginalTopic returns the topic a dead letter should be replayed to, from the first header
// that names it (Spring, Connect, then x-original-topic); "" when none does.
func (d Record) OriginalTopic() string { return d.Origin.Topic }

// GroupKey is what `dlt stats` groups by: errorSource × errorCode.
type GroupKey struct {
	Source string `json:"errorSource"`
	Code   string `json:"errorCode"`
}

// GroupKey returns the record's group.
func (d Record) GroupKey() GroupKey { return GroupKey{Source: d.ErrorSource, Code: d.ErrorCode} }

// Field returns a top-level value field rendered as text ("" when absent), for table columns such
// as orderId.
func (d Record) Field(name string) string {
	if d.Fields == nil {
		return ""
	}
	switch v := d.Fields[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func stringField(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// ObjectFields returns the named top-level members of a JSON object value, each as Decode's
// Fields holds it (numbers as json.Number, a duplicate member counting last), and nil when the
// value is not exactly one valid JSON object, as Decode's Fields is then. A filter that reads
// two fields of a million dead letters tokenises each value instead of building a map of
// every member.
func ObjectFields(value []byte, names []string) map[string]any {
	if names == nil {
		names = []string{} // none named: still an object's (empty) fields
	}
	_, fields, ok := scanObject(value, names)
	if !ok {
		return nil
	}
	return fields
}

// rawAny decodes one raw JSON value as the library decodes a member into an object's map: numbers as json.Number.
// Strings without escapes and literals take no decoder.
func rawAny(raw jsontext.Value) (any, bool) {
	switch raw.Kind() {
	case '"':
		if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner), true
		}
	case '0':
		return json.Number(string(raw)), true
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	}
	vd := json.NewDecoder(bytes.NewReader(raw))
	vd.UseNumber()
	var v any
	if err := vd.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// shortClass turns "org.apache.kafka.connect.errors.DataException" into "DataException".
func shortClass(fqcn string) string {
	if i := strings.LastIndexAny(fqcn, ".$"); i >= 0 && i < len(fqcn)-1 {
		return fqcn[i+1:]
	}
	return fqcn
}

func isNumericHeader(k string) bool { return numericWidth(k) > 0 }

func numericWidth(k string) int {
	switch k {
	case HeaderOriginalPartition:
		return 4
	case HeaderOriginalOffset, HeaderOriginalTimestamp:
		return 8
	}
	return 0
}

// DecodeHeader renders one header value: Spring's binary partition/offset/timestamp as numbers
// (a timestamp also as RFC 3339), UTF-8 text as text, anything else as hex.
func DecodeHeader(key string, value []byte) Header { return decodeHeader(key, value) }

func decodeHeader(key string, v []byte) Header {
	switch w := numericWidth(key); {
	case w == 4 && len(v) == 4:
		return Header{Key: key, Text: strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10), Kind: "int32"}
	case w == 8 && len(v) == 8:
		n := int64(binary.BigEndian.Uint64(v))
		if key == HeaderOriginalTimestamp {
			return Header{Key: key, Text: fmt.Sprintf("%d (%s)", n, time.UnixMilli(n).UTC().Format(time.RFC3339Nano)), Kind: "timestamp"}
		}
		return Header{Key: key, Text: strconv.FormatInt(n, 10), Kind: "int64"}
	case w > 0:
		return Header{Key: key, Text: hexText(v), Kind: "binary"}
	}
	if utf8.Valid(v) {
		return Header{Key: key, Text: string(v), Kind: "string"}
	}
	return Header{Key: key, Text: hexText(v), Kind: "binary"}
}

func hexText(v []byte) string {
	if len(v) == 0 {
		return "(empty)"
	}
	var b strings.Builder
	b.WriteString("0x")
	for _, c := range v {
		fmt.Fprintf(&b, "%02x", c)
	}
	return b.String()
}
