package consumer_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// idemBenchRecords is how many events one op of BenchmarkIdempotent
// consumes.
const idemBenchRecords = 100_000

var idemBenchPlaced = bus.Event[BenchOrder]("idem-bench", func(o *BenchOrder) string { return o.CustomerID }, bus.Namespace("com.example.bench"))

var idemBench struct {
	once sync.Once
	err  error
}

// idemBenchSetup produces the events of BenchmarkIdempotent once, on the
// benchmarks' stack, to 8 partitions.
func idemBenchSetup(b *testing.B) {
	b.Helper()
	benchSetup(b)
	idemBench.once.Do(func() {
		idemBench.err = fillBench(context.Background(), idemBenchPlaced, 8, idemBenchRecords, strings.Repeat("gift wrap ", 5))
	})
	if idemBench.err != nil {
		b.Fatal(idemBench.err)
	}
}

// BenchmarkIdempotent consumes 100,000 events with a HandleTx handler
// that inserts one row, on PostgreSQL (durable commits, pgx pool) and
// SQLite (WAL, synchronous=FULL): with Batch(500), and with one
// transaction per message. 8 partitions, so 8 transactions at most run at
// once (Concurrency, 8 by default). Each op uses a new group and a new database;
// records/s counts handled events from the first to the last.
//
//	go test ./consumer -run '^$' -bench Idempotent -benchtime 1x
func BenchmarkIdempotent(b *testing.B) {
	idemBenchSetup(b)
	// batch-no-insert: the handler writes nothing, which leaves what evbus
	// itself costs (the claim of the processed rows, begin and commit).
	// batch-handler: HandleBatchTx, the handler's rows in one statement.
	modes := []struct {
		name   string
		opts   []consumer.HandlerOption
		insert bool
		whole  bool
	}{
		{"batch", []consumer.HandlerOption{consumer.Batch(500)}, true, false},
		{"batch-handler", []consumer.HandlerOption{consumer.Batch(500)}, true, true},
		{"batch-handler-5000", []consumer.HandlerOption{consumer.Batch(5000)}, true, true},
		{"per-message", nil, true, false},
		{"batch-no-insert", []consumer.HandlerOption{consumer.Batch(500)}, false, false},
	}
	for _, m := range modes {
		b.Run("postgres/"+m.name, func(b *testing.B) {
			benchLoop(b, func(b *testing.B, group string) *span {
				pool, err := pgxpool.New(context.Background(), evbustest.PostgresDatabase(b))
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Close()
				return benchTx(b, group, sqldb.Pgx(pool), func(tx pgx.Tx) sqldb.Querier { return sqldb.Pgx(pool).In(tx) }, m.opts, m.insert, m.whole)
			})
		})
	}
	for _, m := range modes {
		b.Run("sqlite/"+m.name, func(b *testing.B) {
			benchLoop(b, func(b *testing.B, group string) *span {
				db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer db.Pool().Close()
				return benchTx(b, group, db, db.In, m.opts, m.insert, m.whole)
			})
		})
	}
}

func benchTx[Tx any](b *testing.B, group string, db sqldb.DB[Tx], in func(Tx) sqldb.Querier, opts []consumer.HandlerOption, write, whole bool) *span {
	ctx := context.Background()
	p, err := consumer.NewProcessed(db)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	d := db.Dialect()
	if _, err := db.Exec(ctx, "CREATE TABLE orders (order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, cents BIGINT NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	insert := "INSERT INTO orders (order_id, customer_id, cents) VALUES (" + d.Arg(1) + ", " + d.Arg(2) + ", " + d.Arg(3) + ")"
	s := newSpan(idemBenchRecords)
	c := benchConsumer(b, group, consumer.Observe(func(o consumer.Outcome) {
		if o.Result == consumer.Handled {
			s.record()
		}
	}))
	if whole {
		consumer.HandleBatchTx(c, idemBenchPlaced, p, func(ctx context.Context, tx Tx, evs []*BenchOrder, ms []bus.Meta) error {
			q, args := insertMany(d, evs)
			_, err := in(tx).Exec(ctx, q, args...)
			return err
		}, opts...)
	} else {
		consumer.HandleTx(c, idemBenchPlaced, p, func(ctx context.Context, tx Tx, ev *BenchOrder, m bus.Meta) error {
			if !write {
				return nil
			}
			_, err := in(tx).Exec(ctx, insert, ev.OrderID, ev.CustomerID, ev.Cents)
			return err
		}, opts...)
	}
	return consumeAll(b, c, s)
}

// insertMany is the batch handler's one statement for its rows: on
// PostgreSQL, arrays unnested into rows (one statement text whatever the
// batch size, so pgx prepares it once); on SQLite, one VALUES row each.
func insertMany(d sqldb.Dialect, evs []*BenchOrder) (string, []any) {
	if d.Name() == sqldb.Postgres.Name() {
		ids, customers, cents := make([]string, len(evs)), make([]string, len(evs)), make([]int64, len(evs))
		for i, ev := range evs {
			ids[i], customers[i], cents[i] = ev.OrderID, ev.CustomerID, ev.Cents
		}
		return "INSERT INTO orders (order_id, customer_id, cents) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])", []any{ids, customers, cents}
	}
	var b strings.Builder
	b.WriteString("INSERT INTO orders (order_id, customer_id, cents) VALUES ")
	args := make([]any, 0, 3*len(evs))
	for i, ev := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?)")
		args = append(args, ev.OrderID, ev.CustomerID, ev.Cents)
	}
	return b.String(), args
}
