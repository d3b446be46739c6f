// Package tracing carries OpenTelemetry trace context with every event and
// records the spans and metrics of evbus, after the OpenTelemetry
// messaging conventions (semconv v1.40).
//
// A Telemetry holds a tracer, a meter and a propagator; by default the
// global ones (otel.GetTracerProvider and friends), which do nothing until
// the service installs an SDK, and which pick it up when it does. The
// publisher, the outbox and the consumer take one through their options.
//
// What travels: the W3C traceparent and tracestate headers (and baggage,
// with a propagator that carries it) on every record, and in the outbox
// row between Enqueue and the relay, so one trace runs from the request
// that caused an event, through the relay that sent it later, to every
// handler, its retries and its dead letter.
//
// Spans: "publish <topic>" (PRODUCER) for each record sent; "process
// <topic>" (CONSUMER) for each record handled, parented on the producer's
// span or, with LinkConsumers, a new trace linked to it. The relay's
// publish span is a child of the span that enqueued the row, or, with
// LinkRelay, a new trace linked to it.
//
// Sampling. In production, sample a share of the traces where they start
// and let every span after follow that decision:
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
//		sdktrace.WithBatcher(exporter))
//
// The record's traceparent carries the producer's decision, so a consumer
// on ParentBased records the process span of exactly the records whose
// trace was kept: 1 % of the traces, whole, from request to handler and
// dead letter. AlwaysSample records a span per record published and per
// record handled, which costs more than evbus's own work per record (see
// BENCHMARKS.md, "Tracing cost").
//
// Cost. Span names and start options are built once per topic (and
// group and partition); the attributes that decide sampling are given at
// start, those of the record (key, ce_id, offset) only to a span that
// records, so an unsampled record costs the SDK's non-recording span, the
// headers' traceparent and a few atomic adds. The counters
// (messaging.client.sent.messages, evbus.publish.bytes,
// evbus.consumer.events) are observable: each record adds to counters of
// its attribute set and collection reports them, so they carry no
// exemplars; the duration histograms are synchronous.
//
// franz-go's plugin/kotel records spans too, but under older convention
// names ("<topic> publish", messaging.source.name) and a receive span per
// fetched record; evbus records its own spans and uses kotel's header
// carrier. kotel's Meter (connection and byte counts per broker) can be
// added to a client beside evbus's metrics.
package tracing
