package consumer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
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

// MaxErrorLen bounds the error text in dlt-error and retry-error.
const MaxErrorLen = 1024

// Kind is why a record was dead-lettered: the dlt-error-kind header.
type Kind string

// The dead-letter kinds of the wire contract.
const (
	KindRetriesExhausted Kind = "retries-exhausted" // the handler failed every attempt
	KindPermanent        Kind = "permanent"         // the handler returned a Permanent error, or nothing handles the type
	KindPoison           Kind = "poison"            // the record could not be decoded
)

// RetryTopicName names retry topic n (from 1) of topic for a consumer
// group: "<topic>.<group>.retry-<n>".
func RetryTopicName(topic, group string, n int) string {
	return topic + "." + group + ".retry-" + strconv.Itoa(n)
}

// timeFormat is RFC 3339 with milliseconds, as Kafka timestamps have.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) []byte { return t.UTC().AppendFormat(nil, timeFormat) }

// truncateError bounds an error text to MaxErrorLen bytes without cutting
// a UTF-8 sequence.
func truncateError(s string) string {
	if len(s) <= MaxErrorLen {
		return s
	}
	const ellipsis = "…"
	cut := MaxErrorLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// ownHeader reports whether a header is one the consumer writes, which it
// drops from a record before adding its own. The replay headers stay: they
// count replays across dead-letterings.
func ownHeader(key string) bool {
	return (strings.HasPrefix(key, "dlt-") && !replayHeader(key)) || strings.HasPrefix(key, "retry-")
}

// keptHeaders returns the record's headers without the consumer's own,
// with room for n more.
func keptHeaders(hs []kgo.RecordHeader, n int) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs)+n)
	for _, h := range hs {
		if !ownHeader(h.Key) {
			out = append(out, h)
		}
	}
	return out
}

func header(k string, v []byte) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: v} }

func headerString(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// origin is where a record first came from: its own coordinates in the
// topic it was published to, or those its retry headers name.
type origin struct {
	topic     string
	partition int32
	offset    int64
	timestamp time.Time
}

// deadLetterRecord builds the dead-letter record of rec: same key and
// value, the original headers (less any dlt-* and retry-* ones) and the
// dead-letter headers.
func deadLetterRecord(rec *kgo.Record, o origin, group string, kind Kind, attempts int, err error, now time.Time) *kgo.Record {
	hs := keptHeaders(rec.Headers, 9)
	hs = append(hs,
		headerString(bus.HeaderDLTOriginalTopic, o.topic),
		headerString(bus.HeaderDLTOriginalPartition, itoa(int64(o.partition))),
		headerString(bus.HeaderDLTOriginalOffset, itoa(o.offset)),
		header(bus.HeaderDLTOriginalTimestamp, formatTime(o.timestamp)),
		headerString(bus.HeaderDLTConsumerGroup, group),
		headerString(bus.HeaderDLTError, truncateError(errText(err))),
		headerString(bus.HeaderDLTErrorKind, string(kind)),
		headerString(bus.HeaderDLTAttempts, itoa(int64(attempts))),
		header(bus.HeaderDLTFailedAt, formatTime(now)),
	)
	return &kgo.Record{
		Topic:   bus.DeadLetterTopic(o.topic, group),
		Key:     rec.Key,
		Value:   rec.Value,
		Headers: hs,
	}
}

// retryRecord builds the record that carries rec to retry topic stage.
func retryRecord(rec *kgo.Record, o origin, group string, stage, attempts int, err error, due time.Time) *kgo.Record {
	hs := keptHeaders(rec.Headers, 7)
	hs = append(hs,
		headerString(HeaderRetryAttempts, itoa(int64(attempts))),
		header(HeaderRetryDue, due.UTC().AppendFormat(nil, time.RFC3339Nano)),
		headerString(HeaderRetryOriginalTopic, o.topic),
		headerString(HeaderRetryOriginalPartition, itoa(int64(o.partition))),
		headerString(HeaderRetryOriginalOffset, itoa(o.offset)),
		header(HeaderRetryOriginalTimestamp, formatTime(o.timestamp)),
		headerString(HeaderRetryError, truncateError(errText(err))),
	)
	return &kgo.Record{
		Topic:   RetryTopicName(o.topic, group, stage),
		Key:     rec.Key,
		Value:   rec.Value,
		Headers: hs,
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// DeadLetterRecord is a dead-letter record read back: the original record's
// key, value and headers, and where and why it failed.
type DeadLetterRecord struct {
	Record            *kgo.Record // as read from the dead-letter topic
	ID                string      // ce_id, when the original had one
	Type              string      // ce_type, when the original had one
	OriginalTopic     string
	OriginalPartition int32
	OriginalOffset    int64
	OriginalTimestamp time.Time
	Group             string
	Kind              Kind
	Error             string
	Attempts          int
	FailedAt          time.Time
}

// ParseDeadLetter reads the dead-letter headers of rec. A record that
// lacks one of them, or carries one that does not parse, is not a
// dead-letter record: the error names the header.
func ParseDeadLetter(rec *kgo.Record) (DeadLetterRecord, error) {
	if rec == nil {
		return DeadLetterRecord{}, errors.New("consumer: ParseDeadLetter: nil record")
	}
	d := DeadLetterRecord{Record: rec}
	got := make(map[string]string, len(rec.Headers))
	for _, h := range rec.Headers {
		got[h.Key] = string(h.Value)
	}
	d.ID, d.Type = got[bus.HeaderID], got[bus.HeaderType]
	var errs []error
	need := func(key string) string {
		v, ok := got[key]
		if !ok {
			errs = append(errs, fmt.Errorf("no %s header", key))
		}
		return v
	}
	number := func(key string, bits int) int64 {
		n, err := strconv.ParseInt(need(key), 10, bits)
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", key, err))
		}
		return n
	}
	stamp := func(key string) time.Time {
		t, err := parseTime(need(key))
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", key, err))
		}
		return t
	}
	d.OriginalTopic = need(bus.HeaderDLTOriginalTopic)
	d.OriginalPartition = int32(number(bus.HeaderDLTOriginalPartition, 32))
	d.OriginalOffset = number(bus.HeaderDLTOriginalOffset, 64)
	d.OriginalTimestamp = stamp(bus.HeaderDLTOriginalTimestamp)
	d.Group = need(bus.HeaderDLTConsumerGroup)
	d.Kind = Kind(need(bus.HeaderDLTErrorKind))
	d.Error = need(bus.HeaderDLTError)
	d.Attempts = int(number(bus.HeaderDLTAttempts, 32))
	d.FailedAt = stamp(bus.HeaderDLTFailedAt)
	if len(errs) > 0 {
		return DeadLetterRecord{Record: rec}, fmt.Errorf("consumer: %s/%d@%d is not a dead-letter record: %w", rec.Topic, rec.Partition, rec.Offset, errors.Join(errs...))
	}
	return d, nil
}
