package consumer

import (
	"math"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// What the consumer holds in memory is bounded in decompressed bytes.
//
// Kafka's fetch limits (kgo.FetchMaxBytes, kgo.FetchMaxPartitionBytes)
// count bytes on the wire, so compressed: a fetch of 1 MiB of zstd per
// partition can hold a hundred times that once franz-go has decompressed
// it. So the consumer sizes each fetch itself. A hook learns how far the
// batches franz-go reads expand (the records' bytes in memory per byte on
// the wire, the highest of the batches since the last poll, forgotten
// slowly), and before each poll the per-partition fetch limit is set so
// that the next fetch brings each partition at most half its pause
// threshold, in decompressed bytes.
//
// A partition then holds at most its pause threshold plus three such
// shares: the fetch that made it full, the one franz-go had buffered
// meanwhile (taken when the full partition has held the poll for
// kgo.FetchMaxWait), and the one in flight when it was paused. That is 2.5
// times its threshold, and the thresholds shrink with the number of
// partitions, so that all of them together hold at most MaxBufferedBytes.

// minPauseAt is the least a partition's pause threshold shrinks to, so a
// consumer of very many partitions still reads each in useful amounts: past
// MaxBufferedBytes/(2.5 * minPauseAt) partitions, the bound is this per
// partition instead.
const minPauseAt = 64 << 10

// initialExpansion is what a byte on the wire is taken to expand to
// before any batch was read: the first fetch is small, whatever the
// compression.
const initialExpansion = 256

// minFetchPartitionBytes is the least per-partition fetch limit asked for.
const minFetchPartitionBytes = 4 << 10

// pauseCap is the most a partition's pause threshold may be: its share of
// MaxBufferedBytes, of which it holds at most 2.5 times its threshold.
func (c *Consumer) pauseCap() int64 {
	return max(c.cfg.maxBuffered*2/(5*max(c.nparts.Load(), 1)), minPauseAt)
}

// fetchShare is the most a partition's share of one fetch may bring,
// decompressed: half the lowest pause threshold of the consumer's
// partitions (the fetch limit is one for all of them), that of Batch
// handlers when every topic read has them.
func (c *Consumer) fetchShare() int64 {
	lowest := int64(pauseAt)
	if c.batchOnly {
		lowest = batchPauseAt
	}
	return min(lowest, c.pauseCap()) / 2
}

// fetchSizer sizes the client's fetches in decompressed bytes. The hook
// runs on franz-go's fetch goroutines; resize on the poll loop only.
//
// A new limit reaches the broker with the next fetch that includes the
// partition: franz-go issues its next fetch as soon as a poll takes the
// last one, so the limit set before a poll applies from the fetch after
// it, and with an incremental fetch session a partition is sent again
// (with the limit of the time) only once its offset moved. The first
// fetch is small (initialExpansion); a partition whose first batch is
// larger than that waits until it is the first of a fetch, as Kafka
// returns an oversized batch only there.
type fetchSizer struct {
	// seen is the highest expansion of a batch read since the last
	// resize, in 1/1024ths.
	seen atomic.Uint64

	expansion float64 // what resize sized the last fetch with
	learned   bool    // expansion is from batches read, no longer initialExpansion
	ceiling   int32   // the client's kgo.FetchMaxPartitionBytes: never more
	maxBytes  int32   // the client's kgo.FetchMaxBytes, kept
	partBytes int32   // the per-partition limit set last
}

var _ kgo.HookFetchBatchRead = (*fetchSizer)(nil)

// OnFetchBatchRead records how far a batch expanded: its records' bytes
// and the consumer's per-record accounting (recordSize) per byte read.
func (s *fetchSizer) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	if m.CompressedBytes <= 0 || m.NumRecords <= 0 {
		return
	}
	held := uint64(m.UncompressedBytes) + uint64(m.NumRecords)*sizerRecordOverhead
	e := held * 1024 / uint64(m.CompressedBytes)
	for {
		old := s.seen.Load()
		if e <= old || s.seen.CompareAndSwap(old, e) {
			return
		}
	}
}

// sizerRecordOverhead is recordSize's overhead of a record with eight
// headers, the CloudEvents ones and a trace context.
const sizerRecordOverhead = recordOverhead + 8*32

// start takes the client's configured limits as ceilings and sets the
// first fetch's, before the group is joined.
func (s *fetchSizer) start(cl *kgo.Client, share int64) {
	s.ceiling = cl.OptValue(kgo.FetchMaxPartitionBytes).(int32)
	s.maxBytes = cl.OptValue(kgo.FetchMaxBytes).(int32)
	s.expansion = initialExpansion
	s.apply(cl, share)
}

// resize sets the per-partition fetch limit so that a partition's share of
// the next fetch is at most share bytes once decompressed.
func (s *fetchSizer) resize(cl *kgo.Client, share int64) {
	seen := float64(s.seen.Swap(0)) / 1024
	switch {
	case seen == 0:
		// No batch read: nothing learned.
	case !s.learned:
		s.expansion, s.learned = max(seen, 1), true
	default:
		// Forget a high expansion slowly: fetches go back to their
		// size some dozens of polls after values compress less.
		s.expansion = max(seen, s.expansion*15/16, 1)
	}
	s.apply(cl, share)
}

func (s *fetchSizer) apply(cl *kgo.Client, share int64) {
	n := int32(min(float64(s.ceiling), max(float64(share)/s.expansion, minFetchPartitionBytes), math.MaxInt32))
	if n != s.partBytes {
		s.partBytes = n
		cl.UpdateFetchMaxBytes(max(s.maxBytes, n), n)
	}
}
