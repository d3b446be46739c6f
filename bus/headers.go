package bus

// Record headers of the wire contract: the CloudEvents Kafka protocol
// binding in binary content mode, plus W3C trace context. Services in other
// languages read these names; they never change.
const (
	HeaderSpecVersion   = "ce_specversion"
	HeaderID            = "ce_id"
	HeaderSource        = "ce_source"
	HeaderType          = "ce_type"
	HeaderTime          = "ce_time"
	HeaderSubject       = "ce_subject"
	HeaderCorrelationID = "ce_correlationid"
	HeaderCausationID   = "ce_causationid"
	HeaderContentType   = "content-type"
	HeaderTraceParent   = "traceparent"
	HeaderTraceState    = "tracestate"

	SpecVersion = "1.0"
	ContentType = "application/avro"
)

// Headers a dead-letter record carries besides the original ones (the wire
// contract, DESIGN.md section 3). Times are RFC 3339 in UTC with
// milliseconds; numbers are decimal text.
const (
	HeaderDLTOriginalTopic     = "dlt-original-topic"
	HeaderDLTOriginalPartition = "dlt-original-partition"
	HeaderDLTOriginalOffset    = "dlt-original-offset"
	HeaderDLTOriginalTimestamp = "dlt-original-timestamp" // the original record's timestamp
	HeaderDLTConsumerGroup     = "dlt-consumer-group"
	HeaderDLTError             = "dlt-error" // bounded length
	HeaderDLTErrorKind         = "dlt-error-kind"
	HeaderDLTAttempts          = "dlt-attempts" // handler runs, 0 for poison
	HeaderDLTFailedAt          = "dlt-failed-at"
)
