package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// Every public entry point of sqldb given nil where it needs something
// returns an error that names the argument, and does not panic.
func TestNilInput(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Pool().Close()
	var nilCtx context.Context
	var nilDB sqldb.DB[*sql.Tx]
	noPool := sqldb.Pgx(nil)
	noDB, noDialect := sqldb.SQL(nil, sqldb.SQLite), sqldb.SQL(lite.Pool(), nil)
	ok := func(*sql.Tx) error { return nil }
	for _, c := range []struct {
		name, want string
		fn         func() error
	}{
		{"Pgx(nil).Begin", "sqldb.Pgx(nil)", func() error { _, err := noPool.Begin(ctx); return err }},
		{"Pgx(nil).Exec", "sqldb.Pgx(nil)", func() error { _, err := noPool.Exec(ctx, "SELECT 1"); return err }},
		{"Pgx(nil).Query", "sqldb.Pgx(nil)", func() error { _, err := noPool.Query(ctx, "SELECT 1"); return err }},
		{"Pgx(nil).Ping", "sqldb.Pgx(nil)", func() error { return noPool.Ping(ctx) }},
		{"Pgx(nil).Conn", "sqldb.Pgx(nil)", func() error { _, err := noPool.Conn(ctx); return err }},
		{"Check(Pgx(nil))", "sqldb.Pgx(nil)", func() error { return sqldb.Check(sqldb.DB[pgx.Tx](noPool)) }},
		{"Check(nil)", "nil DB", func() error { return sqldb.Check(nilDB) }},
		{"SQL(nil, d).Begin", "sqldb.SQL(nil, ...)", func() error { _, err := noDB.Begin(ctx); return err }},
		{"SQL(nil, d).Exec", "sqldb.SQL(nil, ...)", func() error { _, err := noDB.Exec(ctx, "SELECT 1"); return err }},
		{"SQL(db, nil)", "sqldb.SQL(db, nil)", func() error { return sqldb.Check(sqldb.DB[*sql.Tx](noDialect)) }},
		{"Pgx.In(nil tx)", "nil transaction", func() error { _, err := noPool.In(nil).Exec(ctx, "SELECT 1"); return err }},
		{"Pgx.Commit(nil tx)", "nil transaction", func() error { return noPool.Commit(ctx, nil) }},
		{"SQL.In(nil tx)", "nil transaction", func() error { _, err := lite.In(nil).Query(ctx, "SELECT 1"); return err }},
		{"SQL.Commit(nil tx)", "nil transaction", func() error { return lite.Commit(ctx, nil) }},
		{"SQL.Rollback(nil tx)", "nil transaction", func() error { return lite.Rollback(ctx, nil) }},
		{"ExecPrepared(In(nil tx))", "nil transaction", func() error { _, err := sqldb.ExecPrepared(ctx, noPool.In(nil), "SELECT 1"); return err }},
		{"InTx(nil ctx)", "InTx: nil context", func() error { return sqldb.InTx(nilCtx, sqldb.DB[*sql.Tx](lite), ok) }},
		{"InTx(nil fn)", "InTx: nil function", func() error { return sqldb.InTx(ctx, sqldb.DB[*sql.Tx](lite), nil) }},
		{"InTx(nil db)", "nil DB", func() error { return sqldb.InTx(ctx, nilDB, ok) }},
		{"Migrate(SQL(nil, d))", "sqldb.SQL(nil, ...)", func() error { return sqldb.Migrate(ctx, sqldb.DB[*sql.Tx](noDB), "SELECT 1") }},
	} {
		nilinput.Call(t, c.name, c.want, c.fn)
	}
	if err := sqldb.Check(sqldb.DB[pgx.Tx](noPool)); !errors.Is(err, sqldb.ErrNoDatabase) {
		t.Errorf("Check(Pgx(nil)): %v, want ErrNoDatabase", err)
	}
}
