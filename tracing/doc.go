// Package tracing carries OpenTelemetry trace context with every event and
// records evbus's spans and metrics, after the OpenTelemetry messaging
// conventions (semconv v1.40).
//
// A Telemetry holds a tracer provider, a meter provider and a propagator;
// New sets them, Default takes the global ones, which do nothing until the
// service installs an SDK and pick it up when it does. The publisher, the
// outbox, the consumer and the registry client take one through their
// Telemetry options, and use Default without one.
//
// What it promises: the W3C traceparent and tracestate headers (and
// baggage, with a propagator that carries it) on every record and in the
// outbox row, so one trace runs from the request that caused an event,
// through the relay, to every handler, its retries and its dead letter;
// spans "publish <topic>", "create <topic>" and "process <topic>"; the
// metrics messaging.client.sent.messages, messaging.client.operation.duration,
// messaging.process.duration and evbus.* (attributes OutcomeKey, CacheKey).
// With no SDK installed it costs no span and writes no header. Sampling,
// cost and the design: docs/design/tracing.md.
package tracing
