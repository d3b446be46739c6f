package sqldb_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

func TestMain(m *testing.M) { evbustest.RunWithPostgreSQL(m) }

// each runs f against every database and driver evbus supports.
func each(t *testing.T, f func(t *testing.T, q sqldb.Querier, inTx func(fn func(q sqldb.Querier) error) error, d sqldb.Dialect)) {
	t.Run("pgx", func(t *testing.T) {
		pool, err := pgxpool.New(t.Context(), evbustest.PostgresDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		db := sqldb.Pgx(pool)
		f(t, db, func(fn func(sqldb.Querier) error) error {
			return sqldb.InTx(t.Context(), db, func(tx pgx.Tx) error { return fn(db.In(tx)) })
		}, db.Dialect())
	})
	t.Run("postgres-stdlib", func(t *testing.T) {
		pool, err := sql.Open("pgx", evbustest.PostgresDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		db := sqldb.SQL(pool, sqldb.Postgres)
		f(t, db, func(fn func(sqldb.Querier) error) error {
			return sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error { return fn(db.In(tx)) })
		}, db.Dialect())
	})
	t.Run("sqlite", func(t *testing.T) {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Pool().Close() })
		f(t, db, func(fn func(sqldb.Querier) error) error {
			return sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error { return fn(db.In(tx)) })
		}, db.Dialect())
	})
}

func TestTransactionsCommitOrRollBack(t *testing.T) {
	each(t, func(t *testing.T, q sqldb.Querier, inTx func(func(sqldb.Querier) error) error, d sqldb.Dialect) {
		ctx := t.Context()
		if _, err := q.Exec(ctx, "CREATE TABLE t ("+d.IdentityColumn("id")+", at "+d.TimeType()+" NOT NULL, b "+d.BytesType()+")"); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 11, 22, 10, 11, 12, 123456000, time.UTC)
		insert := "INSERT INTO t (at, b) VALUES (" + d.Arg(1) + ", " + d.Arg(2) + ")"
		if err := inTx(func(q sqldb.Querier) error {
			_, err := q.Exec(ctx, insert, d.Time(at), []byte{0, 1, 2})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if err := inTx(func(q sqldb.Querier) error {
			if _, err := q.Exec(ctx, insert, d.Time(at.Add(time.Hour)), []byte{9}); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("InTx returned %v, want fn's error", err)
		}
		func() {
			defer func() { _ = recover() }()
			_ = inTx(func(q sqldb.Querier) error {
				if _, err := q.Exec(ctx, insert, d.Time(at.Add(2*time.Hour)), []byte{8}); err != nil {
					return err
				}
				panic("handler bug")
			})
			t.Fatal("the panic did not go on")
		}()
		// A savepoint undoes its part only.
		if err := inTx(func(q sqldb.Querier) error {
			if _, err := q.Exec(ctx, "SAVEPOINT s"); err != nil {
				return err
			}
			if _, err := q.Exec(ctx, insert, d.Time(at), []byte{7}); err != nil {
				return err
			}
			_, err := q.Exec(ctx, "ROLLBACK TO SAVEPOINT s")
			return err
		}); err != nil {
			t.Fatal(err)
		}

		rows, err := q.Query(ctx, "SELECT at, b FROM t ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var (
				tm sqldb.Time
				b  []byte
			)
			if err := rows.Scan(&tm, &b); err != nil {
				t.Fatal(err)
			}
			if !tm.Valid || !tm.Equal(at) {
				t.Errorf("time read back as %v, want %v", tm.Time, at)
			}
			got = append(got, string(b))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != "\x00\x01\x02" {
			t.Fatalf("rows = %q, want only the committed one", got)
		}
		var n int64
		if err := sqldb.QueryRow(ctx, q, "SELECT count(*) FROM t WHERE at < "+d.Arg(1), []any{d.Time(at.Add(time.Microsecond))}, &n); err != nil || n != 1 {
			t.Fatalf("times do not compare as instants: n=%d err=%v", n, err)
		}
		if err := sqldb.QueryRow(ctx, q, "SELECT id FROM t WHERE id < 0", nil, &n); !errors.Is(err, sqldb.ErrNoRows) {
			t.Fatalf("QueryRow of no row: %v, want ErrNoRows", err)
		}
	})
}

func TestValidIdentifier(t *testing.T) {
	for _, ok := range []string{"outbox", "evbus_processed", "_x1", "events.outbox", "A23456789012345678901234567890123456789012345678901234567890123"} {
		if err := sqldb.ValidIdentifier(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1outbox", "out box", "outbox;DROP TABLE x", `"outbox"`, "a.b.c", "outbox--", "A234567890123456789012345678901234567890123456789012345678901234", "ünïcode", ".outbox", "outbox."} {
		err := sqldb.ValidIdentifier(bad)
		if !errors.Is(err, sqldb.ErrInvalidIdentifier) {
			t.Errorf("%q accepted (err %v)", bad, err)
		}
	}
}

// TestMigrateConcurrently: service instances starting together on a new
// PostgreSQL database all migrate it without an error, and the migration's
// comment lines and statements are run as written.
func TestMigrateConcurrently(t *testing.T) {
	const ddl = `-- a table and its index
CREATE TABLE IF NOT EXISTS things (id bigint PRIMARY KEY, name text NOT NULL);
-- the index; its comment has a ; in it
CREATE INDEX IF NOT EXISTS things_name ON things (name);
`
	url := evbustest.PostgresDatabase(t)
	const instances = 8
	errs := make(chan error, instances)
	for range instances {
		go func() {
			pool, err := pgxpool.New(t.Context(), url)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- sqldb.Migrate(t.Context(), sqldb.Pgx(pool), ddl)
		}()
	}
	for range instances {
		if err := <-errs; err != nil {
			t.Errorf("Migrate: %v", err)
		}
	}
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM pg_indexes WHERE tablename = 'things' AND indexname = 'things_name'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("index things_name: %d, %v", n, err)
	}
}
