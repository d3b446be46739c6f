package wire_test

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// A dead-letter record read back becomes the record that replays it to
// the group that failed it, and to no other: its replay topic.
func ExampleReplayRecord() {
	dlt := &kgo.Record{
		Topic: "orders.billing.dlt", Partition: 0, Offset: 7,
		Key: []byte("o-2"), Value: []byte{0, 0, 0, 0, 1, 2},
		Headers: []kgo.RecordHeader{
			{Key: wire.HeaderID, Value: []byte("0190a0e8-0000-7000-8000-000000000000")},
			{Key: wire.HeaderDLTOriginalTopic, Value: []byte("orders")},
			{Key: wire.HeaderDLTOriginalPartition, Value: []byte("1")},
			{Key: wire.HeaderDLTOriginalOffset, Value: []byte("41")},
			{Key: wire.HeaderDLTOriginalTimestamp, Value: []byte("2026-01-02T15:04:05.000Z")},
			{Key: wire.HeaderDLTConsumerGroup, Value: []byte("billing")},
			{Key: wire.HeaderDLTError, Value: []byte("card declined")},
			{Key: wire.HeaderDLTErrorKind, Value: []byte("permanent")},
			{Key: wire.HeaderDLTAttempts, Value: []byte("1")},
			{Key: wire.HeaderDLTFailedAt, Value: []byte("2026-01-02T15:04:06.000Z")},
		},
	}
	d, err := wire.ParseDeadLetter(dlt)
	if err != nil {
		panic(err)
	}
	rec, err := wire.ReplayRecord(d, time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Topic, string(rec.Key))
	for _, h := range rec.Headers {
		fmt.Printf("%s: %s\n", h.Key, h.Value)
	}
	// Output:
	// orders.billing.replay o-2
	// ce_id: 0190a0e8-0000-7000-8000-000000000000
	// dlt-original-partition: 1
	// dlt-original-offset: 41
	// dlt-original-timestamp: 2026-01-02T15:04:05.000Z
	// dlt-replay-count: 1
	// dlt-replayed-at: 2026-01-03T09:00:00.000Z
	// dlt-replay-of: orders.billing.dlt/0/7
}
