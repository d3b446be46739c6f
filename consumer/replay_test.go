package consumer_test

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
)

// A dead-letter record read back becomes the record that replays it to
// the group that failed it, and to no other: its replay topic.
func ExampleReplayRecord() {
	dlt := &kgo.Record{
		Topic: "orders.billing.dlt", Partition: 0, Offset: 7,
		Key: []byte("o-2"), Value: []byte{0, 0, 0, 0, 1, 2},
		Headers: []kgo.RecordHeader{
			{Key: bus.HeaderID, Value: []byte("0190a0e8-0000-7000-8000-000000000000")},
			{Key: bus.HeaderDLTOriginalTopic, Value: []byte("orders")},
			{Key: bus.HeaderDLTOriginalPartition, Value: []byte("1")},
			{Key: bus.HeaderDLTOriginalOffset, Value: []byte("41")},
			{Key: bus.HeaderDLTOriginalTimestamp, Value: []byte("2026-01-02T15:04:05.000Z")},
			{Key: bus.HeaderDLTConsumerGroup, Value: []byte("billing")},
			{Key: bus.HeaderDLTError, Value: []byte("card declined")},
			{Key: bus.HeaderDLTErrorKind, Value: []byte("permanent")},
			{Key: bus.HeaderDLTAttempts, Value: []byte("1")},
			{Key: bus.HeaderDLTFailedAt, Value: []byte("2026-01-02T15:04:06.000Z")},
		},
	}
	d, err := consumer.ParseDeadLetter(dlt)
	if err != nil {
		panic(err)
	}
	rec, err := consumer.ReplayRecord(d, time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC))
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
