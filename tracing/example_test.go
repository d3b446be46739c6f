package tracing_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// A Telemetry on an SDK; pass it to the publisher (bus.Telemetry), the
// consumer (consumer.Telemetry), the outbox (outbox.Telemetry) and the
// registry client (schema.Telemetry). Without one they use the global
// providers.
func ExampleNew() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	tel, err := tracing.New(tracing.TracerProvider(tp),
		tracing.Propagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := &kgo.Record{Topic: "orders", Key: []byte("o-1")}
	_, span := tel.Publish(context.Background(), rec)
	tel.Published(context.Background(), span, rec, spans.Started()[0].StartTime(), nil)
	fmt.Println(spans.Ended()[0].Name(), rec.Headers[0].Key)
	// Output: publish orders traceparent
}

// The production setting: 1 % of the traces, decided where a trace
// starts; a consumer's process span follows the decision the record's
// traceparent carries, and an unsampled record gets a span that records
// nothing.
func ExampleNew_sampling() {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
		sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	tel, err := tracing.New(tracing.TracerProvider(tp), tracing.Propagator(propagation.TraceContext{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	outcomes := tel.Outcomes("orders", "billing") // once per topic and group
	for _, flags := range []string{"01", "00"} {
		rec := &kgo.Record{Topic: "orders", Headers: []kgo.RecordHeader{
			{Key: wire.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags)}}}
		ctx, span := tel.Process(context.Background(), rec, "billing", false)
		fmt.Println("producer sampled:", flags == "01", "recording:", span.IsRecording())
		tel.Settled(ctx, span, outcomes, tracing.OutcomeOK, nil)
	}
	// Output:
	// producer sampled: true recording: true
	// producer sampled: false recording: false
}
