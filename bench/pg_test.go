package bench

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/evbustest"
)

// TestMain stops the PostgreSQL server the benchmarks started, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if pg.srv != nil {
		if err := pg.srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// pg is the one PostgreSQL server (durable commits) of a run, started by
// the first benchmark that needs it (evbustest.StartPostgreSQL: the
// system's binaries, or EVBUS_TEST_POSTGRES_URL). Every implementation
// of a comparison gets its own fresh database on it.
var pg struct {
	once sync.Once
	srv  *evbustest.PostgreSQL
	err  error
}

// poolConns is the connection limit of every pool, evbus's and
// Watermill's alike.
const poolConns = 8

// newDatabase creates an empty database and returns its URL.
func newDatabase(b *testing.B) string {
	b.Helper()
	pg.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		pg.srv, pg.err = evbustest.StartPostgreSQL(ctx)
	})
	if pg.err != nil {
		b.Fatalf("PostgreSQL: %v", pg.err)
	}
	u, err := pg.srv.CreateDatabase(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// newPool opens a pgx pool of poolConns connections on url, closed when
// b ends.
func newPool(b *testing.B, url string) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = poolConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}
