package consumer_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// Every public entry point of consumer given nil where it needs something
// returns an error that names the argument, and does not panic.
func TestNilInput(t *testing.T) {
	reg, err := schema.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New("g", reg)
	if err != nil {
		t.Fatal(err)
	}
	var nilCtx context.Context
	for _, tc := range []struct {
		name, want string
		fn         func() error
	}{
		{"New(nil registry)", "nil registry", func() error { _, err := consumer.New("g", nil); return err }},
		{"New(nil option)", "consumer: New: option 2 is nil", func() error {
			_, err := consumer.New("g", reg, consumer.Concurrency(2), nil)
			return err
		}},
		{"New(Telemetry(nil))", "consumer: Telemetry(nil): pass one from tracing.New", func() error {
			_, err := consumer.New("g", reg, consumer.Telemetry(nil))
			return err
		}},
		{"Run(nil ctx)", "nil context", func() error { return c.Run(nilCtx) }},
		{"NewProcessed(nil db)", "nil DB", func() error { _, err := consumer.NewProcessed[pgx.Tx](nil); return err }},
		{"NewProcessed(Pgx(nil))", "sqldb.Pgx(nil)", func() error { _, err := consumer.NewProcessed(sqldb.DB[pgx.Tx](sqldb.Pgx(nil))); return err }},
		{"NewProcessed(SQL(nil, d))", "sqldb.SQL(nil, ...)", func() error {
			_, err := consumer.NewProcessed(sqldb.DB[*sql.Tx](sqldb.SQL(nil, sqldb.SQLite)))
			return err
		}},
	} {
		nilinput.Call(t, tc.name, tc.want, tc.fn)
	}
}
