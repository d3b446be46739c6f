package testkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// DeadLetterCauses are the error texts of FillDeadLetters' 5 causes; each
// %d is filled from the record's number, so the texts differ by record and
// group by cause.
var DeadLetterCauses = []string{
	`order o-%d: customer "c%d" not found`,
	`payment %08x-1b2c-4d5e-8f90-a1b2c3d4e5f6 declined after %d attempts`,
	`stock service at 10.0.%d.%d:8080 timed out`,
	`refund %d of order o-%d exceeds the payment`,
	`invoice %d: tax rate %d.5 unknown`,
}

// FillDeadLetters writes n dead letters of group to the dead-letter topic
// of "orders" (which must exist), spread over its partitions by key, record
// i of cause i%5 and one of 3 event types, failed a millisecond apart:
// what the dead-letter benchmarks read.
func FillDeadLetters(ctx context.Context, cl *kgo.Client, group string, n int) error {
	at := time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
	)
	for i := range n {
		cause := i % len(DeadLetterCauses)
		src := &kgo.Record{Key: fmt.Appendf(nil, "o-%d", i), Value: make([]byte, 200),
			Headers: []kgo.RecordHeader{{Key: wire.HeaderType, Value: fmt.Appendf(nil, "com.example.Event%d", cause%3)}}}
		dl := wire.DeadLetterRecord(src, wire.Origin{Topic: "orders", Partition: int32(i % 3), Offset: int64(i), Timestamp: at}, group,
			wire.KindPermanent, 1, fmt.Errorf(DeadLetterCauses[cause], i, i%251), at.Add(time.Duration(i)*time.Millisecond))
		wg.Add(1)
		cl.Produce(ctx, dl, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = errors.Join(errs, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	return errs
}
