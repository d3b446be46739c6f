package sqldb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
)

// onePool returns a PgxDB of one connection, so that what a transaction
// prepared is there in the next, with the pool's config changed by set.
func onePool(t *testing.T, set func(*pgxpool.Config)) *sqldb.PgxDB {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(evbustest.PostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	if set != nil {
		set(cfg)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := sqldb.Pgx(pool)
	if _, err := db.Exec(t.Context(), `CREATE TABLE kinds (
		k text PRIMARY KEY, t text, v varchar(20), u uuid, b bytea, n bytea, i4 integer, i8 bigint,
		ts timestamptz, a integer[], e integer[], j jsonb)`); err != nil {
		t.Fatal(err)
	}
	return db
}

const insertKinds = "INSERT INTO kinds (k, t, v, u, b, n, i4, i8, ts, a, e, j) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"

// kindsArgs are arguments of the common types, at their edges, for row k;
// j is the jsonb column's.
func kindsArgs(k string, j any) []any {
	return []any{
		k, "žluťoučký kůň", "varchar", "6f1c0b6e-8a53-4a3e-9a8b-1d2b3c4d5e6f",
		[]byte{0, 1, 0xff}, []byte(nil), int32(-2147483648), int64(-1 << 62),
		time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.FixedZone("x", -3600)),
		[]int32{1, -2, 2147483647}, []int32{}, j,
	}
}

// row returns row k of kinds as text, column by column.
func row(t *testing.T, q sqldb.Querier, k string) string {
	t.Helper()
	var s string
	if err := sqldb.QueryRow(t.Context(), q, "SELECT row(t, v, u, b, n, i4, i8, ts, a, e, j)::text FROM kinds WHERE k = $1", []any{k}, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// prepared returns how many statements of insertKinds are prepared on q's
// connection, and their names.
func prepared(t *testing.T, q sqldb.Querier) (int, string) {
	t.Helper()
	var n int
	var names string
	if err := sqldb.QueryRow(t.Context(), q, "SELECT count(*), coalesce(string_agg(name, ' '), '') FROM pg_prepared_statements WHERE statement = $1", []any{insertKinds}, &n, &names); err != nil {
		t.Fatal(err)
	}
	return n, names
}

func TestExecPreparedWritesWhatExecWrites(t *testing.T) {
	ctx := t.Context()
	db := onePool(t, nil)
	err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		q := db.In(tx)
		// "pgx" through pgx's Exec alone; "fast" and "mixed" (bytes for
		// jsonb, which pgx sends as JSON text) through the statement
		// ExecPrepared prepared.
		if _, err := q.Exec(ctx, insertKinds+" -- pgx", kindsArgs("pgx", nil)...); err != nil {
			return err
		}
		if n, err := sqldb.ExecPrepared(ctx, q, insertKinds, kindsArgs("fast", nil)...); err != nil || n != 1 {
			return errors.Join(err, errors.New("fast: not one row"))
		}
		if n, names := prepared(t, q); n != 1 || !strings.HasPrefix(names, "stmt_") {
			t.Errorf("prepared statements %q, want the one ExecPrepared prepared", names)
		}
		if _, err := sqldb.ExecPrepared(ctx, q, insertKinds, kindsArgs("mixed", []byte(`{"a": 1}`))...); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, insertKinds+" -- pgx", kindsArgs("pgx-mixed", []byte(`{"a": 1}`))...); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want, got := row(t, db, "pgx"), row(t, db, "fast"); got != want {
		t.Errorf("ExecPrepared wrote\n%s\npgx wrote\n%s", got, want)
	}
	if want, got := row(t, db, "pgx-mixed"), row(t, db, "mixed"); got != want {
		t.Errorf("ExecPrepared wrote\n%s\npgx wrote\n%s", got, want)
	}
}

func TestExecPreparedErrors(t *testing.T) {
	ctx := t.Context()
	db := onePool(t, nil)
	t.Run("a value its column cannot hold", func(t *testing.T) {
		args := kindsArgs("big", nil)
		args[6] = int64(1 << 40) // into integer
		err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
			_, err := sqldb.ExecPrepared(ctx, db.In(tx), insertKinds, args...)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "1099511627776") {
			t.Fatalf("got %v, want pgx's error naming the value", err)
		}
	})
	t.Run("a transaction that ended", func(t *testing.T) {
		var q sqldb.Querier
		if err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error { q = db.In(tx); return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := sqldb.ExecPrepared(ctx, q, insertKinds, kindsArgs("late", nil)...); !errors.Is(err, pgx.ErrTxClosed) {
			t.Fatalf("got %v, want pgx.ErrTxClosed", err)
		}
		var n int
		if err := sqldb.QueryRow(ctx, db, "SELECT count(*) FROM kinds WHERE k = 'late'", nil, &n); err != nil || n != 0 {
			t.Fatalf("%d rows written after the transaction (%v)", n, err)
		}
	})
	t.Run("a statement the server dropped", func(t *testing.T) {
		exec := func(k string, before string) error {
			return sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
				if before != "" {
					if _, err := tx.Exec(ctx, before); err != nil {
						return err
					}
				}
				_, err := sqldb.ExecPrepared(ctx, db.In(tx), insertKinds, kindsArgs(k, nil)...)
				return err
			})
		}
		if err := exec("d1", ""); err != nil {
			t.Fatal(err)
		}
		var pe *pgconn.PgError
		if err := exec("d2", "DEALLOCATE ALL"); !errors.As(err, &pe) || pe.Code != "26000" {
			t.Fatalf("got %v, want the server's invalid_sql_statement_name", err)
		}
		if err := exec("d3", ""); err != nil {
			t.Fatalf("after the server dropped the statement: %v", err)
		}
	})
}

// queries records the statements a pgx tracer sees.
type queries []string

func (q *queries) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	*q = append(*q, d.SQL)
	return ctx
}

func (q *queries) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func TestExecPreparedLeavesPgxItsSettings(t *testing.T) {
	ctx := t.Context()
	var seen queries
	for _, c := range []struct {
		name     string
		set      func(*pgxpool.Config)
		prepared int
	}{
		{"a tracer sees the statement", func(c *pgxpool.Config) { c.ConnConfig.Tracer = &seen }, 1},
		{"the simple protocol prepares nothing", func(c *pgxpool.Config) {
			c.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := onePool(t, c.set)
			err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
				q := db.In(tx)
				if _, err := sqldb.ExecPrepared(ctx, q, insertKinds, kindsArgs("k", nil)...); err != nil {
					return err
				}
				if n, _ := prepared(t, q); n != c.prepared {
					t.Errorf("%d statements prepared, want %d", n, c.prepared)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if row(t, db, "k") == "" {
				t.Error("no row")
			}
		})
	}
	if !strings.Contains(strings.Join(seen, "\n"), insertKinds) {
		t.Errorf("the tracer saw %q, not the statement", seen)
	}
}
