package sqldb

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PgxDB is a PostgreSQL database on a pgx/v5 pool: transactions are pgx.Tx.
type PgxDB struct {
	pool    *pgxpool.Pool
	prepare bool // ExecPrepared may prepare: see prepares
}

var _ DB[pgx.Tx] = (*PgxDB)(nil)

// Pgx returns the database of pool. evbus never closes the pool.
func Pgx(pool *pgxpool.Pool) *PgxDB {
	return &PgxDB{pool: pool, prepare: prepares(pool.Config().ConnConfig)}
}

// Pool returns the pool, for what needs a connection of its own (LISTEN,
// session advisory locks).
func (d *PgxDB) Pool() *pgxpool.Pool { return d.pool }

// Dialect returns Postgres.
func (d *PgxDB) Dialect() Dialect { return Postgres }

// Begin starts a transaction.
func (d *PgxDB) Begin(ctx context.Context) (pgx.Tx, error) { return d.pool.Begin(ctx) }

// Commit commits tx.
func (d *PgxDB) Commit(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) }

// Rollback rolls tx back.
func (d *PgxDB) Rollback(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) }

// In returns what runs statements in tx.
func (d *PgxDB) In(tx pgx.Tx) Querier { return pgxQuerier{r: tx, prepare: d.prepare} }

// Ping checks that the database answers.
func (d *PgxDB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// Exec runs a statement on the pool.
func (d *PgxDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return pgxQuerier{r: d.pool}.Exec(ctx, query, args...)
}

// Query runs a query on the pool.
func (d *PgxDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return pgxQuerier{r: d.pool}.Query(ctx, query, args...)
}

// pgxRunner is what pgx.Tx, *pgx.Conn and *pgxpool.Pool have in common.
type pgxRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type pgxQuerier struct {
	r       pgxRunner
	prepare bool // ExecPrepared runs its own path (a transaction's, on a pool that prepares)
}

func (q pgxQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.r.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q pgxQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	rows, err := q.r.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}
