package sqldb

import (
	"context"
	"database/sql"
	"fmt"
)

// SQLDB is a database on a database/sql pool: transactions are *sql.Tx.
type SQLDB struct {
	db      *sql.DB
	dialect Dialect
}

var _ DB[*sql.Tx] = (*SQLDB)(nil)

// SQL returns the database of db, whose statements are written in d:
// Postgres for pgx's stdlib driver, SQLite for modernc.org/sqlite. evbus
// never closes db. With a nil db or d, every call of the database fails,
// naming the nil argument (see Check).
func SQL(db *sql.DB, d Dialect) *SQLDB { return &SQLDB{db: db, dialect: d} }

// check names the nil argument SQL was given.
func (d *SQLDB) check() error {
	switch {
	case d == nil || d.db == nil:
		return fmt.Errorf("%w: sqldb.SQL(nil, ...): pass the service's *sql.DB", ErrNoDatabase)
	case d.dialect == nil:
		return fmt.Errorf("%w: sqldb.SQL(db, nil): pass the database's Dialect, sqldb.Postgres or sqldb.SQLite", ErrNoDatabase)
	}
	return nil
}

// Pool returns the pool.
func (d *SQLDB) Pool() *sql.DB { return d.db }

// Dialect returns the dialect given to SQL.
func (d *SQLDB) Dialect() Dialect { return d.dialect }

// Begin starts a transaction.
func (d *SQLDB) Begin(ctx context.Context) (*sql.Tx, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.db.BeginTx(ctx, nil)
}

// Commit commits tx.
func (d *SQLDB) Commit(_ context.Context, tx *sql.Tx) error {
	if tx == nil {
		return errNilTx
	}
	return tx.Commit()
}

// Rollback rolls tx back; after Commit, it does nothing.
func (d *SQLDB) Rollback(_ context.Context, tx *sql.Tx) error {
	if tx == nil {
		return errNilTx
	}
	if err := tx.Rollback(); err != sql.ErrTxDone {
		return err
	}
	return nil
}

// In returns what runs statements in tx.
func (d *SQLDB) In(tx *sql.Tx) Querier {
	if tx == nil {
		return failing{errNilTx}
	}
	return sqlQuerier{tx}
}

// Ping checks that the database answers.
func (d *SQLDB) Ping(ctx context.Context) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.db.PingContext(ctx)
}

// Exec runs a statement on the pool.
func (d *SQLDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	return sqlQuerier{d.db}.Exec(ctx, query, args...)
}

// Query runs a query on the pool.
func (d *SQLDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return sqlQuerier{d.db}.Query(ctx, query, args...)
}

// sqlRunner is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

type sqlQuerier struct{ r sqlRunner }

func (q sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.r.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
