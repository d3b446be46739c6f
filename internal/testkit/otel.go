package testkit

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/evbus/evbus/tracing"
)

// OTel is an OpenTelemetry SDK that keeps every span and metric for a test
// to read, and the Telemetry on it.
type OTel struct {
	Telemetry *tracing.Telemetry
	Provider  *sdktrace.TracerProvider
	Spans     *tracetest.SpanRecorder
	Reader    *sdkmetric.ManualReader
}

// NewOTel returns an SDK sampling every span, with W3C trace context and
// baggage; opts go to tracing.New after those.
func NewOTel(tb testing.TB, opts ...tracing.Option) *OTel {
	tb.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	tel, err := tracing.New(append([]tracing.Option{tracing.TracerProvider(tp),
		tracing.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		tracing.Propagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return &OTel{Telemetry: tel, Provider: tp, Spans: spans, Reader: reader}
}

// Named returns the ended spans called name.
func (o *OTel) Named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range o.Spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attrs returns a span's attributes as text.
func Attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes() {
		m[string(a.Key)] = a.Value.Emit()
	}
	return m
}

// Collect returns the metrics reader has now.
func Collect(tb testing.TB, reader *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	tb.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		tb.Fatal(err)
	}
	return rm
}

// Counts collects reader's metrics and returns, by metric name, the sum
// of a counter's points, a histogram's count of measurements, an integer
// gauge's value; and the same by "name/value" for the points that carry
// one of evbus's attributes (tracing.OutcomeKey, tracing.CacheKey).
func Counts(tb testing.TB, reader *sdkmetric.ManualReader) map[string]int64 {
	tb.Helper()
	got := map[string]int64{}
	add := func(name string, attrs attribute.Set, n int64) {
		got[name] += n
		for _, k := range []attribute.Key{tracing.OutcomeKey, tracing.CacheKey} {
			if v, ok := attrs.Value(k); ok {
				got[name+"/"+v.AsString()] += n
			}
		}
	}
	for _, sm := range Collect(tb, reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes, dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes, dp.Value)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes, int64(dp.Count))
				}
			}
		}
	}
	return got
}
