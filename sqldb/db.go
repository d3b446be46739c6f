package sqldb

import (
	"context"
	"errors"
	"fmt"
)

// DB is a database with transactions of type Tx: the driver's own (pgx.Tx,
// *sql.Tx), so code that evbus runs in a transaction gets what the
// service's code uses. Its methods are safe for concurrent use.
type DB[Tx any] interface {
	// Querier runs statements outside a transaction (on the pool).
	Querier
	// Dialect says how statements are written for the database.
	Dialect() Dialect
	// Begin starts a transaction.
	Begin(ctx context.Context) (Tx, error)
	// Commit commits tx.
	Commit(ctx context.Context, tx Tx) error
	// Rollback rolls tx back; after Commit, it does nothing.
	Rollback(ctx context.Context, tx Tx) error
	// In returns what runs statements in tx.
	In(tx Tx) Querier
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// Querier runs statements: on a pool, or in a transaction (DB.In).
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a statement that returns rows. The caller closes them.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
}

// Rows are the rows of a query, read with Next and Scan as in
// database/sql.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// ErrNoDatabase is wrapped by the errors of a nil database: a nil DB,
// Pgx(nil), SQL(nil, d) or SQL(db, nil).
var ErrNoDatabase = errors.New("sqldb: no database")

// errNilTx is the error of every statement run in a nil transaction.
var errNilTx = errors.New("sqldb: nil transaction: pass the one Begin returned")

// Check returns an error wrapping ErrNoDatabase, naming the nil argument,
// when db cannot run statements at all: a nil DB, Pgx(nil), SQL(nil, d),
// SQL(db, nil), or a DB without a Dialect. Constructors that take a DB
// call it, so that the mistake shows at start.
func Check[Tx any](db DB[Tx]) error {
	switch d := any(db).(type) {
	case nil:
		return fmt.Errorf("%w: nil DB: pass sqldb.Pgx(pool) or sqldb.SQL(db, dialect)", ErrNoDatabase)
	case *PgxDB:
		return d.check()
	case *SQLDB:
		return d.check()
	}
	if db.Dialect() == nil {
		return fmt.Errorf("%w: %T has no Dialect", ErrNoDatabase, db)
	}
	return nil
}

// failing is the Querier of a nil transaction: every statement fails.
type failing struct{ err error }

func (f failing) Exec(context.Context, string, ...any) (int64, error) { return 0, f.err }
func (f failing) Query(context.Context, string, ...any) (Rows, error) { return nil, f.err }

// InTx runs fn in a transaction on db: it commits when fn returns nil, and
// rolls back when fn returns an error or panics (the panic goes on).
func InTx[Tx any](ctx context.Context, db DB[Tx], fn func(tx Tx) error) (err error) {
	switch {
	case ctx == nil:
		return errors.New("sqldb: InTx: nil context")
	case fn == nil:
		return errors.New("sqldb: InTx: nil function")
	}
	if err := Check(db); err != nil {
		return fmt.Errorf("sqldb: InTx: %w", err)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("sqldb: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// A panic, or fn's error: undo what fn did. The rollback's
			// own error is not the news.
			_ = db.Rollback(context.WithoutCancel(ctx), tx)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	if err := db.Commit(ctx, tx); err != nil {
		_ = db.Rollback(context.WithoutCancel(ctx), tx)
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}

// QueryRow runs a query that returns at most one row and scans it into
// dest; ErrNoRows when it returned none.
func QueryRow(ctx context.Context, q Querier, query string, args []any, dest ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// ErrNoRows is QueryRow's error for a query that returned no row.
var ErrNoRows = errors.New("sqldb: no rows")

// PreparedExecer is implemented by the Queriers that can keep a statement
// that comes back again and again prepared: those of PgxDB's
// transactions. ExecPrepared runs query as Exec does, with query prepared
// on the connection the first time and kept for the connection's life, so
// pass only statements of a small, fixed set. Use it through
// ExecPrepared, which falls back to Exec.
type PreparedExecer interface {
	ExecPrepared(ctx context.Context, query string, args ...any) (int64, error)
}

// ExecPrepared runs query on q with PreparedExecer's ExecPrepared when q
// has it, and with Exec otherwise.
func ExecPrepared(ctx context.Context, q Querier, query string, args ...any) (int64, error) {
	if p, ok := q.(PreparedExecer); ok {
		return p.ExecPrepared(ctx, query, args...)
	}
	return q.Exec(ctx, query, args...)
}
