package sqldb

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgxTx is what ExecPrepared needs of a pgx.Tx: Prepare, which fails once
// the transaction has ended (so that a statement never runs on a
// connection handed to someone else), Exec, and the connection.
type pgxTx interface {
	Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Conn() *pgx.Conn
}

// ExecPrepared runs query in the transaction prepared on the connection
// under its own text as its name, where pgx keeps it for the connection's
// life and finds it again without a round trip; pgx's Exec of the name
// then binds and executes it in one round trip, encoding the arguments as
// it does for any statement. With a mode other than
// pgx.QueryExecModeCacheStatement (the simple protocol of a pooler that
// keeps no prepared statements) it is pgx's Exec.
func (q pgxQuerier) ExecPrepared(ctx context.Context, query string, args ...any) (int64, error) {
	tx, ok := q.r.(pgxTx)
	if !ok || !q.prepare {
		return q.Exec(ctx, query, args...)
	}
	if _, err := tx.Prepare(ctx, query, query); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, query, args...)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "26000" { // invalid_sql_statement_name
			// The server dropped it (DISCARD ALL): forget it, so that
			// the next call prepares it again.
			_ = tx.Conn().Deallocate(context.WithoutCancel(ctx), query)
		}
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// prepares reports whether ExecPrepared prepares statements on
// connections of cfg: in pgx's default mode, which prepares statements.
func prepares(cfg *pgx.ConnConfig) bool {
	return cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
}
