package tracing

import (
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/internal/telemetry"
)

// ScopeName is the instrumentation scope of evbus's tracer and meter.
const ScopeName = telemetry.ScopeName

// Telemetry records evbus's spans and metrics and carries trace context
// through record headers. Make one with New (or take Default) and pass it
// to the publisher (bus.Telemetry), the outbox (outbox.Telemetry), the
// consumer (consumer.Telemetry) and the registry client
// (schema.Telemetry). It is safe for concurrent use.
type Telemetry telemetry.T

// Option configures a Telemetry.
type Option func(*config)

type config struct {
	telemetry.Config
}

// TracerProvider sets where spans go. Default: otel.GetTracerProvider().
func TracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.TracerProvider = tp }
}

// MeterProvider sets where metrics go. Default: otel.GetMeterProvider().
func MeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.MeterProvider = mp }
}

// Propagator sets how context is written to and read from headers (set
// it to a composite of propagation.TraceContext and propagation.Baggage to
// carry baggage). Default: otel.GetTextMapPropagator().
func Propagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.Propagator = p }
}

// LinkConsumers starts each consumer span in a trace of its own, linked
// to the producer's span, instead of as its child (the default). Links
// suit consumers whose work is not part of the producer's request: a
// long-lived trace per event otherwise grows without bound.
func LinkConsumers() Option { return func(c *config) { c.LinkConsumers = true } }

// LinkRelay starts each outbox relay publish span in a trace of its own,
// linked to the span that enqueued the row, instead of as its child (the
// default, which shows the event leaving in the request's trace).
func LinkRelay() Option { return func(c *config) { c.LinkRelay = true } }

// New returns a Telemetry. A nil provider or propagator takes its
// default.
func New(opts ...Option) (*Telemetry, error) {
	var c config
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("tracing: New: option %d is nil", i+1)
		}
		o(&c)
	}
	t, err := telemetry.New(c.Config)
	if err != nil {
		return nil, fmt.Errorf("tracing: New: %w", err)
	}
	return (*Telemetry)(t), nil
}

// Default returns the Telemetry on the global providers and propagator,
// what evbus's packages use when given none. They delegate to whatever
// the service installs later, so Default works whenever it is called.
func Default() *Telemetry { return (*Telemetry)(telemetry.Default()) }

// The attributes of evbus's own metrics, for a service that reads them.
const (
	// OutcomeKey is the attribute of evbus.consumer.events that says how
	// a record was settled: one of the Outcome values.
	OutcomeKey = telemetry.OutcomeKey
	// CacheKey is the attribute of evbus.registry.lookups: "hit" for a
	// lookup answered from the client's cache, "miss" for one that asked
	// the registry.
	CacheKey = telemetry.CacheKey
)

// Outcomes of a settled record (the values of OutcomeKey).
const (
	OutcomeOK           = telemetry.OutcomeOK
	OutcomeRetried      = telemetry.OutcomeRetried // one handler run that failed and runs again
	OutcomeRetryTopic   = telemetry.OutcomeRetryTopic
	OutcomeDeadLettered = telemetry.OutcomeDeadLettered
	OutcomeDuplicate    = telemetry.OutcomeDuplicate
	OutcomeSkipped      = telemetry.OutcomeSkipped
)
