// Package replaytest provides what tests and benchmarks of dead-letter replay need: an
// in-process Kafka (kfake) listening on TCP with the SAGA topics, dead letters in the three
// formats opsctl reads (SAGA services, Spring Kafka, Kafka Connect), and helpers to produce them
// and read topics back the way a read_committed consumer would.
package replaytest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
)

// Topics are the topics every test cluster starts with: the SAGA topics and their DLTs, plus a
// Spring-style "-dlt" topic and a Connect dead-letter queue.
var Topics = []string{
	event.TopicPaymentsPaid, event.TopicPaymentsFailed, event.TopicOrdersFailed,
	event.DLT(event.TopicPaymentsPaid), event.DLT(event.TopicPaymentsFailed), event.DLT(event.TopicOrdersFailed),
	"payments-failed-dlt", "connect-orders-dlt",
}

// Base is the fixed time fixtures are stamped from, so golden output does not drift. A test that
// stamps with it must also inject its "now" (Factory.Now, a view's clock) relative to Base, and
// must not let the broker age its records: kfake applies retention (Cluster.Compact,
// ApplyRetention) against the wall clock, so a fixture older than a topic's seven days there is
// deleted. Such a test stamps its fixtures relative to time.Now() taken when it starts.
var Base = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)

// NewCluster starts a one-broker kfake cluster on a local TCP port with Topics (3 partitions
// each) and closes it when the test ends.
func NewCluster(tb testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	tb.Helper()
	c, err := Start(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Start starts a cluster like NewCluster does, for a benchmark command without a testing.TB.
func Start(opts ...kfake.Opt) (*kfake.Cluster, error) {
	base := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, Topics...)}
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return c, nil
}

// Client returns a plain client for the cluster with extra options; the test closes it.
func Client(tb testing.TB, c *kfake.Cluster, extra ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, extra...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// NewClientFunc returns a client constructor for the cluster, the shape replay.Config wants.
func NewClientFunc(c *kfake.Cluster) func(extra ...kgo.Opt) (*kgo.Client, error) {
	return func(extra ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, extra...)...)
	}
}

// Produce writes records synchronously, each to the partition it names (ManualPartitioner), so
// fixtures land at known offsets.
func Produce(tb testing.TB, c *kfake.Cluster, recs ...*kgo.Record) {
	tb.Helper()
	if err := ProduceAll(context.Background(), c.ListenAddrs(), recs...); err != nil {
		tb.Fatal(err)
	}
}

// ProduceAll writes records to the brokers at addrs, each to the partition it names. Batches stay
// within Kafka's default max.message.bytes unless a single record is larger (it then compresses
// into its own batch).
func ProduceAll(ctx context.Context, addrs []string, recs ...*kgo.Record) error {
	batchMax := 1_000_000
	for _, r := range recs {
		size := len(r.Key) + len(r.Value) + 1024
		for _, h := range r.Headers {
			size += len(h.Key) + len(h.Value) + 16
		}
		batchMax = max(batchMax, size)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(int32(batchMax)), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce fixtures: %w", err)
	}
	return nil
}

// ReadCommitted reads topic from the start to its current high watermark as a read_committed
// consumer (a SAGA service) would, waiting for open transactions to end.
func ReadCommitted(tb testing.TB, c *kfake.Cluster, topic string) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := ReadAll(ctx, c.ListenAddrs(), topic)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// ReadStable reads topic's committed records up to its last stable offset: it never waits for
// an open transaction (a killed producer's, say) to end.
func ReadStable(tb testing.TB, c *kfake.Cluster, topic string) []*kgo.Record {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs, err := read(ctx, c.ListenAddrs(), topic, true)
	if err != nil {
		tb.Fatal(err)
	}
	return recs
}

// ReadAll reads every committed record of topic up to its high watermark at the time of the
// call, sorted by partition and offset.
func ReadAll(ctx context.Context, addrs []string, topic string) ([]*kgo.Record, error) {
	return read(ctx, addrs, topic, false)
}

func read(ctx context.Context, addrs []string, topic string, stable bool) ([]*kgo.Record, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	list := kadm.NewClient(adm).ListEndOffsets
	if stable {
		list = kadm.NewClient(adm).ListCommittedOffsets
	}
	ends, err := list(kadm.WithAuthorizedOps(ctx), topic)
	adm.Close()
	if err != nil {
		return nil, err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: still waiting for partitions %v: %w", topic, want, err)
		}
		if err := fs.Err(); err != nil {
			return nil, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end && !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := want[r.Partition]; ok && r.Offset >= end-1 {
				delete(want, r.Partition)
			}
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	return out, nil
}

// Saga is a dead letter as the SAGA services write it: an orders-failed event that
// product-service could not process, on orders-failed.DLT at partition p.
func Saga(p int32, orderID int64, code string, quantity int, at time.Time) *kgo.Record {
	orig := &kgo.Record{
		Topic: event.TopicOrdersFailed, Partition: p, Offset: 1000 + orderID, Key: event.Key(orderID), Timestamp: at.Add(-time.Minute),
		Value: fmt.Appendf(nil, `{"eventId":"00000000-0000-4000-8000-%012d","eventType":"OrderFailed","occurredAt":%q,"orderId":%d,"orderDetailId":%d,"optionValueId":3,"quantity":%d,"paymentKey":"tgen_%08dABCDEFGH"}`,
			orderID, at.Add(-time.Minute).Format(time.RFC3339), orderID, orderID*10, quantity, orderID),
		Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}},
	}
	d := dlt.Build(orig, dlt.Failure{Source: "product-service", Code: code, Message: "stock restore failed: " + code,
		Group: event.GroupProductService, At: at})
	d.Partition, d.Timestamp = p, at
	return d
}

// Spring is a dead letter as Spring Kafka's DeadLetterPublishingRecoverer writes it: the value is
// the original payment event, untouched; the failure lives only in kafka_dlt-* headers.
func Spring(p int32, orderID int64, at time.Time) *kgo.Record {
	return &kgo.Record{
		Topic: "payments-failed-dlt", Partition: p, Key: event.Key(orderID), Timestamp: at,
		Value: fmt.Appendf(nil, `{"orderId":%d,"paymentKey":"tgen_%08dSECRETKEY","amount":15000,"reasonCode":"CARD_DECLINED"}`, orderID, orderID),
		Headers: []kgo.RecordHeader{
			{Key: "b3", Value: []byte("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")},
			{Key: dlt.HeaderOriginalTopic, Value: []byte(event.TopicPaymentsFailed)},
			{Key: dlt.HeaderOriginalPartition, Value: binary.BigEndian.AppendUint32(nil, uint32(p))},
			{Key: dlt.HeaderOriginalOffset, Value: binary.BigEndian.AppendUint64(nil, uint64(500+orderID))},
			{Key: dlt.HeaderOriginalTimestamp, Value: binary.BigEndian.AppendUint64(nil, uint64(at.Add(-time.Minute).UnixMilli()))},
			{Key: dlt.HeaderOriginalTimestampType, Value: []byte("CreateTime")},
			{Key: dlt.HeaderOriginalGroup, Value: []byte(event.GroupOrderService)},
			{Key: dlt.HeaderExceptionFQCN, Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
			{Key: dlt.HeaderExceptionCauseFQCN, Value: []byte("org.springframework.dao.CannotAcquireLockException")},
			{Key: dlt.HeaderExceptionMessage, Value: []byte("Listener method threw; could not acquire lock on orders row")},
			{Key: dlt.HeaderExceptionStacktrace, Value: []byte("org.springframework.dao.CannotAcquireLockException: could not acquire lock\n\tat com.come2us.order.Listener.onPaymentFailed(Listener.java:42)")},
		},
	}
}

// Connect is a dead letter as a Kafka Connect sink writes to its dead-letter queue: a value the
// converter could not read, with __connect.errors.* headers.
func Connect(p int32, n int64, at time.Time) *kgo.Record {
	return &kgo.Record{
		Topic: "connect-orders-dlt", Partition: p, Key: []byte(strconv.FormatInt(n, 10)), Timestamp: at,
		Value: fmt.Appendf(nil, "not-json-%d\x00\xff", n),
		Headers: []kgo.RecordHeader{
			{Key: dlt.ConnectTopic, Value: []byte(event.TopicOrdersFailed)},
			{Key: dlt.ConnectPartition, Value: []byte(strconv.Itoa(int(p)))},
			{Key: dlt.ConnectOffset, Value: []byte(strconv.FormatInt(700+n, 10))},
			{Key: dlt.ConnectConnector, Value: []byte("jdbc-sink-orders")},
			{Key: dlt.ConnectTask, Value: []byte("0")},
			{Key: dlt.ConnectStage, Value: []byte("VALUE_CONVERTER")},
			{Key: dlt.ConnectClass, Value: []byte("org.apache.kafka.connect.json.JsonConverter")},
			{Key: dlt.ConnectExceptionClass, Value: []byte("org.apache.kafka.connect.errors.DataException")},
			{Key: dlt.ConnectExceptionMessage, Value: []byte("Converting byte[] to Kafka Connect data failed due to serialization error")},
		},
	}
}

// Hostile returns dead letters built to break a viewer: ANSI and OSC escapes in values and
// headers, non-UTF-8 headers, truncated Spring ints, empty and null values, and a 1 MiB value.
// They all name orders-failed as their original topic, on orders-failed.DLT partition p.
func Hostile(p int32, at time.Time) []*kgo.Record {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = "ab\x1b[31mc\x07"[i%9]
	}
	orig := func(extra ...kgo.RecordHeader) []kgo.RecordHeader {
		return append([]kgo.RecordHeader{{Key: dlt.HeaderOriginalTopic, Value: []byte(event.TopicOrdersFailed)}}, extra...)
	}
	mk := func(key string, value []byte, hs []kgo.RecordHeader) *kgo.Record {
		return &kgo.Record{Topic: event.DLT(event.TopicOrdersFailed), Partition: p, Key: []byte(key), Value: value, Headers: hs, Timestamp: at}
	}
	return []*kgo.Record{
		mk("ansi\x1b[2J", []byte("{\"orderId\":\"\\u001b]0;pwned\\u0007\",\"errorCode\":\"X\\u001b[31mRED\",\"errorSource\":\"evil\\u009b1m\",\"errorMessage\":\"\\u202egnp.exe\"}"),
			orig(kgo.RecordHeader{Key: "note\x1b]52;c;aGk=\x07", Value: []byte("\x1b[31mred\x1b[0m \u009b2J")})),
		mk("non-utf8", []byte{0xff, 0xfe, 0x1b, '[', '2', 'J', 0x00},
			orig(kgo.RecordHeader{Key: "bin", Value: []byte{0xff, 0x00, 0xc3}}, kgo.RecordHeader{Key: dlt.HeaderOriginalPartition, Value: []byte{0, 1}})),
		mk("empty", []byte{}, orig(kgo.RecordHeader{Key: dlt.HeaderOriginalOffset, Value: []byte{1, 2, 3}})),
		mk("null", nil, nil),
		mk("big", big, orig()),
	}
}

// SeedDLT writes n dead letters of orders-failed to topic over three partitions, a quarter of
// each of the error codes DB_LOCK_TIMEOUT, STOCK_ROW_MISSING, COUPON_NOT_FOUND and PG_TIMEOUT
// (all from product-service), for benchmarks of large DLTs. The topic must have three
// partitions (kfake.SeedTopics(3, topic)).
func SeedDLT(tb testing.TB, c *kfake.Cluster, topic string, n int) {
	tb.Helper()
	const chunk = 50_000
	codes := []string{"DB_LOCK_TIMEOUT", "STOCK_ROW_MISSING", "COUPON_NOT_FOUND", "PG_TIMEOUT"}
	for start := 0; start < n; start += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			orig := &kgo.Record{Topic: "orders-failed", Partition: int32(i % 3), Offset: int64(i), Key: []byte(strconv.Itoa(i)), Timestamp: Base,
				Value: fmt.Appendf(nil, `{"eventId":"e-%d","eventType":"OrderFailed","orderId":%d,"orderDetailId":%d,"optionValueId":3,"quantity":%d,"paymentKey":"tgen_%d"}`, i, i, i*10, 1+i%4, i)}
			d := dlt.Build(orig, dlt.Failure{Source: "product-service", Code: codes[i%4], Message: "stock restore failed", Group: "product-service-group",
				At: Base.Add(time.Duration(i) * time.Millisecond)})
			d.Topic, d.Partition = topic, int32(i%3)
			recs = append(recs, d)
		}
		Produce(tb, c, recs...)
	}
}
