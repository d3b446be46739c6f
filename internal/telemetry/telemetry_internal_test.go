package telemetry

import (
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// What this package found at init is otel's delegating globals (nothing
// in this test binary installs an SDK before it), and an SDK found there
// instead, installed by a service's init that ran first, never counts as
// the idle globals: a Telemetry on it would record nothing, ever.
func TestInitialGlobals(t *testing.T) {
	if initialTracerProvider == nil || initialPropagator == nil {
		t.Fatalf("otel's delegating globals not recognised: %T, %T", initialTracerProvider, initialPropagator)
	}
	if tp, p := delegating(initialTracerProvider, initialPropagator); tp != initialTracerProvider || p != initialPropagator {
		t.Fatalf("delegating(globals) = %T, %T", tp, p)
	}
	tp, p := delegating(sdktrace.NewTracerProvider(), propagation.TraceContext{})
	if tp != nil || p != nil {
		t.Fatalf("an installed SDK taken for the idle globals: %T, %T", tp, p)
	}
}
