package evbustest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/evbustest"
)

func TestMain(m *testing.M) { evbustest.RunWithPostgreSQL(m) }

func TestPostgresDatabaseIsFreshAndSurvivesRestart(t *testing.T) {
	ctx := t.Context()
	url := evbustest.PostgresDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if other := evbustest.PostgresDatabase(t); other == url {
		t.Fatalf("two calls gave the same database %s", url)
	}

	pg := evbustest.PostgresServer(t)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	if c, err := pgx.Connect(short, url); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped server")
	}
	cancel()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT n FROM t").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after restart: n=%d err=%v, want the committed 42", n, err)
	}
}
