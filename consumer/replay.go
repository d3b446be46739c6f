package consumer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
)

// Headers a replayed record carries besides the original ones. They stay
// on the record when it is dead-lettered again, so the next replay knows
// how often it was tried (see ReplayRecord).
const (
	HeaderReplayCount = "dlt-replay-count" // replays so far, this one included
	HeaderReplayedAt  = "dlt-replayed-at"  // when the last replay was sent
	// HeaderReplayOf names the dead-letter record the replay was made
	// from, "<topic>/<partition>/<offset>": tools skip records already
	// replayed.
	HeaderReplayOf = "dlt-replay-of"
)

// ReplayTopicName names the replay topic of topic for a consumer group:
// "<topic>.<group>.replay". The group's consumer reads it as well as topic
// and hands its records to topic's handlers, so a dead-lettered record
// sent there reaches the group that failed it and no other.
func ReplayTopicName(topic, group string) string { return bus.ReplayTopic(topic, group) }

// replayHeader reports whether key is one of the replay headers, which a
// dead-letter record keeps although they start with "dlt-".
func replayHeader(key string) bool {
	return key == HeaderReplayCount || key == HeaderReplayedAt || key == HeaderReplayOf
}

// ReplayOf returns the dead-letter record rec was replayed from, in the
// form of HeaderReplayOf, "" for a record that is no replay.
func ReplayOf(rec *kgo.Record) string {
	if rec == nil {
		return ""
	}
	for _, h := range rec.Headers {
		if h.Key == HeaderReplayOf {
			return string(h.Value)
		}
	}
	return ""
}

// DeadLetterID names a dead-letter record as HeaderReplayOf does.
func DeadLetterID(rec *kgo.Record) string {
	if rec == nil {
		return ""
	}
	return rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10)
}

// ReplayCount returns how often rec (a dead-letter record, or a replayed
// one) was replayed: its dlt-replay-count header, 0 without one.
func ReplayCount(rec *kgo.Record) (int, error) {
	if rec == nil {
		return 0, fmt.Errorf("consumer: ReplayCount: nil record")
	}
	for _, h := range rec.Headers {
		if h.Key == HeaderReplayCount {
			n, err := strconv.Atoi(string(h.Value))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("consumer: header %s %q: want a count", HeaderReplayCount, h.Value)
			}
			return n, nil
		}
	}
	return 0, nil
}

// ReplayRecord builds the record that replays a dead-letter record to the
// group that failed it: to ReplayTopicName(original topic, group), with the
// same key and value bytes and the original headers (ce_id among them, so
// a handler that deduplicates by event id skips what it already handled),
// without the dlt-* headers, plus dlt-replay-count (one more than before),
// dlt-replayed-at and dlt-replay-of.
func ReplayRecord(d DeadLetterRecord, now time.Time) (*kgo.Record, error) {
	if d.Record == nil || d.OriginalTopic == "" || d.Group == "" {
		return nil, fmt.Errorf("consumer: ReplayRecord: not a parsed dead-letter record: use ParseDeadLetter")
	}
	n, err := ReplayCount(d.Record)
	if err != nil {
		return nil, err
	}
	hs := make([]kgo.RecordHeader, 0, len(d.Record.Headers)+2)
	for _, h := range d.Record.Headers {
		// The original record's coordinates stay: if the replay fails
		// too, its dead letter names the same original record.
		if !strings.HasPrefix(h.Key, "dlt-") && !strings.HasPrefix(h.Key, "retry-") || originHeader(h.Key) {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		headerString(HeaderReplayCount, strconv.Itoa(n+1)),
		header(HeaderReplayedAt, formatTime(now)),
		headerString(HeaderReplayOf, DeadLetterID(d.Record)),
	)
	return &kgo.Record{
		Topic:   ReplayTopicName(d.OriginalTopic, d.Group),
		Key:     d.Record.Key,
		Value:   d.Record.Value,
		Headers: hs,
	}, nil
}

// originHeader tells the dead-letter headers that name the original
// record, which a replay record carries on.
func originHeader(key string) bool {
	switch key {
	case bus.HeaderDLTOriginalPartition, bus.HeaderDLTOriginalOffset, bus.HeaderDLTOriginalTimestamp:
		return true
	}
	return false
}
