package sqldb

import (
	"context"
	"fmt"

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

// Pgx returns the database of pool. evbus never closes the pool. Pgx(nil)
// returns a database whose every call fails, naming the nil pool (see
// Check).
func Pgx(pool *pgxpool.Pool) *PgxDB {
	if pool == nil {
		return &PgxDB{}
	}
	return &PgxDB{pool: pool, prepare: prepares(pool.Config().ConnConfig)}
}

// errNoPool is the error of every call of Pgx(nil)'s database.
var errNoPool = fmt.Errorf("%w: sqldb.Pgx(nil): pass the service's *pgxpool.Pool", ErrNoDatabase)

// check returns errNoPool for Pgx(nil).
func (d *PgxDB) check() error {
	if d == nil || d.pool == nil {
		return errNoPool
	}
	return nil
}

// Pool returns the pool, for what needs a connection of its own (LISTEN,
// session advisory locks).
func (d *PgxDB) Pool() *pgxpool.Pool { return d.pool }

// Dialect returns Postgres.
func (d *PgxDB) Dialect() Dialect { return Postgres }

// Begin starts a transaction.
func (d *PgxDB) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.pool.Begin(ctx)
}

// Commit commits tx.
func (d *PgxDB) Commit(ctx context.Context, tx pgx.Tx) error {
	if tx == nil {
		return errNilTx
	}
	return tx.Commit(ctx)
}

// Rollback rolls tx back.
func (d *PgxDB) Rollback(ctx context.Context, tx pgx.Tx) error {
	if tx == nil {
		return errNilTx
	}
	return tx.Rollback(ctx)
}

// In returns what runs statements in tx.
func (d *PgxDB) In(tx pgx.Tx) Querier {
	if tx == nil {
		return failing{errNilTx}
	}
	return pgxQuerier{r: tx, prepare: d.prepare}
}

// Ping checks that the database answers.
func (d *PgxDB) Ping(ctx context.Context) error {
	if err := d.check(); err != nil {
		return err
	}
	return d.pool.Ping(ctx)
}

// Exec runs a statement on the pool.
func (d *PgxDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := d.check(); err != nil {
		return 0, err
	}
	return pgxQuerier{r: d.pool}.Exec(ctx, query, args...)
}

// Query runs a query on the pool.
func (d *PgxDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return pgxQuerier{r: d.pool}.Query(ctx, query, args...)
}

// pgxRunner is what pgx.Tx, *pgx.Conn and *pgxpool.Pool have in common.
type pgxRunner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

type pgxQuerier struct {
	r       pgxRunner
	prepare bool // ExecPrepared prepares (a transaction's, on a pool that prepares)
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
