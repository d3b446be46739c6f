// Package tracing carries OpenTelemetry trace context through evbus: W3C
// propagation in record headers and outbox rows, spans and metrics named per
// the OpenTelemetry messaging conventions, so one trace follows an event from
// the request that caused it through the outbox and Kafka to every handler.
package tracing
