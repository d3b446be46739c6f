package bus_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/tracing"
)

func TestPublishSpanContinuesTheCallersTrace(t *testing.T) {
	e := setup(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	tel, err := tracing.New(tracing.TracerProvider(tp), tracing.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		tracing.Propagator(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	p := e.publisher(t, bus.Telemetry(tel))

	ctx, request := tp.Tracer("test").Start(t.Context(), "POST /orders")
	if err := p.Publish(ctx, OrderPlaced{OrderID: "o-7", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan bus.Result, 1)
	p.PublishAsync(ctx, &OrderShipped{OrderID: "o-7"}, func(r bus.Result) { done <- r })
	res := <-done
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	request.End()

	ended := spans.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans ended, want 2 publish spans and the request", len(ended))
	}
	recs := readAll(t, e.cl.OptValue(kgo.SeedBrokers).([]string), "orders", 2)
	for i, s := range ended[:2] {
		if s.Name() != "publish orders" || s.SpanKind() != trace.SpanKindProducer {
			t.Errorf("span %d: %q kind %v, want \"publish orders\" PRODUCER", i, s.Name(), s.SpanKind())
		}
		if s.Parent().SpanID() != request.SpanContext().SpanID() || s.SpanContext().TraceID() != request.SpanContext().TraceID() {
			t.Errorf("span %d is not a child of the request span", i)
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		for k, want := range map[string]string{
			"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation.type": "send",
			"messaging.kafka.message.key": "o-7",
		} {
			if attrs[k] != want {
				t.Errorf("span %d: %s = %q, want %q", i, k, attrs[k], want)
			}
		}
		for _, k := range []string{"messaging.message.id", "messaging.destination.partition.id", "messaging.kafka.offset"} {
			if attrs[k] == "" {
				t.Errorf("span %d: no %s", i, k)
			}
		}
		// The record carries the publish span's context, for the consumer.
		id := attrs["messaging.message.id"]
		var rec *kgo.Record
		for _, r := range recs {
			if v, _ := header(r, bus.HeaderID); v == id {
				rec = r
			}
		}
		if rec == nil {
			t.Fatalf("span %d: no record with ce_id %s", i, id)
		}
		got := trace.SpanContextFromContext((*telemetry.T)(tel).Extract(context.Background(), rec))
		if got.SpanID() != s.SpanContext().SpanID() {
			t.Errorf("span %d: the record's traceparent names span %v, want the publish span %v", i, got.SpanID(), s.SpanContext().SpanID())
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					got[m.Name] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					got[m.Name] += int64(dp.Count)
				}
			}
		}
	}
	if got["messaging.client.sent.messages"] != 2 || got["messaging.client.operation.duration"] != 2 || got["evbus.publish.bytes"] < 2*100 {
		t.Errorf("metrics after two events: %v", got)
	}
}
