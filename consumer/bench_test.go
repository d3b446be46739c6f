package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/internal/tracefloor"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/tracing"
)

// BenchOrder is the benchmarks' event, shared with the internal ones.
type BenchOrder = consumer.BenchOrder

var benchPlaced = bus.Event[BenchOrder]("bench", func(o *BenchOrder) string { return o.CustomerID }, bus.Namespace("com.example.bench"))

const benchRecords = 20_000

var bench struct {
	once   sync.Once
	err    error
	stack  *devstack.Stack
	reg    *schema.Registry
	schema avro.Schema
	groups atomic.Int64
}

// benchSetup starts one stack for every benchmark of the process and
// produces the records they all consume.
func benchSetup(b *testing.B) {
	b.Helper()
	bench.once.Do(func() { bench.err = benchProduce() })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
}

func benchProduce() error {
	ctx := context.Background()
	stack, err := devstack.Start(ctx)
	if err != nil {
		return err
	}
	bench.stack = stack
	if bench.reg, err = schema.New(stack.RegistryURL()); err != nil {
		return err
	}
	if bench.schema, err = avro.Parse(benchPlaced.Descriptor().Schema().String()); err != nil {
		return err
	}
	return fillBench(ctx, benchPlaced, 3, benchRecords, strings.Repeat("gift wrap, leave at the door ", 3))
}

// fillBench creates the topic of t with partitions and publishes n
// orders to it, with note, on the benchmarks' stack.
func fillBench(ctx context.Context, t *bus.Type[BenchOrder], partitions int32, n int, note string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bench.stack.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: t.Descriptor().Topic(), Partitions: partitions}); err != nil {
		return err
	}
	prod, err := producerTelemetry()
	if err != nil {
		return err
	}
	pub, err := bus.NewPublisher(ctx, cl, bench.reg, bus.Source("/bench"), bus.Types(t), bus.Telemetry(prod))
	if err != nil {
		return err
	}
	for i := 0; i < n; i += 1000 {
		evs := make([]any, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			evs = append(evs, &BenchOrder{
				OrderID:    fmt.Sprintf("0190b7a2-8c1e-7a3b-9f%02d-%012d", j%100, j),
				CustomerID: fmt.Sprintf("customer-%06d", j%500),
				SKU:        "SKU-ABCDEFGH-1234",
				Qty:        int32(j % 7),
				Cents:      int64(j * 137),
				Currency:   "EUR",
				PlacedAt:   time.Now().UnixMilli(),
				Note:       note,
			})
		}
		if err := pub.Publish(ctx, evs...); err != nil {
			return err
		}
	}
	return nil
}

// span measures from the first record to the last: wall time, and the
// CPU time of the whole process (consumer, broker and registry alike),
// which other load on the machine disturbs less.
type span struct {
	n                atomic.Int64
	first, end       atomic.Int64
	last, gap        atomic.Int64 // the latest record, the longest time between two
	cpuFirst, cpuEnd atomic.Int64
	want             int64
	done             chan struct{}
}

// newSpan measures want records.
func newSpan(want int) *span { return &span{want: int64(want), done: make(chan struct{})} }

func (s *span) record() {
	now := time.Now().UnixNano()
	if s.first.CompareAndSwap(0, now) {
		s.cpuFirst.Store(int64(cputime.Process()))
	}
	if prev := s.last.Swap(now); prev != 0 {
		for g := s.gap.Load(); now-prev > g && !s.gap.CompareAndSwap(g, now-prev); g = s.gap.Load() {
		}
	}
	if s.n.Add(1) == s.want {
		s.end.Store(now)
		s.cpuEnd.Store(int64(cputime.Process()))
		close(s.done)
	}
}

// longestGap is the longest time between two records: how long handling
// paused at most.
func (s *span) longestGap() time.Duration { return time.Duration(s.gap.Load()) }

func (s *span) elapsed() (wall, cpu time.Duration) {
	return time.Duration(s.end.Load() - s.first.Load()), time.Duration(s.cpuEnd.Load() - s.cpuFirst.Load())
}

// BenchmarkConsume consumes the same pre-produced records with a no-op
// evbus handler and with a bare franz-go group consumer that decodes each
// record with hamba/avro after the 5-byte prefix. One op consumes every
// record with a new group; records/s, ns/record and cpu-ns/record count
// from the first record to the last, leaving out joining and leaving the
// group. cpu-ns/record is the process's CPU time (the embedded broker's
// too) per record.
func BenchmarkConsume(b *testing.B) {
	benchSetup(b)
	b.Run("evbus", func(b *testing.B) { benchLoop(b, benchEvbus()) })
	b.Run("franz-go+hamba", func(b *testing.B) { benchLoop(b, benchRaw(benchPlaced, benchRecords)) })
	// Tracing on: the OpenTelemetry SDK, spans batched to an exporter that
	// drops them, metrics kept by a reader; every span sampled, then the
	// production setting, parent-based 1 % (the records carry the
	// producer's decision: 1 % of them sampled).
	b.Run("evbus+tracing", func(b *testing.B) {
		benchLoop(b, benchEvbus(consumer.Telemetry(tracefloor.Start(b, sdktrace.AlwaysSample()).Telemetry)))
	})
	b.Run("evbus+tracing-1pct", func(b *testing.B) {
		benchLoop(b, benchEvbus(consumer.Telemetry(tracefloor.Start(b, tracefloor.Ratio).Telemetry)))
	})
	// The floor: what the messaging conventions ask per record, on the same
	// SDK setup, with nothing of evbus and no Kafka around it.
	b.Run("sdk-floor", func(b *testing.B) { benchSDKFloor(b, sdktrace.AlwaysSample()) })
	b.Run("sdk-floor-1pct", func(b *testing.B) { benchSDKFloor(b, tracefloor.Ratio) })
}

// backlogPlaced keys every order alike: its records all lie on one
// partition of the topic's four.
var backlogPlaced = bus.Event[BenchOrder]("bench-backlog", func(*BenchOrder) string { return "one" }, bus.Namespace("com.example.bench"))

const backlogRecords = 100_000

var backlogOnce = sync.OnceValue(func() error {
	return fillBench(context.Background(), backlogPlaced, 4, backlogRecords, strings.Repeat("gift wrap, leave at the door ", 3))
})

// BenchmarkConsumeBacklog reads a backlog of one partition beside three
// idle ones, as BenchmarkConsume does: the case where back-pressure must
// not make the backlog wait for fetches of the idle partitions.
func BenchmarkConsumeBacklog(b *testing.B) {
	benchSetup(b)
	if err := backlogOnce(); err != nil {
		b.Fatal(err)
	}
	b.Run("evbus", func(b *testing.B) { benchLoop(b, benchEvbusOf(backlogPlaced, backlogRecords)) })
	b.Run("franz-go+hamba", func(b *testing.B) { benchLoop(b, benchRaw(backlogPlaced, backlogRecords)) })
}

// producerTelemetry is the producing service's: 1 % of its traces sampled,
// so the records carry a traceparent, sampled or not.
func producerTelemetry() (*tracing.Telemetry, error) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tracefloor.Ratio))
	return tracing.New(tracing.TracerProvider(tp), tracing.Propagator(propagation.TraceContext{}))
}

// benchSDKFloor does per record what the messaging conventions ask of a
// consumer, straight on the SDK (tracefloor.SDK.Process), to records like
// the benchmark's (a producer's traceparent among their headers) built
// beforehand. No Kafka: cpu-ns/record is the SDK's cost.
func benchSDKFloor(b *testing.B, sampler sdktrace.Sampler) {
	benchSetup(b)
	sdk := tracefloor.Start(b, sampler)
	ctx := context.Background()
	prod, err := producerTelemetry()
	if err != nil {
		b.Fatal(err)
	}
	enc, err := bus.NewEncoder(ctx, bench.reg, bus.Source("/bench"), bus.Types(benchPlaced))
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, 1024)
	for i := range recs {
		if recs[i], err = enc.Record(ctx, &BenchOrder{OrderID: fmt.Sprint(i), CustomerID: fmt.Sprintf("customer-%06d", i%500), Note: "gift wrap"}); err != nil {
			b.Fatal(err)
		}
		_, span := (*telemetry.T)(prod).Publish(ctx, recs[i])
		span.End()
		recs[i].Partition, recs[i].Offset = int32(i%3), int64(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		sdk.Process(ctx, recs[i&1023], "bench")
	}
	b.StopTimer()
	reportPerRecord(b, float64(b.N), b.Elapsed(), cputime.Process()-cpu0)
}

// reportPerRecord reports the throughput and the wall and CPU time per
// record of records handled in wall and cpu.
func reportPerRecord(b *testing.B, records float64, wall, cpu time.Duration) {
	b.ReportMetric(records/wall.Seconds(), "records/s")
	b.ReportMetric(float64(wall.Nanoseconds())/records, "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/records, "cpu-ns/record")
}

func benchLoop(b *testing.B, consume func(b *testing.B, group string) *span) {
	var wall, cpu time.Duration
	var records float64
	for b.Loop() {
		s := consume(b, fmt.Sprintf("bench-%d", bench.groups.Add(1)))
		w, c := s.elapsed()
		wall += w
		cpu += c
		records += float64(s.want)
	}
	reportPerRecord(b, records, wall, cpu)
}

// benchEvbus returns the consume function of the evbus variants.
func benchEvbus(opts ...consumer.Option) func(b *testing.B, group string) *span {
	return benchEvbusOf(benchPlaced, benchRecords, opts...)
}

// benchEvbusOf is benchEvbus for the n records of t's topic.
func benchEvbusOf(t *bus.Type[BenchOrder], n int, opts ...consumer.Option) func(b *testing.B, group string) *span {
	return func(b *testing.B, group string) *span {
		c := benchConsumer(b, group, opts...)
		s := newSpan(n)
		consumer.Handle(c, t, func(context.Context, *BenchOrder, bus.Meta) error {
			s.record()
			return nil
		})
		return consumeAll(b, c, s)
	}
}

// benchConsumer returns a consumer of the benchmarks' stack, with opts.
func benchConsumer(b *testing.B, group string, opts ...consumer.Option) *consumer.Consumer {
	c, err := consumer.New(group, bench.reg, append([]consumer.Option{
		consumer.Kafka(kgo.SeedBrokers(bench.stack.Brokers()...)),
		consumer.Logger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// consumeAll runs c until s has seen all its records, then closes it.
func consumeAll(b *testing.B, c *consumer.Consumer, s *span) *span {
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	select {
	case <-s.done:
	case err := <-errc:
		b.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return s
}

// benchRaw consumes the n records of t's topic with a bare franz-go group
// consumer that decodes each record with hamba/avro after the prefix.
func benchRaw(t *bus.Type[BenchOrder], n int) func(b *testing.B, group string) *span {
	return func(b *testing.B, group string) *span {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bench.stack.Brokers()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(t.Descriptor().Topic()))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		s := newSpan(n)
		ctx := context.Background()
		for s.n.Load() < int64(n) {
			fs := cl.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				b.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				var ev BenchOrder
				if err := avro.Unmarshal(bench.schema, r.Value[5:], &ev); err != nil {
					b.Fatal(err)
				}
				s.record()
			})
		}
		return s
	}
}
