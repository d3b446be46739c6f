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
