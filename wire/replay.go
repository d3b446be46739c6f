package wire

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ReplayLimit is the loop guard's limit unless a deployment sets another:
// a dead letter whose dlt-replay-count is ReplayLimit or more (its event
// was replayed that many times and failed each time) is parked, by the
// consumer that dead-letters it and by a bulk replay, not replayed again
// unless asked for by id. Writers in other languages use the same limit
// (docs/wire-format.md, "Dead-letter ledger").
const ReplayLimit = 3

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

// ReplayCount returns how often rec (a dead-letter record, or a replayed
// one) was replayed: its dlt-replay-count header, 0 without one.
func ReplayCount(rec *kgo.Record) (int, error) {
	if rec == nil {
		return 0, errors.New("wire: ReplayCount: nil record")
	}
	for _, h := range rec.Headers {
		if h.Key == HeaderReplayCount {
			n, err := strconv.Atoi(string(h.Value))
			if err != nil || n < 0 {
				return 0, fmt.Errorf("wire: header %s %q: want a count", HeaderReplayCount, h.Value)
			}
			return n, nil
		}
	}
	return 0, nil
}

// ReplayRecord builds the record that replays a dead-letter record to the
// group that failed it: to ReplayTopic(original topic, group), with the
// same key and value bytes and the original headers (ce_id among them, so
// a handler that deduplicates by event id skips what it already handled),
// without the dlt-* headers but those naming the original record's place
// (IsOriginHeader), plus dlt-replay-count (one more than before),
// dlt-replayed-at and dlt-replay-of.
func ReplayRecord(d DeadLetter, now time.Time) (*kgo.Record, error) {
	if d.Record == nil || d.OriginalTopic == "" || d.Group == "" {
		return nil, errors.New("wire: ReplayRecord: not a parsed dead-letter record: use ParseDeadLetter")
	}
	n, err := ReplayCount(d.Record)
	if err != nil {
		return nil, err
	}
	hs := make([]kgo.RecordHeader, 0, len(d.Record.Headers)+2)
	for _, h := range d.Record.Headers {
		// The original record's coordinates stay: if the replay fails
		// too, its dead letter names the same original record.
		if !isFailureHeader(h.Key) || IsOriginHeader(h.Key) {
			hs = append(hs, h)
		}
	}
	hs = append(hs,
		headerString(HeaderReplayCount, strconv.Itoa(n+1)),
		header(HeaderReplayedAt, formatTime(now)),
		headerString(HeaderReplayOf, DeadLetterID(d.Record)),
	)
	return &kgo.Record{
		Topic:   ReplayTopic(d.OriginalTopic, d.Group),
		Key:     d.Record.Key,
		Value:   d.Record.Value,
		Headers: hs,
	}, nil
}
