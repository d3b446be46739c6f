package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/tracing"
)

// Each option of New reaches the Telemetry evbus's packages use: spans
// go to the tracer provider, metrics to the meter provider, context into
// headers through the propagator, and the link options change how the
// relay's and the consumer's spans continue a trace.
func TestOptions(t *testing.T) {
	for _, link := range []bool{false, true} {
		spans := tracetest.NewSpanRecorder()
		reader := sdkmetric.NewManualReader()
		opts := []tracing.Option{
			tracing.TracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))),
			tracing.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
			tracing.Propagator(propagation.TraceContext{}),
		}
		if link {
			opts = append(opts, tracing.LinkRelay(), tracing.LinkConsumers())
		}
		tel, err := tracing.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		hooks := (*telemetry.T)(tel)
		ctx := context.Background()
		rec := &kgo.Record{Topic: "orders"}
		hooks.Create(ctx, rec) // the outbox's span, its context in rec's headers
		if len(rec.Headers) != 1 || rec.Headers[0].Key != "traceparent" {
			t.Fatalf("headers %v: the propagator wrote no traceparent", rec.Headers)
		}
		_, span := hooks.Relay(ctx, rec)
		hooks.Published(ctx, span, rec, time.Now(), nil)
		pctx, span := hooks.Process(ctx, rec, "billing", false)
		hooks.Settled(pctx, span, hooks.Outcomes(rec.Topic, "billing"), telemetry.OutcomeOK, nil)

		ended := spans.Ended()
		if len(ended) != 3 {
			t.Fatalf("%d spans, want create, publish and process", len(ended))
		}
		for i, s := range ended[1:] {
			prev := ended[i].SpanContext()
			child := s.Parent().SpanID() == prev.SpanID()
			linked := len(s.Links()) == 1 && s.Links()[0].SpanContext.SpanID() == prev.SpanID()
			if child == link || linked != link {
				t.Errorf("links %v: %s: child of %s %v, linked %v", link, s.Name(), ended[i].Name(), child, linked)
			}
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				names[m.Name] = true
			}
		}
		if !names["messaging.client.sent.messages"] || !names["evbus.consumer.events"] {
			t.Errorf("metrics %v: the meter provider got no counts", names)
		}
	}
}

// Default is the Telemetry evbus's packages take when given none.
func TestDefault(t *testing.T) {
	if (*telemetry.T)(tracing.Default()) != telemetry.Default() {
		t.Fatal("tracing.Default is not the packages' default")
	}
}
