package bus_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/wire"
)

func TestPublishSpanContinuesTheCallersTrace(t *testing.T) {
	e := setup(t)
	o := testkit.NewOTel(t)
	p := e.publisher(t, bus.Telemetry(o.Telemetry))

	ctx, request := o.Provider.Tracer("test").Start(t.Context(), "POST /orders")
	if err := p.Publish(ctx, OrderPlaced{OrderID: "o-7", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan bus.PublishResult, 1)
	p.PublishAsync(ctx, &OrderShipped{OrderID: "o-7"}, func(r bus.PublishResult) { done <- r })
	res := <-done
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	request.End()

	ended := o.Spans.Ended()
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
		attrs := testkit.Attrs(s)
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
			if v, _ := header(r, wire.HeaderID); v == id {
				rec = r
			}
		}
		if rec == nil {
			t.Fatalf("span %d: no record with ce_id %s", i, id)
		}
		got := trace.SpanContextFromContext((*telemetry.T)(o.Telemetry).Extract(context.Background(), rec))
		if got.SpanID() != s.SpanContext().SpanID() {
			t.Errorf("span %d: the record's traceparent names span %v, want the publish span %v", i, got.SpanID(), s.SpanContext().SpanID())
		}
	}

	got := testkit.Counts(t, o.Reader)
	if got["messaging.client.sent.messages"] != 2 || got["messaging.client.operation.duration"] != 2 || got["evbus.publish.bytes"] < 2*100 {
		t.Errorf("metrics after two events: %v", got)
	}
}
