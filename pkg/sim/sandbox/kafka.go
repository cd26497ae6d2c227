package sandbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/dlt"
	"github.com/come2us/opsctl/pkg/event"
	"github.com/come2us/opsctl/pkg/services/service"
)

// Topics of the dead letters written by other frameworks, seeded so operators meet all three
// formats opsctl reads.
const (
	// SpringTopic is a Spring Kafka service's topic; SpringDLT its DeadLetterPublishingRecoverer
	// topic (default <topic>.DLT naming).
	SpringTopic = "notifications"
	SpringDLT   = "notifications.DLT"
	// ConnectDLT is a Kafka Connect sink's dead-letter queue (errors.deadletterqueue.topic.name);
	// the connector reads payments-paid.
	ConnectDLT       = "payments-warehouse-sink-dlt"
	connectConnector = "payments-warehouse-sink"
	springGroup      = "notification-service-group"
)

// startKafka starts kfake with three brokers on 127.0.0.1; dataDir, when set, persists the log.
func startKafka(ports []int, dataDir string) (*kfake.Cluster, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(3),
		kfake.ClusterID("opsctl-sandbox"),
		// A consumer joining a group gets its partitions within a heartbeat; the default 5 s
		// would be most of the sandbox's start-up budget.
		kfake.BrokerConfigs(map[string]string{"group.consumer.heartbeat.interval.ms": "250"}),
	}
	if len(ports) > 0 {
		opts = append(opts, kfake.Ports(ports...))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start Kafka (kfake): %w", err)
	}
	return c, nil
}

// ensureTopics creates the SAGA topics and DLTs, the replay ledger (compacted), and the topics of
// the Spring and Connect fixtures, leaving existing ones alone.
func ensureTopics(ctx context.Context, cl *kgo.Client) error {
	if err := service.EnsureTopics(ctx, cl); err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	compact := "compact"
	create := []struct {
		topics  []string
		configs map[string]*string
	}{
		{[]string{dlt.DefaultLedgerTopic}, map[string]*string{"cleanup.policy": &compact}},
		{[]string{SpringTopic, SpringDLT, ConnectDLT}, nil},
	}
	var errs []error
	for _, c := range create {
		res, err := adm.CreateTopics(ctx, event.Partitions, -1, c.configs, c.topics...)
		if err != nil {
			return fmt.Errorf("create topics %v: %w", c.topics, err)
		}
		for _, r := range res.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
			}
		}
	}
	return errors.Join(errs...)
}

// seedForeignDLTs writes a few Spring- and Connect-format dead letters, once (a topic that already
// holds records is left alone, so a kept state is not seeded twice).
func seedForeignDLTs(ctx context.Context, cl *kgo.Client, now time.Time) (int, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, SpringDLT, ConnectDLT)
	if err != nil {
		return 0, fmt.Errorf("read the fixture topics' offsets: %w", err)
	}
	var recs []*kgo.Record
	if n := total(ends, SpringDLT); n == 0 {
		recs = append(recs, springDeadLetters(now)...)
	}
	if n := total(ends, ConnectDLT); n == 0 {
		recs = append(recs, connectDeadLetters(now)...)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("seed Spring and Connect dead letters: %w", err)
	}
	return len(recs), nil
}

func total(ends kadm.ListedOffsets, topic string) int64 {
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic {
			n += o.Offset
		}
	})
	return n
}

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// springDeadLetters are what Spring Kafka's DeadLetterPublishingRecoverer writes for a
// notification service whose mail server was down, plus one record its JsonDeserializer could
// not read: the original value unchanged, the failure in kafka_dlt-* headers (binary ints and
// longs), no error fields in the value.
func springDeadLetters(now time.Time) []*kgo.Record {
	type mail struct {
		EventID    string `json:"eventId"`
		EventType  string `json:"eventType"`
		OrderID    int64  `json:"orderId"`
		Email      string `json:"email"`
		Template   string `json:"template"`
		OccurredAt string `json:"occurredAt"`
	}
	var out []*kgo.Record
	for i, orderID := range []int64{1042, 1077, 1093} {
		at := now.Add(-time.Duration(40-i*7) * time.Minute)
		v, _ := json.Marshal(mail{EventID: uuid.NewString(), EventType: "ORDER_CONFIRMATION_REQUESTED", OrderID: orderID,
			Email: fmt.Sprintf("customer%d@example.com", orderID), Template: "order-confirmed", OccurredAt: at.UTC().Format(time.RFC3339Nano)})
		out = append(out, springRecord(int32(i%3), int64(310+i*11), at, strconv.FormatInt(orderID, 10), v,
			"org.springframework.mail.MailSendException",
			"Listener method 'public void com.come2us.notification.OrderMailListener.onOrderConfirmed(com.come2us.notification.MailEvent)' threw exception; nested exception is org.springframework.mail.MailSendException: Mail server connection failed; nested exception is com.sun.mail.util.MailConnectException: Couldn't connect to host, port: smtp.internal, 587; timeout 5000"))
	}
	at := now.Add(-12 * time.Minute)
	out = append(out, springRecord(1, 355, at, "1101", []byte(`{"eventId":"7f1c","eventType":"ORDER_CONFIRMATION_REQUESTED","orderId":"1101-A"`),
		"org.springframework.kafka.support.serializer.DeserializationException",
		"failed to deserialize; nested exception is com.fasterxml.jackson.core.io.JsonEOFException: Unexpected end-of-input: expected close marker for Object"))
	return out
}

func springRecord(partition int32, offset int64, at time.Time, key string, value []byte, cause, message string) *kgo.Record {
	return &kgo.Record{
		Topic: SpringDLT, Partition: partition, Key: []byte(key), Value: value, Timestamp: at.Add(3 * time.Second),
		Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-" + uuid.NewString()[:8] + "4bf92f3577b34da6a3ce929d-00f067aa0ba902b7-01")},
			{Key: dlt.HeaderOriginalTopic, Value: []byte(SpringTopic)},
			{Key: dlt.HeaderOriginalPartition, Value: be32(partition)},
			{Key: dlt.HeaderOriginalOffset, Value: be64(offset)},
			{Key: dlt.HeaderOriginalTimestamp, Value: be64(at.UnixMilli())},
			{Key: dlt.HeaderOriginalTimestampType, Value: []byte("CreateTime")},
			{Key: dlt.HeaderOriginalGroup, Value: []byte(springGroup)},
			{Key: dlt.HeaderExceptionFQCN, Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
			{Key: dlt.HeaderExceptionCauseFQCN, Value: []byte(cause)},
			{Key: dlt.HeaderExceptionMessage, Value: []byte(message)},
			{Key: dlt.HeaderExceptionStacktrace, Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException: " + message +
				"\n\tat org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.decorateException(KafkaMessageListenerContainer.java:2869)" +
				"\n\tat org.springframework.kafka.listener.KafkaMessageListenerContainer$ListenerConsumer.doInvokeOnMessage(KafkaMessageListenerContainer.java:2814)" +
				"\nCaused by: " + cause + "\n\t... 14 more")},
		},
	}
}

// connectDeadLetters are what a Kafka Connect JDBC sink exporting payments-paid to the
// warehouse writes to its dead-letter queue when its JsonConverter meets values it cannot
// convert: the raw value, and __connect.errors.* headers as UTF-8 strings.
func connectDeadLetters(now time.Time) []*kgo.Record {
	values := []string{
		`{"eventId":"0b6e","eventType":"PAYMENTS_PAID","orderId":2201,"amount":"12,000원"}`,
		`{"eventId":"9a41","eventType":"PAYMENTS_PAID","orderId":2230,"amount":18000,"paymentKey":`,
		"\x00\x00\x00\x00\x02\x1cPAYMENTS_PAID", // an Avro-framed value on a JSON topic
	}
	var out []*kgo.Record
	for i, v := range values {
		at := now.Add(-time.Duration(25-i*6) * time.Minute)
		msg := "Converting byte[] to Kafka Connect data failed due to serialization error: "
		out = append(out, &kgo.Record{
			Topic: ConnectDLT, Partition: int32(i % 3), Key: []byte(strconv.Itoa(2201 + i*29)), Value: []byte(v), Timestamp: at.Add(time.Second),
			Headers: []kgo.RecordHeader{
				{Key: dlt.ConnectTopic, Value: []byte(event.TopicPaymentsPaid)},
				{Key: dlt.ConnectPartition, Value: []byte(strconv.Itoa(i % 3))},
				{Key: dlt.ConnectOffset, Value: []byte(strconv.Itoa(880 + i*37))},
				{Key: dlt.ConnectConnector, Value: []byte(connectConnector)},
				{Key: dlt.ConnectTask, Value: []byte("0")},
				{Key: dlt.ConnectStage, Value: []byte("VALUE_CONVERTER")},
				{Key: dlt.ConnectClass, Value: []byte("org.apache.kafka.connect.json.JsonConverter")},
				{Key: dlt.ConnectExceptionClass, Value: []byte("org.apache.kafka.connect.errors.DataException")},
				{Key: dlt.ConnectExceptionMessage, Value: []byte(msg)},
				{Key: dlt.ConnectExceptionTrace, Value: []byte("org.apache.kafka.connect.errors.DataException: " + msg +
					"\n\tat org.apache.kafka.connect.json.JsonConverter.toConnectData(JsonConverter.java:333)" +
					"\nCaused by: org.apache.kafka.common.errors.SerializationException: com.fasterxml.jackson.core.JsonParseException")},
			},
		})
	}
	return out
}

// dltRecords returns how many records the SAGA dead-letter topics hold.
func dltRecords(ctx context.Context, adm *kadm.Client) (int64, error) {
	var topics []string
	for _, t := range event.Topics() {
		topics = append(topics, event.DLT(t))
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range topics {
		n += total(ends, t)
	}
	return n, nil
}
