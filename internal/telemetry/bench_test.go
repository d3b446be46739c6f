package telemetry_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/internal/tracefloor"
	"github.com/evbus/evbus/wire"
)

// BenchmarkRecord is the tracing work of one record, without Kafka: what
// evbus's publisher (Publish, Published) and consumer (Process, Handled,
// Settled) call per record, next to the floor, the same span contents
// written straight on the SDK (internal/tracefloor). One op is one record.
// op=process/tracing=off is the consumer's calls with tracing off (the
// global no-op providers, the default).
//
//	go test ./internal/telemetry -run '^$' -bench Record -benchmem -count 6
func BenchmarkRecord(b *testing.B) {
	samplers := []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"always", sdktrace.AlwaysSample()}, {"1pct", tracefloor.Ratio}}
	// The consumer's records carry a producer's traceparent, 1 % sampled.
	prod, err := telemetry.New(telemetry.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(tracefloor.Ratio)),
		Propagator: propagation.TraceContext{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	recs := make([]*kgo.Record, 1024)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "orders", Key: []byte("customer-000123"), Value: make([]byte, 200), Partition: int32(i % 3), Offset: int64(i),
			Headers: make([]kgo.RecordHeader, 8, 10)}
		recs[i].Headers[1] = kgo.RecordHeader{Key: wire.HeaderID, Value: []byte("0190b7a2-8c1e-7a3b-9f00-000000000001")}
	}
	for _, s := range samplers {
		b.Run("op=publish/sampler="+s.name, func(b *testing.B) {
			sdk := tracefloor.Start(b, s.sampler)
			b.Run("impl=evbus", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					rec := recs[i&1023]
					rec.Headers = rec.Headers[:8]
					start := time.Now()
					sctx, span := sdk.Hooks.Publish(ctx, rec)
					sdk.Hooks.Published(sctx, span, rec, start, nil)
				}
			})
			b.Run("impl=sdk-floor", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					rec := recs[i&1023]
					rec.Headers = rec.Headers[:8]
					sdk.Publish(ctx, rec)
				}
			})
		})
	}
	for i, rec := range recs {
		rec.Headers = rec.Headers[:8]
		_, span := prod.Publish(ctx, rec)
		span.End()
		recs[i] = rec
	}
	// Tracing off: the global no-op providers and propagator, the default.
	b.Run("op=process/tracing=off", func(b *testing.B) { processLoop(b, telemetry.Default(), recs) })
	for _, s := range samplers {
		b.Run("op=process/sampler="+s.name, func(b *testing.B) {
			sdk := tracefloor.Start(b, s.sampler)
			b.Run("impl=evbus", func(b *testing.B) { processLoop(b, sdk.Hooks, recs) })
			b.Run("impl=sdk-floor", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					sdk.Process(ctx, recs[i&1023], "billing")
				}
			})
		})
	}
}

// processLoop runs tel's hooks for each record as the consumer does for a
// handled record: Process, Handled when Timed, Settled.
func processLoop(b *testing.B, tel *telemetry.T, recs []*kgo.Record) {
	ctx := context.Background()
	b.ReportAllocs()
	outcomes := tel.Outcomes(recs[0].Topic, "billing")
	for i := 0; b.Loop(); i++ {
		pctx, span := tel.Process(ctx, recs[i&1023], "billing", false)
		if tel.Timed(pctx) {
			tel.Handled(pctx, outcomes, time.Now(), nil)
		}
		tel.Settled(pctx, span, outcomes, telemetry.OutcomeOK, nil)
	}
}
