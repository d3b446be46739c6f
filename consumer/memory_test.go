package consumer_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// TestBufferedBytesBounded: with every handler blocked and a backlog of
// highly compressible zstd values, what the consumer holds, counted
// decompressed, stays within MaxBufferedBytes, with handlers of one record
// and with Batch handlers alike: fetches are sized by how far the batches
// expand, every partition is paused once full, and nothing more is handed
// over; released, the handlers get every record.
func TestBufferedBytesBounded(t *testing.T) {
	ctx := context.Background()
	e := start(t)
	e.topics(3, "orders")
	const records = 4500 // 1 KiB notes, 1.8 KiB each in memory: 2.6 MiB per partition
	fillBacklog(t, e, kgo.ZstdCompression(), false, records<<10, 64<<10)

	const bound = 4 << 20
	if _, err := consumer.New("bounded", e.reg, consumer.MaxBufferedBytes(1000)); err == nil || !strings.Contains(err.Error(), "MaxBufferedBytes(1000)") {
		t.Fatalf("MaxBufferedBytes(1000): %v, want an error naming the option", err)
	}
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Pool().Close()
	processed, err := consumer.NewProcessed(lite)
	if err != nil {
		t.Fatal(err)
	}
	if err := processed.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, group := range []string{"bounded", "bounded-batch"} {
		t.Run(group, func(t *testing.T) {
			c := e.consumer(group, consumer.MaxBufferedBytes(bound))
			release := make(chan struct{})
			var once sync.Once
			open := func() { once.Do(func() { close(release) }) }
			t.Cleanup(open)
			wait := func(ctx context.Context) error {
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if group == "bounded-batch" {
				consumer.HandleBatchTx(c, orderPlaced, processed, func(ctx context.Context, _ *sql.Tx, _ []*Order, _ []bus.Meta) error {
					return wait(ctx)
				}, consumer.Batch(500))
			} else {
				consumer.Handle(c, orderPlaced, func(ctx context.Context, _ *Order, _ bus.Meta) error { return wait(ctx) })
			}
			run(t, c)
			waitFor(t, "every partition paused, or more than the bound held", func() bool {
				st := c.Stats()
				return st.Paused == 3 || st.Buffered > bound
			})
			st := c.Stats()
			if st.Buffered > bound {
				t.Fatalf("the consumer holds %d bytes of records, more than MaxBufferedBytes %d (stats %+v)", st.Buffered, int64(bound), st)
			}
			if st.Buffered == 0 {
				t.Fatalf("the consumer holds nothing while its handlers are blocked (stats %+v)", st)
			}
			open()
			waitFor(t, "every record handled", func() bool { return c.Stats().Handled == records })
			waitFor(t, "every offset committed", func() bool { return sum(e.committed(group, "orders")) == records })
		})
	}
}

// BenchmarkBacklogMemory measures what a consumer holds in memory when
// every handler is blocked and a backlog waits: three partitions, about
// 120 MB of values (360 MB for zstd-360MB), produced compressed. It
// reports the growth of the process's heap (in use, after a GC) from
// before the consumer starts to the most it reached while the handlers
// were blocked; the backlog the broker keeps is in the baseline.
//
//	go test ./consumer -run '^$' -bench BacklogMemory -benchtime 1x
func BenchmarkBacklogMemory(b *testing.B) {
	for _, tc := range []struct {
		name   string
		codec  kgo.CompressionCodec
		random bool
		mb     int
	}{
		{"snappy", kgo.SnappyCompression(), false, 120},
		{"lz4", kgo.Lz4Compression(), false, 120},
		{"zstd", kgo.ZstdCompression(), false, 120},
		{"zstd-360MB", kgo.ZstdCompression(), false, 360},
		{"incompressible", kgo.ZstdCompression(), true, 120},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				growth, held := backlogGrowth(b, tc.codec, tc.random, tc.mb<<20)
				b.ReportMetric(float64(growth)/(1<<20), "MiB-growth")
				b.ReportMetric(float64(held)/(1<<20), "MiB-held")
			}
		})
	}
}

// backlogGrowth fills three partitions with size bytes of 1 KiB notes
// (repetitive, or random letters), then runs a consumer whose handlers
// block, and returns how much the heap in use grew at most and what the
// consumer counted as held then (Stats.Buffered).
func backlogGrowth(b *testing.B, codec kgo.CompressionCodec, random bool, size int) (growth uint64, held int64) {
	b.Helper()
	e := start(b)
	e.topics(3, "orders")
	fillBacklog(b, e, codec, random, size, 0)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	c := e.consumer("memory")
	release := make(chan struct{})
	defer close(release)
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	run(b, c)
	// The most the heap holds while the consumer reads what it can:
	// sampled until it has not grown for two seconds.
	var peak uint64
	grew := time.Now()
	for time.Since(grew) < 2*time.Second {
		time.Sleep(100 * time.Millisecond)
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak+(1<<20) {
			grew = time.Now()
		}
		if m.HeapInuse > peak {
			peak, held = m.HeapInuse, c.Stats().Buffered
		}
	}
	return peak - min(peak, before.HeapInuse), held
}

// fillBacklog produces size bytes of orders with 1 KiB notes to the three
// partitions of orders, compressed with codec, in batches of batchBytes
// (uncompressed; 0 for franz-go's default).
func fillBacklog(tb testing.TB, e *env, codec kgo.CompressionCodec, random bool, size, batchBytes int) {
	tb.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(e.stack.Brokers()...), kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(5 * time.Millisecond)}
	if batchBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(batchBytes)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	pub, err := bus.NewPublisher(context.Background(), cl, e.reg, bus.Source("/test"), bus.Types(orderPlaced))
	if err != nil {
		tb.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	repetitive := strings.Repeat("gift wrap, leave at the door; ", 35)[:1024]
	note := func() string {
		if !random {
			return repetitive
		}
		var sb strings.Builder
		for range 1024 {
			sb.WriteByte(byte('!' + rnd.IntN(94)))
		}
		return sb.String()
	}
	const perCall = 1000
	for n := 0; n*1024 < size; n += perCall {
		evs := make([]any, 0, perCall)
		for i := n; i < min(n+perCall, size>>10); i++ {
			evs = append(evs, &Order{OrderID: orderKey(i % 300), Seq: int64(i), Note: note()})
		}
		if err := pub.Publish(context.Background(), evs...); err != nil {
			tb.Fatal(err)
		}
	}
}
