// Package telemetry records evbus's spans and metrics: the hooks the
// publisher, the outbox, the consumer and the registry client call per
// record. Users see it as tracing.Telemetry, a type defined on T without
// its methods; design notes in docs/design/tracing.md.
package telemetry
