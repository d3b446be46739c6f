package consumer_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// One trace from a request to the handler's own span and the event the
// handler publishes; a retried then dead-lettered record in the same
// trace as its producer; metrics of the workload.
func TestTraceFromRequestToHandler(t *testing.T) {
	e := start(t)
	e.topics(1, "orders", "orders.billing.dlt", "orders.billing.replay")
	tm := testkit.NewOTel(t)
	pub, err := bus.NewPublisher(t.Context(), e.cl, e.reg, bus.Source("/test"), bus.Types(orderPlaced, orderShipped), bus.Telemetry(tm.Telemetry))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu          sync.Mutex
		handlerSpan trace.SpanContext
		handled     = make(chan struct{}, 1)
		fixed       atomic.Bool
	)
	c := e.consumer("billing", consumer.Telemetry(tm.Telemetry))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		if ev.Note == "bad" && !fixed.Load() {
			return errors.New("cannot bill")
		}
		ctx, span := tm.Provider.Tracer("billing").Start(ctx, "INSERT invoices")
		mu.Lock()
		handlerSpan = span.SpanContext()
		mu.Unlock()
		span.End()
		return pub.Publish(ctx, &Shipped{OrderID: ev.OrderID})
	})
	consumer.Handle(c, orderShipped, func(ctx context.Context, ev *Shipped, m bus.Meta) error {
		handled <- struct{}{}
		return nil
	})
	run(t, c)

	ctx, request := tm.Provider.Tracer("http").Start(t.Context(), "POST /orders")
	if err := pub.Publish(ctx, Order{OrderID: "o-1", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	request.End()
	<-handled
	badCtx, badRequest := tm.Provider.Tracer("http").Start(t.Context(), "POST /orders (bad)")
	if err := pub.Publish(badCtx, Order{OrderID: "o-2", Seq: 1, Note: "bad"}); err != nil {
		t.Fatal(err)
	}
	badRequest.End()
	waitFor(t, "the dead letter's process span", func() bool { return len(tm.Named("process orders")) == 3 })

	trace1 := request.SpanContext().TraceID()
	var publishOrder, process1, processShipped, dltPublish sdktrace.ReadOnlySpan
	for _, s := range tm.Named("publish orders") {
		if s.SpanContext().TraceID() != trace1 && s.SpanContext().TraceID() != badRequest.SpanContext().TraceID() {
			t.Fatalf("publish span outside the requests' traces: %v", s.SpanContext().TraceID())
		}
		if s.Parent().SpanID() == request.SpanContext().SpanID() {
			publishOrder = s
		}
	}
	for _, s := range tm.Named("process orders") {
		a := testkit.Attrs(s)
		switch {
		case publishOrder != nil && s.Parent().SpanID() == publishOrder.SpanContext().SpanID():
			process1 = s
		case a["evbus.outcome"] == "dead-lettered":
			for _, d := range tm.Named("publish orders.billing.dlt") {
				if d.Parent().SpanID() == s.SpanContext().SpanID() {
					dltPublish = d
				}
			}
			if s.SpanContext().TraceID() != badRequest.SpanContext().TraceID() {
				t.Error("the dead-lettered record's process span is not in its request's trace")
			}
			var retries int
			for _, ev := range s.Events() {
				if ev.Name == "retry" {
					retries++
				}
			}
			if retries != 2 {
				t.Errorf("the dead-lettered record's span has %d retry events, want 2 (3 attempts)", retries)
			}
		default:
			processShipped = s
		}
	}
	if publishOrder == nil || process1 == nil || processShipped == nil || dltPublish == nil {
		t.Fatalf("spans missing: publish %v, process %v, process of the handler's event %v, dead-letter publish %v",
			publishOrder != nil, process1 != nil, processShipped != nil, dltPublish != nil)
	}
	if process1.SpanKind() != trace.SpanKindConsumer || process1.SpanContext().TraceID() != trace1 {
		t.Errorf("process span: kind %v, trace %v; want CONSUMER in the request's trace", process1.SpanKind(), process1.SpanContext().TraceID())
	}
	a := testkit.Attrs(process1)
	for k, want := range map[string]string{
		"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation.type": "process",
		"messaging.consumer.group.name": "billing", "messaging.kafka.message.key": "o-1", "messaging.kafka.offset": "0",
		"messaging.destination.partition.id": "0", "evbus.outcome": "ok",
	} {
		if a[k] != want {
			t.Errorf("process span: %s = %q, want %q", k, a[k], want)
		}
	}
	if a["messaging.message.id"] == "" {
		t.Error("process span: no messaging.message.id")
	}
	mu.Lock()
	hs := handlerSpan
	mu.Unlock()
	var handlerRead sdktrace.ReadOnlySpan
	for _, s := range tm.Named("INSERT invoices") {
		if s.SpanContext().SpanID() == hs.SpanID() {
			handlerRead = s
		}
	}
	if handlerRead == nil || handlerRead.Parent().SpanID() != process1.SpanContext().SpanID() {
		t.Error("the handler's own span is not a child of the process span")
	}
	// The event published by the handler continues the trace.
	if processShipped.SpanContext().TraceID() != trace1 {
		t.Error("the event the handler published is handled in another trace")
	}

	// The dead letter, replayed once the handler is fixed: a new trace,
	// linked to the dead-lettered record's.
	fixed.Store(true)
	dl, err := wire.ParseDeadLetter(e.read("orders.billing.dlt", 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	replay, err := wire.ReplayRecord(dl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cl.ProduceSync(t.Context(), replay).FirstErr(); err != nil {
		t.Fatal(err)
	}
	<-handled // the event the fixed handler published
	waitFor(t, "the replay's process span", func() bool { return len(tm.Named("process orders.billing.replay")) == 1 })
	rs := tm.Named("process orders.billing.replay")[0]
	if rs.SpanContext().TraceID() == badRequest.SpanContext().TraceID() || len(rs.Links()) != 1 ||
		rs.Links()[0].SpanContext.SpanID() != dltPublish.SpanContext().SpanID() || testkit.Attrs(rs)["evbus.outcome"] != "ok" {
		t.Errorf("replay span: trace %v (original %v), links %v, outcome %q; want a new trace linked to the dead-letter publish span, ok",
			rs.SpanContext().TraceID(), badRequest.SpanContext().TraceID(), rs.Links(), testkit.Attrs(rs)["evbus.outcome"])
	}

	want := map[string]int64{
		"evbus.consumer.events/ok": 4, "evbus.consumer.events/retried": 2, "evbus.consumer.events/dead-lettered": 1,
		"messaging.process.duration":     7, // 2 handled, 3 runs of the bad one, the replay and its event
		"messaging.client.sent.messages": 5, // 2 requests, 2 events of the handler, the dead letter
	}
	// The last event's handler may still be returning: wait for its
	// measurements (a hang guard, not a timing check).
	var got map[string]int64
	for deadline := time.Now().Add(guard); ; time.Sleep(20 * time.Millisecond) {
		got = testkit.Counts(t, tm.Reader)
		if got["evbus.consumer.events/ok"] >= want["evbus.consumer.events/ok"] && got["messaging.process.duration"] >= want["messaging.process.duration"] || time.Now().After(deadline) {
			break
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], w, got)
		}
	}
}

// With LinkConsumers, the process span starts a trace of its own, linked
// to the producer's span.
func TestLinkConsumers(t *testing.T) {
	e := start(t)
	e.topics(1, "orders")
	tm := testkit.NewOTel(t, tracing.LinkConsumers())
	pub, err := bus.NewPublisher(t.Context(), e.cl, e.reg, bus.Source("/test"), bus.Types(orderPlaced), bus.Telemetry(tm.Telemetry))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 1)
	c := e.consumer("billing", consumer.Telemetry(tm.Telemetry))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error { done <- struct{}{}; return nil })
	run(t, c)
	if err := pub.Publish(t.Context(), Order{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	<-done
	waitFor(t, "the process span", func() bool { return len(tm.Named("process orders")) == 1 })
	p, pr := tm.Named("publish orders")[0], tm.Named("process orders")[0]
	if pr.SpanContext().TraceID() == p.SpanContext().TraceID() || len(pr.Links()) != 1 || pr.Links()[0].SpanContext.SpanID() != p.SpanContext().SpanID() {
		t.Errorf("process span: trace %v (publish %v), links %v; want a new trace linked to the publish span",
			pr.SpanContext().TraceID(), p.SpanContext().TraceID(), pr.Links())
	}
	if !strings.HasPrefix(pr.Name(), "process ") {
		t.Error(pr.Name())
	}
}

// evbus.consumer.lag: the records of a partition past the commit point,
// while a handler holds the first of them, and none once all are handled.
func TestLagMetric(t *testing.T) {
	e := start(t)
	e.topics(1, "orders")
	tm := testkit.NewOTel(t)
	release := make(chan struct{})
	var handled atomic.Int64
	c := e.consumer("billing", consumer.Telemetry(tm.Telemetry))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		<-release
		handled.Add(1)
		return nil
	})
	run(t, c)
	e.publish(orders(1, 10)...)
	lag := func() (int64, bool) {
		for _, sm := range testkit.Collect(t, tm.Reader).ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "evbus.consumer.lag" {
					for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
						if v, _ := dp.Attributes.Value("messaging.destination.partition.id"); v.AsString() == "0" {
							return dp.Value, true
						}
					}
				}
			}
		}
		return 0, false
	}
	waitFor(t, "a lag of 10 while the first record is held", func() bool { n, ok := lag(); return ok && n == 10 })
	close(release)
	waitFor(t, "every record handled", func() bool { return handled.Load() == 10 })
	waitFor(t, "no lag", func() bool { n, ok := lag(); return ok && n == 0 })
}

// Baggage and the correlation id travel from the request through an
// event, its handler, and the event that handler publishes.
func TestBaggageAndCorrelationTravel(t *testing.T) {
	e := start(t)
	e.topics(1, "orders")
	tm := testkit.NewOTel(t)
	pub, err := bus.NewPublisher(t.Context(), e.cl, e.reg, bus.Source("/test"), bus.Types(orderPlaced, orderShipped), bus.Telemetry(tm.Telemetry))
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ tenant, correlation, causation, id string }
	got := make(chan seen, 2)
	c := e.consumer("billing", consumer.Telemetry(tm.Telemetry))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		got <- seen{baggage.FromContext(ctx).Member("tenant").Value(), m.CorrelationID, m.CausationID, m.ID}
		return pub.Publish(ctx, &Shipped{OrderID: ev.OrderID})
	})
	consumer.Handle(c, orderShipped, func(ctx context.Context, ev *Shipped, m bus.Meta) error {
		got <- seen{baggage.FromContext(ctx).Member("tenant").Value(), m.CorrelationID, m.CausationID, m.ID}
		return nil
	})
	run(t, c)
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx := bus.WithCorrelationID(baggage.ContextWithBaggage(t.Context(), bag), "req-1")
	if err := pub.Publish(ctx, Order{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	placed, shipped := <-got, <-got
	if placed.tenant != "acme" || shipped.tenant != "acme" {
		t.Errorf("baggage tenant: %q in the first handler, %q in the second; want acme in both", placed.tenant, shipped.tenant)
	}
	if placed.correlation != "req-1" || shipped.correlation != "req-1" || shipped.causation != placed.id {
		t.Errorf("correlation %q then %q, causation of the second %q (first's id %s); want req-1, req-1 and the first's id",
			placed.correlation, shipped.correlation, shipped.causation, placed.id)
	}
}
