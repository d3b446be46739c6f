//go:build unix

package bus_test

// Publish throughput of evbus against what a user would hand-roll with
// franz-go and hamba/avro, on one in-process kfake broker that discards
// what it is sent (kfake.BlackholeProduce), so the broker is not the
// bottleneck and the figures show the client side: encoding, framing,
// headers and the producer.
//
// Run (the machine is shared, so many counts and benchstat):
//
//	go test ./bus -run '^$' -bench BenchmarkPublish -benchmem -benchtime 200000x -count 10 | tee /tmp/bus.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl /tmp/bus.txt
//
// A fixed -benchtime gives every variant and run the same work (the same
// number of producer batches and GC cycles). See BENCHMARKS.md.
//
// No timing is asserted anywhere: the figures are for people to read.
// Besides records/s (wall clock) each variant reports cpu-ns/record: the
// CPU time of the whole process (producer, in-process broker, GC) per
// record, from getrusage, which moves less than wall time when other work
// shares the machine. The file is unix-only for getrusage.

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/internal/tracefloor"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

type benchOrder = testkit.BenchOrder

const benchOrderAvsc = testkit.BenchOrderSchema

const benchTopic = "bench-orders"

var benchOrderPlaced = bus.Event[benchOrder](benchTopic, func(o *benchOrder) string { return o.OrderID }, bus.Schema(benchOrderAvsc))

// benchEvents returns n distinct events (distinct keys, so every partition
// gets records).
func benchEvents(n int) []*benchOrder {
	note := strings.Repeat("gift wrap, leave at the door ", 4)[:110]
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	evs := make([]*benchOrder, n)
	for i := range evs {
		evs[i] = &benchOrder{
			OrderID:    fmt.Sprintf("0190b7a2-8c1e-7a3b-9f%02d-%012d", i%100, i),
			CustomerID: fmt.Sprintf("customer-%06d", i%500),
			SKU:        "SKU-ABCDEFGH-1234",
			Qty:        int32(1 + i%7),
			Cents:      int64(1000 + i*137),
			Currency:   "EUR",
			PlacedAt:   at.Add(time.Duration(i) * time.Millisecond),
			Note:       note,
		}
	}
	return evs
}

// publishBench is one broker and registry for every variant of a run.
type publishBench struct {
	brokers  []string
	reg      *schema.Registry
	schemaID int
	avro     avro.Schema // the same schema, parsed by hamba for the baselines
	events   []*benchOrder
}

func startPublishBench(b *testing.B) *publishBench {
	b.Helper()
	// The registry of the dev stack (its own broker sits idle) and a
	// separate broker that acknowledges produce requests without storing.
	stack, err := devstack.Start(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stack.Close() })
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, benchTopic), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(kafka.Close)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	d := benchOrderPlaced.Descriptor()
	w, err := reg.Writer(b.Context(), d.Topic(), d.Schema())
	if err != nil {
		b.Fatal(err)
	}
	s, err := avro.Parse(benchOrderAvsc)
	if err != nil {
		b.Fatal(err)
	}
	pb := &publishBench{brokers: kafka.ListenAddrs(), reg: reg, schemaID: w.ID, avro: s, events: benchEvents(1024)}

	// The two paths must put the same value bytes on the wire.
	c, err := codec.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := c.Encoder(w.ID, d.Schema(), d.Schema())
	if err != nil {
		b.Fatal(err)
	}
	viaCodec, err := enc.AppendEncode(nil, pb.events[0])
	if err != nil {
		b.Fatal(err)
	}
	if byHand := pb.handValue(pb.events[0]); string(viaCodec) != string(byHand) {
		b.Fatalf("evbus and hamba encode differently:\n%x\n%x", viaCodec, byHand)
	}
	b.Logf("framed value: %d bytes", len(viaCodec))
	pb.warmUp(b)
	return pb
}

// warmUp publishes records the baseline's way before any variant is
// timed: the variant that runs first in a process otherwise pays for the
// heap, the GC pacer and the broker's connection warming up (15-25 %
// CPU per record on the machine of BENCHMARKS.md section 1), which
// misreads a ratio of variants run one after the other.
func (pb *publishBench) warmUp(b *testing.B) {
	cl := pb.client(b)
	for i := range 200_000 {
		ev := pb.events[i&1023]
		cl.Produce(b.Context(), &kgo.Record{Topic: benchTopic, Key: []byte(ev.OrderID), Value: pb.handValue(ev)}, nil)
	}
	if err := cl.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	cl.Close()
}

// client returns a producer with franz-go's defaults (idempotent, acks=all,
// 10ms linger), connected and warmed up by one record.
func (pb *publishBench) client(b *testing.B) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(pb.brokers...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	if err := cl.ProduceSync(b.Context(), &kgo.Record{Topic: benchTopic, Value: []byte("warm-up")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	return cl
}

// handValue is the baseline's encoding: avro.Marshal, then the Confluent
// prefix (magic byte 0, schema id big-endian) in front of it.
func (pb *publishBench) handValue(ev *benchOrder) []byte {
	body, err := avro.Marshal(pb.avro, ev)
	if err != nil {
		panic(err)
	}
	v := make([]byte, 5+len(body))
	binary.BigEndian.PutUint32(v[1:5], uint32(pb.schemaID))
	copy(v[5:], body)
	return v
}

// benchStart resets the benchmark timer and returns the CPU time at the
// start, for benchReport.
func benchStart(b *testing.B) time.Duration {
	b.ReportAllocs()
	b.ResetTimer()
	return cputime.Process()
}

// benchReport stops the timer, checks that nothing failed and adds records/s
// and cpu-ns/record.
func benchReport(b *testing.B, cpu0 time.Duration, failed *atomic.Int64) {
	b.Helper()
	b.StopTimer()
	cpu := cputime.Process() - cpu0
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}

// sdkFloor does per record what the messaging conventions ask of a
// producer, straight on the SDK (tracefloor.SDK.Publish), to evbus's
// records built beforehand. No Kafka: cpu-ns/record is the SDK's cost.
func (pb *publishBench) sdkFloor(b *testing.B, sampler sdktrace.Sampler) {
	sdk := tracefloor.Start(b, sampler)
	enc, err := bus.NewEncoder(b.Context(), pb.reg, bus.Source("/orders-service"), bus.Types(benchOrderPlaced))
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, len(pb.events))
	for i, ev := range pb.events {
		if recs[i], err = enc.Record(b.Context(), ev); err != nil {
			b.Fatal(err)
		}
		recs[i].Partition, recs[i].Offset = int32(i%3), int64(i)
	}
	n := len(recs[0].Headers)
	ctx := context.Background()
	var failed atomic.Int64
	cpu0 := benchStart(b)
	for i := 0; i < b.N; i++ {
		rec := recs[i&1023]
		rec.Headers = rec.Headers[:n]
		sdk.Publish(ctx, rec)
	}
	benchReport(b, cpu0, &failed)
}

// BenchmarkPublish produces b.N events asynchronously (as many in flight
// as the producer buffers), then flushes; the timer includes the flush.
//
//	impl=evbus              bus.Publisher.PublishAsync: Avro + prefix + CloudEvents headers
//	impl=franz-go+hamba     Produce with avro.Marshal + prefix, no headers
//	impl=franz-go+hamba+ce  the same plus the same headers built by hand
func BenchmarkPublish(b *testing.B) {
	pb := startPublishBench(b)

	// Each run (the testing package calls a benchmark function again for
	// each b.N it tries) makes its own client; the run's cleanups close it.
	evbus := func(b *testing.B, opts ...bus.PublisherOption) {
		p, err := bus.NewPublisher(b.Context(), pb.client(b), pb.reg, append([]bus.PublisherOption{bus.Source("/orders-service"), bus.Types(benchOrderPlaced)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var failed atomic.Int64
		done := func(r bus.PublishResult) {
			if r.Err != nil {
				failed.Add(1)
			}
		}
		cpu0 := benchStart(b)
		for i := 0; i < b.N; i++ {
			p.PublishAsync(ctx, pb.events[i&1023], done)
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		benchReport(b, cpu0, &failed)
	}
	b.Run("impl=evbus", func(b *testing.B) { evbus(b) })
	// Tracing on: the OpenTelemetry SDK, spans batched to an exporter that
	// drops them, metrics kept by a reader; every span sampled, then the
	// production setting of 1 % of the traces (parent-based, so the
	// publish spans of a sampled request are always kept).
	b.Run("impl=evbus+tracing", func(b *testing.B) {
		evbus(b, bus.Telemetry(tracefloor.Start(b, sdktrace.AlwaysSample()).Telemetry))
	})
	b.Run("impl=evbus+tracing-1pct", func(b *testing.B) {
		evbus(b, bus.Telemetry(tracefloor.Start(b, tracefloor.Ratio).Telemetry))
	})
	// The floor: what the messaging conventions ask per record, on the same
	// SDK setup, with nothing of evbus and no Kafka around it. Its
	// cpu-ns/record is the SDK's own cost per record, to set against evbus's
	// per-record cost without tracing.
	b.Run("impl=sdk-floor", func(b *testing.B) { pb.sdkFloor(b, sdktrace.AlwaysSample()) })
	b.Run("impl=sdk-floor-1pct", func(b *testing.B) { pb.sdkFloor(b, tracefloor.Ratio) })

	b.Run("impl=franz-go+hamba", func(b *testing.B) {
		pb.handRolled(b, func(ev *benchOrder) *kgo.Record {
			return &kgo.Record{Topic: benchTopic, Key: []byte(ev.OrderID), Value: pb.handValue(ev)}
		})
	})

	b.Run("impl=franz-go+hamba+ce", func(b *testing.B) {
		var (
			specVersion = []byte(wire.SpecVersion)
			source      = []byte("/orders-service")
			ceType      = []byte("com.example.bench.OrderPlaced")
			contentType = []byte(wire.ContentType)
		)
		pb.handRolled(b, func(ev *benchOrder) *kgo.Record {
			id, err := uuid.NewV7()
			if err != nil {
				b.Fatal(err)
			}
			idText := []byte(id.String())
			key := []byte(ev.OrderID)
			return &kgo.Record{
				Topic: benchTopic,
				Key:   key,
				Value: pb.handValue(ev),
				Headers: []kgo.RecordHeader{
					{Key: wire.HeaderSpecVersion, Value: specVersion},
					{Key: wire.HeaderID, Value: idText},
					{Key: wire.HeaderSource, Value: source},
					{Key: wire.HeaderType, Value: ceType},
					{Key: wire.HeaderTime, Value: time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)},
					{Key: wire.HeaderContentType, Value: contentType},
					{Key: wire.HeaderSubject, Value: key},
					{Key: wire.HeaderCorrelationID, Value: idText},
				},
			}
		})
	})
}

// handRolled is a baseline: it produces b.N records that record builds
// straight on franz-go, then flushes; the timer includes the flush.
func (pb *publishBench) handRolled(b *testing.B, record func(*benchOrder) *kgo.Record) {
	cl := pb.client(b)
	ctx := context.Background()
	var failed atomic.Int64
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	cpu0 := benchStart(b)
	for i := 0; i < b.N; i++ {
		cl.Produce(ctx, record(pb.events[i&1023]), done)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	benchReport(b, cpu0, &failed)
}
