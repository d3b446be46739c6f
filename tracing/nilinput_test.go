package tracing_test

import (
	"testing"

	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/tracing"
)

// New given a nil option returns an error that names it, and does not
// panic; nil providers take the defaults.
func TestNilInput(t *testing.T) {
	nilinput.Call(t, "New(nil option)", "option 2 is nil", func() error {
		_, err := tracing.New(tracing.LinkRelay(), nil)
		return err
	})
	if _, err := tracing.New(tracing.TracerProvider(nil), tracing.MeterProvider(nil), tracing.Propagator(nil)); err != nil {
		t.Errorf("New with nil providers: %v, want the defaults", err)
	}
}
