package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

const (
	idemTopic = "bench-idempotent"
	// idemRecords is how many records one op consumes, each with one
	// effect written to PostgreSQL.
	idemRecords = 20_000
	// idemPartitions bounds the concurrency of both implementations:
	// evbus runs the partitions in parallel, Watermill's Kafka subscriber
	// hands out one message per partition at a time.
	idemPartitions = 8
)

var idemOrder = bus.Event[benchOrder](idemTopic, func(o *benchOrder) string { return o.OrderID }, bus.Schema(benchOrderAvsc))

// idemEnv holds idemRecords records on idemPartitions partitions.
type idemEnv struct{ *records }

func startIdemEnv(b *testing.B) *idemEnv {
	return &idemEnv{publishRecords(b, idemOrder, idemPartitions, idemRecords)}
}

// BenchmarkIdempotent consumes idemRecords records, each op with a new
// consumer group and a new database, writing one row per record (the
// effect) to PostgreSQL (durable commits, a pgx pool of poolConns):
//
//	impl=evbus                consumer.HandleBatchTx with Batch(500): the processed-message
//	                          claims and the handler's rows (one INSERT ... unnest) in one
//	                          transaction per batch
//	impl=watermill            watermill-kafka Subscriber + Router + middleware.Deduplicator on
//	                          ce_id with Watermill's only repository, in memory
//	                          (NewMapExpiringKeyRepository); the handler decodes and INSERTs the
//	                          row (its own commit)
//	impl=watermill-pgdedup    the same with a hand-written ExpiringKeyRepository on PostgreSQL
//	                          (watermill-sql v3.1.0 has none): INSERT ... ON CONFLICT DO NOTHING,
//	                          its own commit before the handler's
//
//	effects/s      first effect committed to the last (steady state)
//	sec/op         from creating the consumer to the last effect (joining included)
//	cpu-ns/effect  CPU time of the process, per effect
//
// The parent prints the ratios of its own run.
func BenchmarkIdempotent(b *testing.B) {
	e := startIdemEnv(b)
	impls := []struct {
		name string
		run  func(*testing.B, string, *pgxpool.Pool) *tally
	}{
		{"evbus", e.evbus},
		{"watermill", e.watermill(memKeys)},
		{"watermill-pgdedup", e.watermill(pgKeys)},
	}
	got := map[string]float64{}
	for _, im := range impls {
		b.Run("impl="+im.name, func(b *testing.B) { got[im.name] = e.run(b, im.run) })
	}
	fmt.Printf("# BenchmarkIdempotent effects/s: evbus/watermill %s, evbus/watermill-pgdedup %s\n",
		ratio(got, "evbus", "watermill"), ratio(got, "evbus", "watermill-pgdedup"))
}

func (e *idemEnv) run(b *testing.B, consume func(*testing.B, string, *pgxpool.Pool) *tally) float64 {
	var steady, cpu time.Duration
	for range b.N {
		b.StopTimer()
		pool := newPool(b, newDatabase(b))
		if _, err := pool.Exec(b.Context(), ordersDDL); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := cputime.Process()
		t := consume(b, fmt.Sprintf("bench-%d", e.groups.Add(1)), pool)
		b.StopTimer()
		cpu += time.Duration(t.cpu.Load()) - cpu0
		steady += t.steady()
		var n, sum int64
		if err := pool.QueryRow(b.Context(), "SELECT count(*), coalesce(sum(cents), 0) FROM orders").Scan(&n, &sum); err != nil {
			b.Fatal(err)
		}
		if n != idemRecords || sum != e.sum {
			b.Fatalf("%d effects summing to %d, want %d summing to %d", n, sum, idemRecords, e.sum)
		}
	}
	n := float64(b.N * idemRecords)
	rate := n / steady.Seconds()
	b.ReportMetric(rate, "effects/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/effect")
	return rate
}

// evbus: the idempotent batch handler; the effects are counted when their
// transaction committed (Observe reports Handled after the commit).
func (e *idemEnv) evbus(b *testing.B, group string, pool *pgxpool.Pool) *tally {
	ctx := context.Background()
	db := sqldb.Pgx(pool)
	p, err := consumer.NewProcessed(db)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	t := newTally(idemRecords)
	c, err := consumer.New(group, e.reg,
		consumer.Kafka(kgo.SeedBrokers(e.brokers...)),
		consumer.Logger(slog.New(slog.DiscardHandler)),
		consumer.Observe(func(o consumer.Outcome) {
			if o.Result == consumer.Handled {
				t.add(0)
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	consumer.HandleBatchTx(c, idemOrder, p, func(ctx context.Context, tx pgx.Tx, evs []*benchOrder, _ []bus.Meta) error {
		ids, customers, cents := make([]string, len(evs)), make([]string, len(evs)), make([]int64, len(evs))
		for i, ev := range evs {
			ids[i], customers[i], cents[i] = ev.OrderID, ev.CustomerID, ev.Cents
		}
		_, err := tx.Exec(ctx, "INSERT INTO orders (order_id, customer_id, cents) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])", ids, customers, cents)
		return err
	}, consumer.Batch(500))
	stop := runUntil(b, t, func() error { return c.Run(ctx) }, func() error { return c.Close(ctx) })
	b.StopTimer()
	stop()
	return t
}

// keyRepository makes the Deduplicator's repository of one op.
type keyRepository func(b *testing.B, pool *pgxpool.Pool) middleware.ExpiringKeyRepository

// memKeys is Watermill's in-memory repository: lost on restart, and not
// shared between the replicas of a service.
func memKeys(b *testing.B, _ *pgxpool.Pool) middleware.ExpiringKeyRepository {
	r, err := middleware.NewMapExpiringKeyRepository(time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// pgKeyRepository is what a Watermill user writes to keep the keys in
// PostgreSQL. The Deduplicator asks before the handler runs and gives it
// no transaction, so the key commits on its own: a crash between the two
// commits loses the effect (the redelivered message is then a
// "duplicate"). Expired keys are never deleted here.
type pgKeyRepository struct {
	pool   *pgxpool.Pool
	window time.Duration
}

func pgKeys(b *testing.B, pool *pgxpool.Pool) middleware.ExpiringKeyRepository {
	if _, err := pool.Exec(b.Context(), "CREATE TABLE watermill_dedup (key text PRIMARY KEY, expires_at timestamptz NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	return pgKeyRepository{pool: pool, window: time.Hour}
}

func (r pgKeyRepository) IsDuplicate(ctx context.Context, key string) (bool, error) {
	tag, err := r.pool.Exec(ctx, "INSERT INTO watermill_dedup (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE watermill_dedup.expires_at < now()",
		key, time.Now().Add(r.window))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 0, nil
}

// watermill: a Router with the Deduplicator (keyed on ce_id, as evbus)
// in front of a handler that decodes the payload and inserts the row.
func (e *idemEnv) watermill(keys keyRepository) func(*testing.B, string, *pgxpool.Pool) *tally {
	return func(b *testing.B, group string, pool *pgxpool.Pool) *tally {
		sub := e.watermillSubscriber(b, group)
		r, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
		if err != nil {
			b.Fatal(err)
		}
		// Timeout set: left zero, the Deduplicator gives the repository
		// 5 ms (not the minute its documentation names), too little for a
		// durable commit.
		dedup := &middleware.Deduplicator{
			KeyFactory: middleware.NewMessageHasherFromMetadataField(wire.HeaderID),
			Repository: keys(b, pool),
			Timeout:    time.Minute,
		}
		r.AddMiddleware(dedup.Middleware)
		t := newTally(idemRecords)
		var once sync.Once
		r.AddConsumerHandler("effects", idemTopic, sub, func(m *message.Message) error {
			var ev benchOrder
			if err := handDecode(e.schemaID, m.Payload, &ev); err != nil {
				once.Do(func() { b.Error(err) })
				return err
			}
			if _, err := pool.Exec(m.Context(), insertOrder, ev.OrderID, ev.CustomerID, ev.Cents); err != nil {
				return err
			}
			t.add(0)
			return nil
		})
		stop := runUntil(b, t, func() error { return r.Run(context.Background()) }, r.Close)
		b.StopTimer()
		stop()
		return t
	}
}
