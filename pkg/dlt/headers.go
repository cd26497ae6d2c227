package dlt

// Spring Kafka's DeadLetterPublishingRecoverer headers. The SAGA services write the same names
// and encodings, so opsctl reads their dead letters and a Spring service's alike.
const (
	HeaderOriginalTopic         = "kafka_dlt-original-topic"
	HeaderOriginalPartition     = "kafka_dlt-original-partition"      // 4-byte big-endian int
	HeaderOriginalOffset        = "kafka_dlt-original-offset"         // 8-byte big-endian long
	HeaderOriginalTimestamp     = "kafka_dlt-original-timestamp"      // 8-byte big-endian long, ms
	HeaderOriginalTimestampType = "kafka_dlt-original-timestamp-type" // "CreateTime" or "LogAppendTime"
	HeaderOriginalGroup         = "kafka_dlt-original-consumer-group"
	HeaderExceptionFQCN         = "kafka_dlt-exception-fqcn"
	HeaderExceptionCauseFQCN    = "kafka_dlt-exception-cause-fqcn"
	HeaderExceptionMessage      = "kafka_dlt-exception-message"
	HeaderExceptionStacktrace   = "kafka_dlt-exception-stacktrace"

	// SpringPrefix starts every Spring dead-letter header.
	SpringPrefix = "kafka_dlt-"
)

// Kafka Connect's dead-letter-queue headers (errors.deadletterqueue.context.headers.enable).
// Connect writes every value as a UTF-8 string, numbers in decimal.
const (
	ConnectTopic            = "__connect.errors.topic"
	ConnectPartition        = "__connect.errors.partition"
	ConnectOffset           = "__connect.errors.offset"
	ConnectConnector        = "__connect.errors.connector.name"
	ConnectTask             = "__connect.errors.task.id"
	ConnectStage            = "__connect.errors.stage"
	ConnectClass            = "__connect.errors.class.name"
	ConnectExceptionClass   = "__connect.errors.exception.class.name"
	ConnectExceptionMessage = "__connect.errors.exception.message"
	ConnectExceptionTrace   = "__connect.errors.exception.stacktrace"

	// ConnectPrefix starts every Connect dead-letter header.
	ConnectPrefix = "__connect.errors."
)

// HeaderXOriginalTopic is the generic original-topic header some producers write by hand.
const HeaderXOriginalTopic = "x-original-topic"

// Headers opsctl adds to a replayed record. Services honour HeaderTargetGroup: a consumer of any
// other group commits and skips the record, so a replay reaches only the group that failed.
const (
	HeaderReplayID     = "x-opsctl-replay-id"
	HeaderReplayCount  = "x-opsctl-replay-count"  // decimal
	HeaderReplayedFrom = "x-opsctl-replayed-from" // "<dlt topic>/<partition>/<offset>"
	HeaderTargetGroup  = "x-opsctl-target-group"
)

// Value fields the SAGA services add to the original event to form a dead-letter value.
const (
	FieldErrorSource  = "errorSource"
	FieldErrorCode    = "errorCode"
	FieldErrorMessage = "errorMessage"
	FieldTimestamp    = "timestamp"
)
