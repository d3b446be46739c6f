package schema_test

import (
	"context"
	"testing"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/schema"
)

// Every public entry point of schema given nil where it needs something
// returns an error that names the argument, and does not panic.
func TestNilInput(t *testing.T) {
	reg := newRegistry(t, startRegistry(t))
	ctx := context.Background()
	var nilCtx context.Context
	s, err := codec.Parse(placedV1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		fn         func() error
	}{
		{"New(nil option)", "option 1 is nil", func() error { _, err := schema.New("http://127.0.0.1:1", nil); return err }},
		{"New(Telemetry(nil))", "schema: Telemetry(nil): pass one from tracing.New", func() error {
			_, err := schema.New("http://127.0.0.1:1", schema.Telemetry(nil))
			return err
		}},
		{"Subject(nil schema)", "nil schema", func() error { _, err := reg.Subject("orders", nil); return err }},
		{"Writer(nil schema)", "nil schema", func() error { _, err := reg.Writer(ctx, "orders", nil); return err }},
		{"Writer(nil ctx)", "nil context", func() error { _, err := reg.Writer(nilCtx, "orders", s); return err }},
		{"Register(nil schema)", "Register: nil schema", func() error { _, err := reg.Register(ctx, "orders-value", nil); return err }},
		{"Register(nil ctx)", "Register: nil context", func() error { _, err := reg.Register(nilCtx, "orders-value", s); return err }},
		{"Lookup(nil schema)", "Lookup: nil schema", func() error { _, err := reg.Lookup(ctx, "orders-value", nil); return err }},
		{"Check(nil schema)", "Check: nil schema", func() error { return reg.Check(ctx, "orders-value", nil) }},
	} {
		nilinput.Call(t, c.name, c.want, c.fn)
	}
}
