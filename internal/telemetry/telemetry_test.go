package telemetry_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/wire"
)

func record() *kgo.Record {
	return &kgo.Record{Topic: "orders", Key: []byte("o-1"), Value: []byte{0, 0, 0, 0, 1},
		Headers: []kgo.RecordHeader{{Key: wire.HeaderID, Value: []byte("id-1")}}}
}

// enqueued returns a record carrying the context of a request's span, as
// Enqueue writes it into the row's headers, and the span (ended).
func enqueued(tel *telemetry.T, tp trace.TracerProvider) (*kgo.Record, trace.Span) {
	reqCtx, req := tp.Tracer("t").Start(context.Background(), "POST /orders")
	rec := record()
	tel.Inject(reqCtx, rec)
	req.End()
	return rec, req
}

// A Telemetry on the global provider records nothing until the service
// installs an SDK, and everything after, without being made again; one
// made after the SDK was installed records and continues traces too.
// (One test: otel's global provider hands over to the first SDK
// installed only, so a second test installing its own would see the
// first one's.)
func TestGlobalProvider(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	tel, err := telemetry.New(telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Publish(context.Background(), record())
	if span.SpanContext().IsValid() {
		t.Fatal("a span was started with no SDK installed")
	}
	tel.Published(context.Background(), span, record(), time.Now(), nil)

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	rec := record()
	_, span = tel.Publish(context.Background(), rec)
	tel.Published(context.Background(), span, rec, time.Now(), nil)
	if n := len(spans.Ended()); n != 1 {
		t.Fatalf("%d spans after installing the SDK, want 1", n)
	}
	if got := trace.SpanContextFromContext(tel.Extract(context.Background(), rec)); got.SpanID() != spans.Ended()[0].SpanContext().SpanID() {
		t.Fatal("the record does not carry the publish span's context")
	}
	// The process span continues the record's trace: Process extracts
	// with the propagator installed after New.
	_, span = tel.Process(context.Background(), rec, "billing", false)
	tel.Settled(context.Background(), span, tel.Outcomes(rec.Topic, "billing"), telemetry.OutcomeOK, nil)
	if got := span.(sdktrace.ReadOnlySpan).Parent(); got.SpanID() != spans.Ended()[0].SpanContext().SpanID() {
		t.Fatalf("the process span's parent is %v, want the publish span", got.SpanID())
	}

	// Made after the SDK was installed.
	before := len(spans.Ended())
	tel, err = telemetry.New(telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec, req := enqueued(tel, tp)
	_, span = tel.Process(context.Background(), rec, "billing", false)
	tel.Settled(context.Background(), span, tel.Outcomes(rec.Topic, "billing"), telemetry.OutcomeOK, nil)
	ended := spans.Ended()[before:]
	if len(ended) != 2 {
		t.Fatalf("%d spans ended, want 2 (the request's and the process span)", len(ended))
	}
	if got := ended[1].Parent(); got.SpanID() != req.SpanContext().SpanID() {
		t.Fatalf("the process span's parent is %v, want the request's span", got.SpanID())
	}
}

// The relay's publish span continues the trace of the span that enqueued
// the row: as its child by default, linked with LinkRelay.
func TestRelaySpanChildOrLink(t *testing.T) {
	for _, link := range []bool{false, true} {
		spans := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
		tel, err := telemetry.New(telemetry.Config{TracerProvider: tp, Propagator: propagation.TraceContext{}, LinkRelay: link})
		if err != nil {
			t.Fatal(err)
		}
		rec, req := enqueued(tel, tp)

		// The relay, later, with a context of its own.
		_, span := tel.Relay(context.Background(), rec)
		tel.Published(context.Background(), span, rec, time.Now(), nil)
		got := spans.Ended()[1]
		sameTrace := got.SpanContext().TraceID() == req.SpanContext().TraceID()
		child := got.Parent().SpanID() == req.SpanContext().SpanID()
		linked := len(got.Links()) == 1 && got.Links()[0].SpanContext.SpanID() == req.SpanContext().SpanID()
		if !link && (!sameTrace || !child || linked) {
			t.Errorf("default: same trace %v, child %v, linked %v; want a child", sameTrace, child, linked)
		}
		if link && (sameTrace || child || !linked) {
			t.Errorf("LinkRelay: same trace %v, child %v, linked %v; want a new trace linked to the request", sameTrace, child, linked)
		}
		if got := trace.SpanContextFromContext(tel.Extract(context.Background(), rec)); got.SpanID() != spans.Ended()[1].SpanContext().SpanID() {
			t.Error("the record sent does not carry the relay's publish span")
		}
	}
}

// The counters count each record once under its attribute set (failed
// sends apart, with error.type), and report running totals: collecting
// twice does not count twice.
func TestCounters(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tel, err := telemetry.New(telemetry.Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		TracerProvider: sdktrace.NewTracerProvider(), Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, err := range []error{nil, nil, errors.New("broker down")} {
		rec := record()
		_, span := tel.Publish(ctx, rec)
		tel.Published(ctx, span, rec, time.Now(), err)
	}
	_, span := tel.Process(ctx, record(), "billing", false)
	outcomes := tel.Outcomes("orders", "billing")
	tel.Retried(ctx, outcomes)
	tel.Settled(ctx, span, outcomes, telemetry.OutcomeOK, nil)

	want := map[string]int64{
		"messaging.client.sent.messages":        2,
		"messaging.client.sent.messages/_OTHER": 1,
		"evbus.publish.bytes":                   2 * int64(len("o-1")+5+len("ce_id")+len("id-1")+len("traceparent")+55),
		"evbus.consumer.events/billing/ok":      1,
		"evbus.consumer.events/billing/retried": 1,
	}
	for range 2 {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				sum, ok := m.Data.(metricdata.Sum[int64])
				if !ok {
					continue
				}
				for _, dp := range sum.DataPoints {
					name := m.Name
					if v, ok := dp.Attributes.Value("error.type"); ok {
						name += "/" + v.AsString()
					}
					if v, ok := dp.Attributes.Value("messaging.consumer.group.name"); ok {
						name += "/" + v.AsString()
					}
					if v, ok := dp.Attributes.Value(telemetry.OutcomeKey); ok {
						name += "/" + v.AsString()
					}
					got[name] += dp.Value
				}
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("counters %v, want %v", got, want)
		}
	}
}

// With a ParentBased sampler, a consumer's process span follows the
// decision the record's traceparent carries: a sampled producer's record
// gets a recording span, an unsampled one a span that records nothing.
func TestProcessFollowsTheProducersSampling(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	tel, err := telemetry.New(telemetry.Config{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := tel.Outcomes("orders", "billing")
	for _, sampled := range []bool{true, false} {
		flags := map[bool]string{true: "01", false: "00"}[sampled]
		rec := &kgo.Record{Topic: "orders", Headers: []kgo.RecordHeader{
			{Key: wire.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags)}}}
		ctx, span := tel.Process(context.Background(), rec, "billing", false)
		if span.IsRecording() != sampled {
			t.Errorf("producer sampled %v: process span recording %v", sampled, span.IsRecording())
		}
		tel.Settled(ctx, span, outcomes, telemetry.OutcomeOK, nil)
	}
}

// A package's Telemetry option left out takes Default; given nil, its
// constructor's error names the option and the fix.
func TestChoice(t *testing.T) {
	var c telemetry.Choice
	if got, err := c.Resolve("bus"); got != telemetry.Default() || err != nil {
		t.Fatalf("no option: %p, %v; want Default", got, err)
	}
	c.Set(nil)
	if _, err := c.Resolve("bus"); err == nil || err.Error() != "bus: Telemetry(nil): pass one from tracing.New, or leave the option out (tracing.Default())" {
		t.Fatalf("Telemetry(nil): %v", err)
	}
	tel, err := telemetry.New(telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c.Set(tel)
	if got, err := c.Resolve("bus"); got != tel || err != nil {
		t.Fatalf("Telemetry(t): %p, %v; want t", got, err)
	}
}
