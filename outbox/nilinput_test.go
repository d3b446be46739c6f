package outbox_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
)

// Every public entry point of outbox given nil where it needs something
// returns an error that names the argument, and does not panic.
func TestNilInput(t *testing.T) {
	k := startKafka(t)
	ctx := context.Background()
	var nilCtx context.Context
	lite := sqliteDB(t)
	liteOB := newOutbox(t, sqldb.DB[*sql.Tx](lite), k.enc)
	pg := pgxDB(t, evbustest.PostgresDatabase(t))
	pgOB := newOutbox(t, sqldb.DB[pgx.Tx](pg), k.enc)
	relay, err := liteOB.Relay(k.cl)
	if err != nil {
		t.Fatal(err)
	}
	ev := OrderEvent{OrderID: "o", Seq: 1}
	for _, c := range []struct {
		name, want string
		fn         func() error
	}{
		{"Enqueue(nil *sql.Tx)", "nil transaction", func() error { return liteOB.Enqueue(ctx, nil, ev) }},
		{"Enqueue(nil pgx.Tx)", "nil transaction", func() error { return pgOB.Enqueue(ctx, nil, ev) }},
		{"Exec(nil pgx.Tx)", "nil transaction", func() error { return pgOB.Exec(ctx, nil, "UPDATE x SET y = 1", nil, ev) }},
		{"Enqueue(nil ctx)", "Enqueue: nil context", func() error {
			return sqldb.InTx(ctx, sqldb.DB[*sql.Tx](lite), func(tx *sql.Tx) error { return liteOB.Enqueue(nilCtx, tx, ev) })
		}},
		{"New(nil db)", "nil DB", func() error { _, err := outbox.New[pgx.Tx](nil, k.enc); return err }},
		{"New(Pgx(nil))", "sqldb.Pgx(nil)", func() error { _, err := outbox.New(sqldb.DB[pgx.Tx](sqldb.Pgx(nil)), k.enc); return err }},
		{"New(SQL(nil, d))", "sqldb.SQL(nil, ...)", func() error {
			_, err := outbox.New(sqldb.DB[*sql.Tx](sqldb.SQL(nil, sqldb.SQLite)), k.enc)
			return err
		}},
		{"New(SQL(db, nil))", "sqldb.SQL(db, nil)", func() error {
			_, err := outbox.New(sqldb.DB[*sql.Tx](sqldb.SQL(lite.Pool(), nil)), k.enc)
			return err
		}},
		{"New(nil option)", "option 1 is nil", func() error { _, err := outbox.New(sqldb.DB[*sql.Tx](lite), k.enc, nil); return err }},
		{"New(Telemetry(nil))", "outbox: Telemetry(nil): pass one from tracing.New", func() error {
			_, err := outbox.New(sqldb.DB[*sql.Tx](lite), k.enc, outbox.Telemetry(nil))
			return err
		}},
		{"Relay(nil client)", "Kafka client", func() error { _, err := liteOB.Relay(nil); return err }},
		{"Relay(nil option)", "option 1 is nil", func() error { _, err := liteOB.Relay(k.cl, nil); return err }},
		{"Relay.Run(nil ctx)", "Run: nil context", func() error { return relay.Run(nilCtx) }},
		{"Migrate(nil ctx)", "Migrate: nil context", func() error { return liteOB.Migrate(nilCtx) }},
		{"Status(nil ctx)", "Status: nil context", func() error { _, err := liteOB.Status(nilCtx); return err }},
	} {
		nilinput.Call(t, c.name, c.want, c.fn)
	}
}
