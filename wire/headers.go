package wire

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record headers of an event: the CloudEvents Kafka protocol binding in
// binary content mode, plus W3C trace context.
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

	SpecVersion = "1.0"              // the value of ce_specversion
	ContentType = "application/avro" // the value of content-type
)

// Headers a dead-letter record carries besides the original ones. Times are
// RFC 3339 in UTC with milliseconds; numbers are decimal text.
const (
	HeaderDLTOriginalTopic     = "dlt-original-topic"
	HeaderDLTOriginalPartition = "dlt-original-partition"
	HeaderDLTOriginalOffset    = "dlt-original-offset"
	HeaderDLTOriginalTimestamp = "dlt-original-timestamp" // the original record's timestamp
	HeaderDLTConsumerGroup     = "dlt-consumer-group"
	HeaderDLTError             = "dlt-error" // at most MaxErrorLen bytes
	HeaderDLTErrorKind         = "dlt-error-kind"
	HeaderDLTAttempts          = "dlt-attempts" // handler runs, 0 for poison
	HeaderDLTFailedAt          = "dlt-failed-at"
)

// Headers a replayed record carries besides the original ones. They stay
// on the record when it is dead-lettered again, so the next replay knows
// how often it was tried (see ReplayRecord).
const (
	HeaderReplayCount = "dlt-replay-count" // replays so far, this one included
	HeaderReplayedAt  = "dlt-replayed-at"  // when the last replay was sent
	// HeaderReplayOf names the dead-letter record the replay was made
	// from, "<topic>/<partition>/<offset>" (DeadLetterID): tools skip
	// records already replayed.
	HeaderReplayOf = "dlt-replay-of"
)

// Headers a record in a retry topic carries besides the original ones.
// They are evbus's own: only the consumer group that wrote them reads them.
const (
	HeaderRetryAttempts          = "retry-attempts" // handler runs so far
	HeaderRetryDue               = "retry-due"      // when to run the handler again
	HeaderRetryOriginalTopic     = "retry-original-topic"
	HeaderRetryOriginalPartition = "retry-original-partition"
	HeaderRetryOriginalOffset    = "retry-original-offset"
	HeaderRetryOriginalTimestamp = "retry-original-timestamp"
	HeaderRetryError             = "retry-error" // the last error, at most MaxErrorLen bytes
)

// The prefixes of the header families above.
const (
	cloudEventsPrefix = "ce_"
	deadLetterPrefix  = "dlt-"
	retryPrefix       = "retry-"
)

// IsCloudEventsHeader reports whether key names a CloudEvents attribute
// (ce_*).
func IsCloudEventsHeader(key string) bool { return strings.HasPrefix(key, cloudEventsPrefix) }

// IsRetryHeader reports whether key is one of the retry headers (retry-*).
func IsRetryHeader(key string) bool { return strings.HasPrefix(key, retryPrefix) }

// IsOriginHeader reports whether key is a dead-letter header that names
// the original record's place, which a replay record carries on:
// dlt-original-partition, dlt-original-offset and dlt-original-timestamp.
func IsOriginHeader(key string) bool {
	switch key {
	case HeaderDLTOriginalPartition, HeaderDLTOriginalOffset, HeaderDLTOriginalTimestamp:
		return true
	}
	return false
}

// isReplayHeader reports whether key is one of the replay headers, which a
// dead-letter record keeps although they start with "dlt-".
func isReplayHeader(key string) bool {
	return key == HeaderReplayCount || key == HeaderReplayedAt || key == HeaderReplayOf
}

// isOwnHeader reports whether a header is one a consumer writes, which it
// drops from a record before adding its own. The replay headers stay: they
// count replays across dead-letterings.
func isOwnHeader(key string) bool {
	return (strings.HasPrefix(key, deadLetterPrefix) && !isReplayHeader(key)) || IsRetryHeader(key)
}

// isFailureHeader reports whether key is a dead-letter, replay or retry
// header.
func isFailureHeader(key string) bool {
	return strings.HasPrefix(key, deadLetterPrefix) || IsRetryHeader(key)
}

// HeaderValue returns the value of the first header of hs named key, and
// whether there is one.
func HeaderValue(hs []kgo.RecordHeader, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}
