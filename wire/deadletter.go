package wire

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FailureKind is why a record was dead-lettered: the dlt-error-kind header.
type FailureKind string

// The dead-letter kinds of the wire contract.
const (
	KindRetriesExhausted FailureKind = "retries-exhausted" // the handler failed every attempt
	KindPermanent        FailureKind = "permanent"         // the handler returned a Permanent error, or nothing handles the type
	KindPoison           FailureKind = "poison"            // the record could not be decoded
)

// MaxErrorLen bounds the error text in dlt-error and retry-error.
const MaxErrorLen = 1024

// Origin is where a record first came from: its own place in the topic it
// was published to, or the place its retry or dead-letter headers name.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// DeadLetterRecord builds the dead-letter record of rec, which group failed
// at now: same key and value, the original headers (less any dlt-* and
// retry-* ones but the replay headers), and the dead-letter headers naming
// o, kind, the handler's attempts and err (cut to MaxErrorLen bytes). It
// goes to DeadLetterTopic(o.Topic, group).
func DeadLetterRecord(rec *kgo.Record, o Origin, group string, kind FailureKind, attempts int, err error, now time.Time) *kgo.Record {
	hs := keptHeaders(rec.Headers, 9)
	hs = append(hs,
		headerString(HeaderDLTOriginalTopic, o.Topic),
		headerString(HeaderDLTOriginalPartition, strconv.FormatInt(int64(o.Partition), 10)),
		headerString(HeaderDLTOriginalOffset, strconv.FormatInt(o.Offset, 10)),
		header(HeaderDLTOriginalTimestamp, formatTime(o.Timestamp)),
		headerString(HeaderDLTConsumerGroup, group),
		headerString(HeaderDLTError, truncateError(errText(err))),
		headerString(HeaderDLTErrorKind, string(kind)),
		headerString(HeaderDLTAttempts, strconv.FormatInt(int64(attempts), 10)),
		header(HeaderDLTFailedAt, formatTime(now)),
	)
	return &kgo.Record{
		Topic:   DeadLetterTopic(o.Topic, group),
		Key:     rec.Key,
		Value:   rec.Value,
		Headers: hs,
	}
}

// DeadLetter is a dead-letter record read back: the original record's
// key, value and headers, and where and why it failed.
type DeadLetter struct {
	Record            *kgo.Record // as read from the dead-letter topic
	ID                string      // ce_id, when the original had one
	Type              string      // ce_type, when the original had one
	OriginalTopic     string
	OriginalPartition int32
	OriginalOffset    int64
	OriginalTimestamp time.Time
	Group             string
	Kind              FailureKind
	Error             string
	Attempts          int
	FailedAt          time.Time
}

// ParseDeadLetter reads the dead-letter headers of rec. A record that
// lacks one of them, or carries one that does not parse, is not a
// dead-letter record: the error names the header.
func ParseDeadLetter(rec *kgo.Record) (DeadLetter, error) {
	if rec == nil {
		return DeadLetter{}, errors.New("wire: ParseDeadLetter: nil record")
	}
	d := DeadLetter{Record: rec}
	got := make(map[string]string, len(rec.Headers))
	for _, h := range rec.Headers {
		got[h.Key] = string(h.Value)
	}
	d.ID, d.Type = got[HeaderID], got[HeaderType]
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
		t, err := time.Parse(time.RFC3339Nano, need(key))
		if err != nil {
			errs = append(errs, fmt.Errorf("header %s: %w", key, err))
		}
		return t
	}
	d.OriginalTopic = need(HeaderDLTOriginalTopic)
	d.OriginalPartition = int32(number(HeaderDLTOriginalPartition, 32))
	d.OriginalOffset = number(HeaderDLTOriginalOffset, 64)
	d.OriginalTimestamp = stamp(HeaderDLTOriginalTimestamp)
	d.Group = need(HeaderDLTConsumerGroup)
	d.Kind = FailureKind(need(HeaderDLTErrorKind))
	d.Error = need(HeaderDLTError)
	d.Attempts = int(number(HeaderDLTAttempts, 32))
	d.FailedAt = stamp(HeaderDLTFailedAt)
	if len(errs) > 0 {
		return DeadLetter{Record: rec}, fmt.Errorf("wire: %s/%d@%d is not a dead-letter record: %w", rec.Topic, rec.Partition, rec.Offset, errors.Join(errs...))
	}
	return d, nil
}

// DeadLetterID names a dead-letter record as HeaderReplayOf does:
// "<topic>/<partition>/<offset>".
func DeadLetterID(rec *kgo.Record) string {
	if rec == nil {
		return ""
	}
	return rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10)
}

// timeFormat is RFC 3339 with milliseconds, as Kafka timestamps have: the
// form of the dead-letter and replay headers' times.
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

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// keptHeaders returns the record's headers without a consumer's own, with
// room for n more.
func keptHeaders(hs []kgo.RecordHeader, n int) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, 0, len(hs)+n)
	for _, h := range hs {
		if !isOwnHeader(h.Key) {
			out = append(out, h)
		}
	}
	return out
}

func header(k string, v []byte) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: v} }

func headerString(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
