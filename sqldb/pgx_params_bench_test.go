package sqldb_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

type benchOrder struct {
	OrderID string `avro:"order_id"`
	Seq     int64  `avro:"seq"`
}

// plainPgx is a PgxDB whose transactions' queriers lack ExecPrepared, so
// that sqldb.ExecPrepared runs pgx's Exec: the statement prepared and
// cached by pgx, its arguments encoded by pgx.
type plainPgx struct{ *sqldb.PgxDB }

func (d plainPgx) In(tx pgx.Tx) sqldb.Querier { return struct{ sqldb.Querier }{d.PgxDB.In(tx)} }

// BenchmarkOutboxExecPath: one business transaction of an outbox Exec
// (BEGIN, the order row and its event in one statement, COMMIT) with the
// statement's arguments encoded by ExecPrepared ("evbus") and by pgx
// ("pgx"), the two taking turns every 100 transactions so that the
// machine's drifts fall on both alike; b.N transactions each. cpu-ns is
// this process's CPU per transaction; evbus/pgx their ratio. Run:
//
//	go test -c -o /tmp/sqldb.test ./sqldb
//	cd sqldb && /tmp/sqldb.test -test.run '^$' -test.bench 'OutboxExecPath|Params' -test.benchtime 2000x -test.count 8
func BenchmarkOutboxExecPath(b *testing.B) {
	ctx := context.Background()
	// The registry is needed only to build the encoder: the stack stops
	// before the rounds, so that its CPU is not counted.
	stack, err := devstack.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	ev := bus.Event[benchOrder]("orders", func(e *benchOrder) string { return e.OrderID }, bus.Namespace("com.example.orders"))
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/orders-service"), bus.Types(ev))
	if err != nil {
		b.Fatal(err)
	}
	if err := stack.Close(); err != nil {
		b.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, evbustest.PostgresDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	db := sqldb.Pgx(pool)
	if _, err := db.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY, customer text NOT NULL, cents bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	dbs := [2]sqldb.DB[pgx.Tx]{db, plainPgx{db}}
	var obs [2]*outbox.Outbox[pgx.Tx]
	for v, d := range dbs {
		if obs[v], err = outbox.New(d, enc, outbox.Notify(false)); err != nil {
			b.Fatal(err)
		}
	}
	if err := obs[0].Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	tx := func(v, i int) {
		id := strconv.Itoa(v) + "-" + strconv.Itoa(i)
		if err := sqldb.InTx(ctx, dbs[v], func(tx pgx.Tx) error {
			return obs[v].Exec(ctx, tx, "INSERT INTO orders (id, customer, cents) VALUES ($1, $2, $3)", []any{id, "c-1", int64(i)}, benchOrder{OrderID: id, Seq: int64(i)})
		}); err != nil {
			b.Fatal(err)
		}
	}
	tx(0, -1) // both statements prepared on the pool's connection
	tx(1, -1)
	const turn = 100
	var cpu [2]time.Duration
	var done [2]int
	b.ResetTimer()
	for n := 0; done[0] < b.N || done[1] < b.N; n++ {
		v := n % 2
		to := min(done[v]+turn, b.N)
		start := cputime.Process()
		for i := done[v]; i < to; i++ {
			tx(v, i)
		}
		cpu[v] += cputime.Process() - start
		done[v] = to
	}
	b.ReportMetric(float64(cpu[0])/float64(b.N), "evbus-cpu-ns/op")
	b.ReportMetric(float64(cpu[1])/float64(b.N), "pgx-cpu-ns/op")
	b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "evbus/pgx")
}
