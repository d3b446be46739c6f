package sqldb

import (
	"context"
	"database/sql"
)

// SQLDB is a database on a database/sql pool: transactions are *sql.Tx.
type SQLDB struct {
	db      *sql.DB
	dialect Dialect
}

var _ DB[*sql.Tx] = (*SQLDB)(nil)

// SQL returns the database of db, whose statements are written in d:
// Postgres for pgx's stdlib driver, SQLite for modernc.org/sqlite. evbus
// never closes db.
func SQL(db *sql.DB, d Dialect) *SQLDB { return &SQLDB{db: db, dialect: d} }

// Pool returns the pool.
func (d *SQLDB) Pool() *sql.DB { return d.db }

// Dialect returns the dialect given to SQL.
func (d *SQLDB) Dialect() Dialect { return d.dialect }

// Begin starts a transaction.
func (d *SQLDB) Begin(ctx context.Context) (*sql.Tx, error) { return d.db.BeginTx(ctx, nil) }

// Commit commits tx.
func (d *SQLDB) Commit(_ context.Context, tx *sql.Tx) error { return tx.Commit() }

// Rollback rolls tx back; after Commit, it does nothing.
func (d *SQLDB) Rollback(_ context.Context, tx *sql.Tx) error {
	if err := tx.Rollback(); err != sql.ErrTxDone {
		return err
	}
	return nil
}

// In returns what runs statements in tx.
func (d *SQLDB) In(tx *sql.Tx) Querier { return sqlQuerier{tx} }

// Ping checks that the database answers.
func (d *SQLDB) Ping(ctx context.Context) error { return d.db.PingContext(ctx) }

// Exec runs a statement on the pool.
func (d *SQLDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlQuerier{d.db}.Exec(ctx, query, args...)
}

// Query runs a query on the pool.
func (d *SQLDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
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
