package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
)

// TestClassifyPostgres causes each class of error on a real PostgreSQL,
// through pgx and through database/sql, and classifies it.
func TestClassifyPostgres(t *testing.T) {
	ctx := context.Background()
	url := evbustest.PostgresDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	std, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	pg, lib := sqldb.Pgx(pool), sqldb.SQL(std, sqldb.Postgres)
	for _, stmt := range []string{
		"CREATE TABLE parent (id int PRIMARY KEY)",
		"CREATE TABLE child (id int PRIMARY KEY, parent int NOT NULL REFERENCES parent DEFERRABLE INITIALLY DEFERRED, n int CHECK (n >= 0))",
		"CREATE TABLE locked (id int PRIMARY KEY)",
		"INSERT INTO locked VALUES (1)",
	} {
		if _, err := pg.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	raise := func(code string) string {
		return "DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '" + code + "'; END $$"
	}
	for _, db := range []struct {
		name string
		q    sqldb.Querier
		inTx func(fn func(q sqldb.Querier) error) error
	}{
		{"pgx", pg, func(fn func(sqldb.Querier) error) error {
			return sqldb.InTx(ctx, pg, func(tx pgx.Tx) error { return fn(pg.In(tx)) })
		}},
		{"stdlib", lib, func(fn func(sqldb.Querier) error) error {
			return sqldb.InTx(ctx, lib, func(tx *sql.Tx) error { return fn(lib.In(tx)) })
		}},
	} {
		exec := func(stmt string) func() error {
			return func() error { _, err := db.q.Exec(ctx, stmt); return err }
		}
		cases := []struct {
			name string
			err  func() error
			want sqldb.Class
		}{
			{"division by zero (22012)", exec("SELECT 1/0"), sqldb.Refused},
			{"invalid UTF-8 (22021)", func() error { _, err := db.q.Exec(ctx, "SELECT $1::text", "a\xffb"); return err }, sqldb.Refused},
			{"check constraint (23514)", exec("INSERT INTO child VALUES (1, 1, -1)"), sqldb.Refused},
			{"deferred foreign key at COMMIT (23503)", func() error {
				return db.inTx(func(q sqldb.Querier) error { _, err := q.Exec(ctx, "INSERT INTO child VALUES (2, 42, 0)"); return err })
			}, sqldb.Refused},
			{"a failed statement swallowed, then COMMIT", func() error {
				return db.inTx(func(q sqldb.Querier) error { _, _ = q.Exec(ctx, "SELECT 1/0"); return nil })
			}, sqldb.Aborted},
			{"a statement after a failed one (25P02)", func() error {
				return db.inTx(func(q sqldb.Querier) error {
					_, _ = q.Exec(ctx, "SELECT 1/0")
					_, err := q.Exec(ctx, "SELECT 1")
					return err
				})
			}, sqldb.Aborted},
			{"serialization failure (40001)", exec(raise("40001")), sqldb.Conflict},
			{"deadlock (40P01)", exec(raise("40P01")), sqldb.Conflict},
			{"lock not available (55P03)", func() error {
				hold, err := pool.Begin(ctx)
				if err != nil {
					return err
				}
				defer hold.Rollback(ctx)
				if _, err := hold.Exec(ctx, "SELECT * FROM locked FOR UPDATE"); err != nil {
					return err
				}
				_, err = db.q.Exec(ctx, "SELECT * FROM locked FOR UPDATE NOWAIT")
				return err
			}, sqldb.Conflict},
			{"too many connections (53300)", exec(raise("53300")), sqldb.Unavailable},
			{"admin shutdown (57P01)", exec(raise("57P01")), sqldb.Unavailable},
			{"read-only standby (25006)", exec(raise("25006")), sqldb.Unavailable},
			{"index row too large (54000)", exec(raise("54000")), sqldb.Refused},
			{"undefined table (42P01)", exec("SELECT * FROM nowhere"), sqldb.Unclassified},
			{"cancelled context", func() error {
				c, cancel := context.WithCancel(ctx)
				cancel()
				_, err := db.q.Exec(c, "SELECT 1")
				return err
			}, sqldb.Unclassified},
		}
		for _, c := range cases {
			err := c.err()
			if err == nil {
				t.Errorf("%s, %s: no error", db.name, c.name)
				continue
			}
			if got := sqldb.Classify(err); got != c.want {
				t.Errorf("%s, %s: %v is %s, want %s", db.name, c.name, err, got, c.want)
			}
		}
	}
	// A backend terminated under its client: the client's next statement.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	if _, err = conn.Exec(ctx, "SELECT 1"); sqldb.Classify(err) != sqldb.Unavailable {
		t.Errorf("a statement on a terminated connection: %v is %s, want unavailable", err, sqldb.Classify(err))
	}
	// A server that is not there.
	down, err := pgxpool.New(ctx, "postgres://evbus@127.0.0.1:1/x?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := down.Ping(ctx); sqldb.Classify(err) != sqldb.Unavailable {
		t.Errorf("no server: %v is %s, want unavailable", err, sqldb.Classify(err))
	}
	if c := sqldb.Classify(fmt.Errorf("a handler's own: %w", errors.New("no stock"))); c != sqldb.Unclassified {
		t.Errorf("an error not of the database: %s", c)
	}
}

// TestClassifySQLite causes SQLite's errors and classifies them.
func TestClassifySQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	for _, stmt := range []string{"CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0))", "INSERT INTO t VALUES (1, 1)"} {
		if _, err := a.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := a.BeginTx(ctx, nil) // holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	_, busy := b.BeginTx(ctx, nil)
	tx.Rollback()
	for _, c := range []struct {
		name string
		err  error
		want sqldb.Class
	}{
		{"busy", busy, sqldb.Conflict},
		{"unique", exec(ctx, a, "INSERT INTO t VALUES (1, 1)"), sqldb.Refused},
		{"check", exec(ctx, a, "INSERT INTO t VALUES (2, -1)"), sqldb.Refused},
		{"not null", exec(ctx, a, "INSERT INTO t VALUES (3, NULL)"), sqldb.Refused},
		{"no such table", exec(ctx, a, "SELECT * FROM nowhere"), sqldb.Unclassified},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if got := sqldb.Classify(c.err); got != c.want {
			t.Errorf("%s: %v is %s, want %s", c.name, c.err, got, c.want)
		}
	}
}

func exec(ctx context.Context, db *sql.DB, stmt string) error {
	_, err := db.ExecContext(ctx, stmt)
	return err
}
