// Package tracefloor holds what the benchmarks of evbus's tracing measure
// against: an OpenTelemetry SDK set up the same way for every variant, and
// the per-record work the messaging conventions ask for, written straight
// on the SDK with nothing of evbus around it (the floor evbus's tracing
// cannot go below with the same span contents).
package tracefloor

import (
	"context"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// Ratio is the production sampler measured: 1 % of the traces, decided
// where a trace starts and followed by every span after.
var Ratio = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))

// SDK is an OpenTelemetry SDK: spans sampled by the sampler and batched to
// an exporter that drops them, metrics kept by a reader that is never
// read, W3C trace context.
type SDK struct {
	Provider   *sdktrace.TracerProvider
	Telemetry  *tracing.Telemetry // evbus's, on this SDK
	Hooks      *telemetry.T       // the same, as evbus's packages call it
	Tracer     trace.Tracer       // the floor's
	Propagator propagation.TextMapPropagator
}

// Start returns an SDK sampling with sampler for a benchmark or test: it
// fails tb when the SDK cannot be set up, and shuts the SDK down when tb
// ends.
func Start(tb testing.TB, sampler sdktrace.Sampler) *SDK {
	tb.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sampler))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	prop := propagation.TraceContext{}
	tel, err := tracing.New(tracing.TracerProvider(tp), tracing.Propagator(prop),
		tracing.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))))
	if err != nil {
		tb.Fatal(err)
	}
	return &SDK{Provider: tp, Telemetry: tel, Hooks: (*telemetry.T)(tel), Tracer: tp.Tracer("floor"), Propagator: prop}
}

// Publish does for one record what the conventions ask of a producer:
// start the "publish <topic>" span with its attributes, inject its context
// into the record's headers, add partition and offset (known once Kafka
// answered; here the record's), end it.
func (s *SDK) Publish(ctx context.Context, rec *kgo.Record) {
	ctx, span := s.Tracer.Start(ctx, "publish "+rec.Topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		semconv.MessagingSystemKafka, semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("publish"), semconv.MessagingDestinationName(rec.Topic),
		semconv.MessagingKafkaMessageKey(string(rec.Key)), semconv.MessagingMessageID(id(rec)),
	))
	s.Propagator.Inject(ctx, carrier{rec})
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))), semconv.MessagingKafkaOffset(int(rec.Offset)))
	}
	span.End()
}

// Process does for one record what the conventions ask of a consumer:
// extract the producer's context from the headers, start the
// "process <topic>" span with its attributes, set the outcome, end it.
func (s *SDK) Process(ctx context.Context, rec *kgo.Record, group string) {
	ctx = s.Propagator.Extract(ctx, carrier{rec})
	_, span := s.Tracer.Start(ctx, "process "+rec.Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		semconv.MessagingSystemKafka, semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"), semconv.MessagingDestinationName(rec.Topic),
		semconv.MessagingConsumerGroupName(group),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(int(rec.Partition))), semconv.MessagingKafkaOffset(int(rec.Offset)),
		semconv.MessagingKafkaMessageKey(string(rec.Key)), semconv.MessagingMessageID(id(rec)),
	))
	if span.IsRecording() {
		span.SetAttributes(tracing.OutcomeKey.String(tracing.OutcomeOK))
	}
	span.End()
}

func id(rec *kgo.Record) string { return carrier{rec}.Get(wire.HeaderID) }

// carrier is the plainest propagation carrier over a record's headers.
type carrier struct{ r *kgo.Record }

func (c carrier) Get(key string) string {
	for _, h := range c.r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c carrier) Set(key, value string) {
	c.r.Headers = append(c.r.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

func (c carrier) Keys() []string { return nil }
