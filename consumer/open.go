package consumer

import (
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/internal/alias"
	"github.com/evbus/evbus/wire"
)

// open reads the record's headers into the call.
//
// A record with ce_specversion claims to be a CloudEvent and must carry
// ce_id, ce_source and ce_type (the CloudEvents required attributes), and
// ce_time, when present, must be RFC 3339. A record with ce_id headers of
// different values is poison, whatever the mode: taking one of them would
// let two deliveries, or two groups, take different ids; several of the
// same value count as one. A record without ce_specversion
// is taken as a plain Confluent Avro record from a foreign producer: it is
// routed by ce_type when present, else by its writer schema's full name;
// its id is "kafka:<topic>/<partition>/<offset>" when it has no ce_id, and
// its time the record's timestamp when it has no ce_time.
func (r *call) open() error {
	p, rec := r.p, r.rec
	m := &r.meta
	m.Key, m.Headers = rec.Key, rec.Headers
	r.origin = wire.Origin{Topic: p.home.topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
	m.Topic, m.Partition, m.Offset = r.origin.Topic, r.origin.Partition, r.origin.Offset
	var (
		spec, hasTime bool
		timeText      string
		retryBad      []string
		ids           int  // ce_id headers
		idsDiffer     bool // two of them with different values
	)
	for i := range rec.Headers {
		h := &rec.Headers[i]
		if !wire.IsCloudEventsHeader(h.Key) && h.Key != codec.ValueSchemaIDHeader {
			if p.home.n > 0 && wire.IsRetryHeader(h.Key) && !r.retryHeader(h) ||
				p.replay() && wire.IsOriginHeader(h.Key) && !r.setOrigin(h.Key, string(h.Value)) {
				retryBad = append(retryBad, h.Key)
			}
			// A replay's outcome goes to the ledger (outcome.go); a
			// record of the topic itself is no replay, whatever it
			// carries.
			if h.Key == wire.HeaderReplayOf && (p.home.n > 0 || p.replay()) {
				r.replayOf = text(h.Value)
			}
			continue
		}
		switch h.Key {
		case wire.HeaderSpecVersion:
			spec = true
		case wire.HeaderID:
			idsDiffer = idsDiffer || ids > 0 && string(h.Value) != m.ID
			ids++
			m.ID = text(h.Value)
		case wire.HeaderType:
			r.ceType = h.Value
			if r.ceType == nil {
				r.ceType = []byte{}
			}
		case wire.HeaderSource:
			m.Source = text(h.Value)
		case wire.HeaderSubject:
			m.Subject = text(h.Value)
		case wire.HeaderTime:
			timeText, hasTime = text(h.Value), true
		case wire.HeaderCorrelationID:
			m.CorrelationID = text(h.Value)
		case wire.HeaderCausationID:
			m.CausationID = text(h.Value)
		case codec.ValueSchemaIDHeader:
			r.schemaHeader = h.Value
		}
	}

	if m.ID == "" && !spec {
		m.ID = "kafka:" + r.origin.Topic + "/" + itoa(int64(r.origin.Partition)) + "/" + itoa(r.origin.Offset)
	}
	if len(retryBad) > 0 {
		return poison("retry or replay headers that do not parse: %s", strings.Join(retryBad, ", "))
	}
	if idsDiffer {
		m.Type = string(r.ceType)
		return poison("%d %s headers with different values: which one names the event is a guess; a record carries one", ids, wire.HeaderID)
	}
	if limit := r.c.cfg.maxValueBytes; limit > 0 && len(rec.Value) > limit {
		m.Type = string(r.ceType)
		return poison("the value is %d bytes, more than the %d this consumer decodes (consumer.MaxValueBytes)", len(rec.Value), limit)
	}
	if spec {
		var missing []string
		if m.ID == "" {
			missing = append(missing, wire.HeaderID)
		}
		if m.Source == "" {
			missing = append(missing, wire.HeaderSource)
		}
		if len(r.ceType) == 0 {
			missing = append(missing, wire.HeaderType)
		}
		if len(missing) > 0 {
			m.Type = string(r.ceType)
			return poison("a CloudEvent (it has %s) without the required %s", wire.HeaderSpecVersion, strings.Join(missing, ", "))
		}
	}
	if hasTime {
		t, err := parseTime(timeText)
		if err != nil {
			m.Type = string(r.ceType)
			return poison("%s %q is not RFC 3339", wire.HeaderTime, timeText)
		}
		m.Time = t
	} else {
		m.Time = rec.Timestamp
	}
	return nil
}

// text returns a header value of a fetched record as a string without
// copying it: nothing writes to those bytes once franz-go has returned the
// record (evbus never recycles records into franz-go's pools), and
// Meta.Key and Meta.Headers share the same memory anyway. It saves an
// allocation per attribute (BenchmarkPipeline/trick=unsafeStrings).
func text(b []byte) string { return alias.String(b) }

// parseTime parses an RFC 3339 time (ce_time, the retry and dead-letter
// headers' times).
func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// retryHeader reads one of the retry headers; false when it does not parse.
func (r *call) retryHeader(h *kgo.RecordHeader) bool {
	v := string(h.Value)
	switch h.Key {
	case wire.HeaderRetryAttempts:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return false
		}
		r.prior = n
	case wire.HeaderRetryDue:
		t, err := parseTime(v)
		if err != nil {
			return false
		}
		r.due = t
	case wire.HeaderRetryOriginalPartition, wire.HeaderRetryOriginalOffset, wire.HeaderRetryOriginalTimestamp:
		return r.setOrigin(h.Key, v)
	}
	return true
}

// setOrigin sets the part of the call's origin a retry-original-* or
// dlt-original-* header names; false when v does not parse.
func (r *call) setOrigin(key, v string) bool {
	switch key {
	case wire.HeaderRetryOriginalPartition, wire.HeaderDLTOriginalPartition:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return false
		}
		r.origin.Partition = int32(n)
	case wire.HeaderRetryOriginalOffset, wire.HeaderDLTOriginalOffset:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		r.origin.Offset = n
	case wire.HeaderRetryOriginalTimestamp, wire.HeaderDLTOriginalTimestamp:
		t, err := parseTime(v)
		if err != nil {
			return false
		}
		r.origin.Timestamp = t
	}
	return true
}
