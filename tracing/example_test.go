package tracing_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/evbus/evbus/tracing"
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
