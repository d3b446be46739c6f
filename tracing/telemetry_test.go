package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// Each option of New reaches the Telemetry evbus's packages use: spans
// go to the tracer provider, metrics to the meter provider, context into
// headers through the propagator, and the link options change how the
// relay's and the consumer's spans continue a trace.
func TestOptions(t *testing.T) {
	for _, link := range []bool{false, true} {
		var opts []tracing.Option
		if link {
			opts = append(opts, tracing.LinkRelay(), tracing.LinkConsumers())
		}
		o := testkit.NewOTel(t, opts...) // TracerProvider, MeterProvider, Propagator
		hooks := (*telemetry.T)(o.Telemetry)
		ctx := context.Background()
		rec := &kgo.Record{Topic: "orders"}
		hooks.Create(ctx, rec) // the outbox's span, its context in rec's headers
		if _, ok := testkit.Header(rec.Headers, wire.HeaderTraceParent); !ok {
			t.Fatalf("headers %v: the propagator wrote no traceparent", rec.Headers)
		}
		_, span := hooks.Relay(ctx, rec)
		hooks.Published(ctx, span, rec, time.Now(), nil)
		pctx, span := hooks.Process(ctx, rec, "billing", false)
		hooks.Settled(pctx, span, hooks.Outcomes(rec.Topic, "billing"), telemetry.OutcomeOK, nil)

		ended := o.Spans.Ended()
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
		if got := testkit.Counts(t, o.Reader); got["messaging.client.sent.messages"] != 1 || got["evbus.consumer.events/ok"] != 1 {
			t.Errorf("metrics %v: the meter provider got no counts", got)
		}
	}
}

// Default is the Telemetry evbus's packages take when given none.
func TestDefault(t *testing.T) {
	if (*telemetry.T)(tracing.Default()) != telemetry.Default() {
		t.Fatal("tracing.Default is not the packages' default")
	}
}
