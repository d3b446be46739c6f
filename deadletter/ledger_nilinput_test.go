package deadletter_test

import (
	"context"
	"testing"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/wire"
)

// The ledger's entry points given nil where they need something return an
// error that names the argument, and do not panic.
func TestLedgerNilInput(t *testing.T) {
	cl, adm := clients(t, startKafka(t))
	l := open(t, cl, adm)
	ctx := t.Context()
	var nilCtx context.Context
	for _, c := range []struct {
		name, want string
		fn         func() error
	}{
		{"OpenLedger(nil context)", "nil context", func() error { _, err := deadletter.OpenLedger(nilCtx, cl, adm, group); return err }},
		{"OpenLedger(nil client)", "nil client", func() error { _, err := deadletter.OpenLedger(ctx, nil, adm, group); return err }},
		{"OpenLedger(nil admin)", "nil admin client", func() error { _, err := deadletter.OpenLedger(ctx, cl, nil, group); return err }},
		{"Record(nil context)", "Record: nil context", func() error {
			_, err := l.Record(nilCtx, "orders.billing.dlt/0/1", wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "a"})
			return err
		}},
		{"States(nil context)", "States: nil context", func() error { _, err := l.States(nilCtx); return err }},
	} {
		nilinput.Call(t, c.name, c.want, c.fn)
	}
}
