package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// replayRecords is how many replays one op of BenchmarkReplayOutcomes
// consumes.
const replayRecords = 5_000

// BenchmarkReplayOutcomes consumes replays of dead letters, each
// replaying in the group's ledger, until their outcomes are written
// (outcomes), against the same records without dlt-replay-of, handled
// only (plain): what writing the outcomes costs. A new group per op; the
// measure runs from the first record handled to the last outcome in the
// ledger (plain: the last record handled).
func BenchmarkReplayOutcomes(b *testing.B) {
	benchSetup(b)
	b.Run("outcomes", func(b *testing.B) { benchLoop(b, benchReplays(true)) })
	b.Run("plain", func(b *testing.B) { benchLoop(b, benchReplays(false)) })
}

// replayPlaced is benchPlaced's event on a topic of its own, empty: the
// benchmark's groups read its replay topic only.
var replayPlaced = bus.Event[BenchOrder]("bench-replays", func(o *BenchOrder) string { return o.CustomerID }, bus.Namespace("com.example.bench"))

// replaySources are records of the benchmarks' topic to replay.
var replaySources = sync.OnceValues(func() ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bench.stack.Brokers()...), kgo.ConsumeTopics(benchPlaced.Descriptor().Topic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < replayRecords {
		fs := cl.PollFetches(context.Background())
		if err := fs.Err0(); err != nil {
			return nil, err
		}
		out = append(out, fs.Records()...)
	}
	return out[:replayRecords], nil
})

func benchReplays(outcomes bool) func(b *testing.B, group string) *span {
	return func(b *testing.B, group string) *span {
		ctx := context.Background()
		srcs, err := replaySources()
		if err != nil {
			b.Fatal(err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(bench.stack.Brokers()...), kgo.ProducerBatchMaxBytes(16<<20))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		topic := replayPlaced.Descriptor().Topic()
		replay := wire.ReplayTopic(topic, group)
		if err := bus.CreateTopics(ctx, adm, bus.TopicSpec{Name: topic, Partitions: 3}, bus.TopicSpec{Name: replay, Partitions: 3}); err != nil {
			b.Fatal(err)
		}
		recs := make([]*kgo.Record, len(srcs))
		var changes []deadletter.Change
		for i, src := range srcs {
			hs := slices.Clone(src.Headers)
			if outcomes {
				id := fmt.Sprintf("%s/%d/%d", wire.DeadLetterTopic(topic, group), i%3, i)
				hs = append(hs, kgo.RecordHeader{Key: wire.HeaderReplayOf, Value: []byte(id)}, kgo.RecordHeader{Key: wire.HeaderReplayCount, Value: []byte("1")})
				changes = append(changes, deadletter.Change{ID: id, Entry: wire.LedgerEntry{Kind: wire.ActionReplay, At: time.Now(), Actor: "bench"}})
			}
			recs[i] = &kgo.Record{Topic: replay, Key: src.Key, Value: src.Value, Headers: hs}
		}
		want := len(recs)
		if outcomes {
			l, err := deadletter.OpenLedger(ctx, cl, adm, group)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.RecordAll(ctx, changes); err != nil {
				b.Fatal(err)
			}
			l.Close()
			want++ // the last outcome written
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		c := benchConsumer(b, group)
		s := newSpan(want)
		consumer.Handle(c, replayPlaced, func(context.Context, *BenchOrder, bus.Meta) error {
			s.record()
			return nil
		})
		if outcomes {
			go awaitLedger(b, adm, group, 2*int64(len(recs)), s)
		}
		return consumeAll(b, c, s)
	}
}

// awaitLedger records once group's ledger holds n records. A failed
// look (a connection the broker dropped) is tried again.
func awaitLedger(b *testing.B, adm *kadm.Client, group string, n int64, s *span) {
	for fails := 0; ; time.Sleep(2 * time.Millisecond) {
		select {
		case <-s.done: // ended without the outcomes: a miscount
			b.Error("the op ended before its outcomes were written")
			return
		default:
		}
		ends, err := adm.ListEndOffsets(context.Background(), wire.LedgerTopic(group))
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			if fails++; fails == 1000 {
				b.Error(err)
				s.record() // ends the op
				return
			}
			continue
		}
		var got int64
		ends.Each(func(o kadm.ListedOffset) { got += o.Offset })
		if got >= n {
			s.record()
			return
		}
	}
}
