package tracing_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/tracing"
)

// A Telemetry on an SDK, sampling 1 % of the traces where they start
// (the production setting); pass it to the publisher (bus.Telemetry), the
// consumer (consumer.Telemetry), the outbox (outbox.Telemetry) and the
// registry client (schema.Telemetry). Without one they use the global
// providers.
func ExampleNew() {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	tel, err := tracing.New(tracing.TracerProvider(tp),
		tracing.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		tracing.Propagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The registry client reports its lookups on tel's meter.
	if _, err := schema.New("http://127.0.0.1:8081", schema.Telemetry(tel)); err != nil {
		fmt.Println(err)
		return
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		fmt.Println(m.Name)
	}
	// Output: evbus.registry.lookups
}
