package outbox_test

// Benchmarks on PostgreSQL 15 (durable commits) and the embedded broker.
// Figures are for people to read; nothing is asserted. Run:
//
//	go test ./outbox -run '^$' -bench BenchmarkRelayThroughput -benchtime 100000x -count 5
//	go test ./outbox -run '^$' -bench BenchmarkLatency -benchtime 1x
//	go test ./outbox -run '^$' -bench BenchmarkEnqueue -benchtime 4000x
//	go test ./outbox -run '^$' -bench BenchmarkExecGo -benchmem -count 5

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

// BenchmarkRelayThroughput: b.N committed rows, drained into the embedded
// broker; events/s from the start to an empty backlog. "bare" is the
// ceiling on this machine: the simplest loop a person would write (select
// 500 rows in id order, produce them, wait for the acknowledgements,
// delete them), without election, order guards, failure handling or
// telemetry; "relay" is the Relay with DeleteOnPublish, and "relay-kept"
// the Relay with its default Retention, which moves each published row to
// the published rows' table.
func BenchmarkRelayThroughput(b *testing.B) {
	k := startKafka(b)
	run := func(name string, opts []outbox.Option, drain func(b *testing.B, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx])) {
		b.Run(name, func(b *testing.B) {
			db, ob := filledOutbox(b, k, b.N, opts...)
			b.ResetTimer()
			cpu := startCPU(b, db)
			start := time.Now()
			drain(b, db, ob)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			cpu.report(b, b.N, "event")
			if n := backlog(b, ob); n != 0 {
				b.Fatalf("%d rows left", n)
			}
		})
	}
	relay := func(b *testing.B, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx]) {
		runRelay(b, ob, k.cl)
		// Not Status: counting the backlog every few ms would cost
		// PostgreSQL more than the relay does.
		for drained := false; !drained; time.Sleep(5 * time.Millisecond) {
			if err := db.Pool().QueryRow(context.Background(), "SELECT NOT EXISTS (SELECT 1 FROM evbus_outbox)").Scan(&drained); err != nil {
				b.Fatal(err)
			}
		}
	}
	deleted := []outbox.Option{outbox.DeleteOnPublish()}
	run("bare", deleted, func(b *testing.B, db *sqldb.PgxDB, _ *outbox.Outbox[pgx.Tx]) { bareRelay(b, db, k.cl) })
	run("relay", deleted, relay)
	run("relay-kept", nil, relay)
}

// filledOutbox returns an outbox made with opts holding n committed rows
// (fill).
func filledOutbox(b *testing.B, k kafka, n int, opts ...outbox.Option) (*sqldb.PgxDB, *outbox.Outbox[pgx.Tx]) {
	db := pgxDB(b, evbustest.PostgresDatabase(b))
	ob := newOutbox(b, db, k.enc, opts...)
	fill(b, db, ob, n)
	return db, ob
}

// fill commits n rows over 1,000 keys into ob, a thousand a transaction.
func fill(tb testing.TB, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx], n int) {
	for i := 0; i < n; i += 1000 {
		evs := make([]any, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			evs = append(evs, OrderEvent{OrderID: key(j % 1000), Seq: int64(j)})
		}
		enqueue(tb, db, ob, evs...)
	}
}

// bareRelay drains the outbox table serially, 500 rows at a time, until
// it is empty.
func bareRelay(b *testing.B, db *sqldb.PgxDB, cl *kgo.Client) {
	ctx := context.Background()
	for {
		rows, err := db.Pool().Query(ctx, "SELECT id, topic, key, value, headers, created_at FROM evbus_outbox WHERE shard = 0 ORDER BY id LIMIT 500")
		if err != nil {
			b.Fatal(err)
		}
		var ids []int64
		var recs []*kgo.Record
		for rows.Next() {
			var id int64
			var hs []byte
			r := &kgo.Record{}
			if err := rows.Scan(&id, &r.Topic, &r.Key, &r.Value, &hs, &r.Timestamp); err != nil {
				b.Fatal(err)
			}
			if r.Headers, err = wire.AppendParsedHeadersColumn(nil, hs); err != nil {
				b.Fatal(err)
			}
			ids, recs = append(ids, id), append(recs, r)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if len(ids) == 0 {
			return
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(ctx, "DELETE FROM evbus_outbox WHERE shard = 0 AND id = ANY($1)", ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLatency: commit -> Kafka acknowledgement, at an offered load,
// with wake-ups (NOTIFY, at most once every few milliseconds) and with
// polling only (every 100 ms). Each variant offers its load for 3 s whatever b.N.
func BenchmarkLatency(b *testing.B) {
	for _, rate := range []int{1000, 20} {
		for _, notify := range []bool{true, false} {
			name := fmt.Sprintf("rate=%d/wake=%v", rate, notify)
			b.Run(name, func(b *testing.B) { latency(b, rate, notify) })
		}
	}
}

func latency(b *testing.B, rate int, notify bool) {
	var (
		mu        sync.Mutex
		committed = map[int64]time.Time{}
		lat       []time.Duration
	)
	stack := startKafka(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.stack.Brokers()...), kgo.WithHooks(ackHook(func(r *kgo.Record) {
		at := time.Now()
		seq := seqOf(b, r.Value)
		mu.Lock()
		if c, ok := committed[seq]; ok {
			lat = append(lat, at.Sub(c))
		}
		mu.Unlock()
	})))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	db := pgxDB(b, evbustest.PostgresDatabase(b))
	ob := newOutbox(b, db, stack.enc, outbox.Notify(notify))
	runRelay(b, ob, cl, outbox.PollInterval(100*time.Millisecond))
	time.Sleep(300 * time.Millisecond) // the relay settles and goes idle
	const writers = 4
	n := rate * 3
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			tick := time.NewTicker(time.Second * writers / time.Duration(rate))
			defer tick.Stop()
			for i := w; i < n; i += writers {
				<-tick.C
				seq := int64(i)
				if err := sqldb.InTx(context.Background(), db, func(tx pgx.Tx) error {
					return ob.Enqueue(context.Background(), tx, OrderEvent{OrderID: key(i % 50), Seq: seq})
				}); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				committed[seq] = time.Now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	waitFor(b, "an empty backlog", func() bool { return backlog(b, ob) == 0 })
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no latency measured")
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

type ackHook func(*kgo.Record)

func (h ackHook) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err == nil {
		h(r)
	}
}

// BenchmarkEnqueue: business transactions per second on the writers, one
// business row each, with 1 and 8 writers: "bare" without the outbox;
// "enqueue", the business statement then Enqueue; "exec", both in one
// statement (Exec); "batch", both in one pgx batch (Queue). These notify
// the relays (the default, at most once every few milliseconds);
// "exec+poll" never notifies (Notify(false)), and
// "enqueue+notify-every-commit" calls pg_notify in every transaction (the
// design this package avoids). A relay drains the outbox meanwhile,
// on the same machine, except in the "-norelay" variants (the rows stay).
// CPU per transaction counts this process (writers, relay, broker) and
// the server.
func BenchmarkEnqueue(b *testing.B) {
	k := startKafka(b)
	for _, writers := range []int{1, 8} {
		for _, v := range []string{"bare", "enqueue", "enqueue-norelay", "exec", "exec-norelay", "exec+poll", "exec+poll-norelay", "batch", "enqueue+notify-every-commit"} {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, v), func(b *testing.B) { enqueueCost(b, k, writers, v) })
		}
	}
}

func enqueueCost(b *testing.B, k kafka, writers int, variant string) {
	ctx := context.Background()
	db := ordersDB(b)
	ob := newOutbox(b, db, k.enc, outbox.Notify(!strings.Contains(variant, "+")))
	if variant != "bare" && !strings.HasSuffix(variant, "-norelay") {
		runRelay(b, ob, k.cl)
	}
	variant = strings.TrimSuffix(variant, "-norelay")
	b.ResetTimer()
	cpu := startCPU(b, db)
	start := time.Now()
	write(b, writers, 0, b.N, func(i int) error { return businessTx(ctx, db, ob, variant, i) })
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
	cpu.report(b, b.N, "tx")
}

// BenchmarkEnqueueRatio: issue 5's writer-cost target, with 1 and 8
// writers running Exec without a relay ("exec") against the business
// statement alone ("bare"), the two taking turns every 400 transactions
// on one database, so that the machine's drifts (other load, the disk's
// flush times) fall on both alike; b.N transactions each. Reports each
// one's tx/s and exec/bare, the ratio of the two.
func BenchmarkEnqueueRatio(b *testing.B) {
	ctx := context.Background()
	k := startKafka(b)
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db := ordersDB(b)
			ob := newOutbox(b, db, k.enc)
			variants := [2]string{"bare", "exec"}
			const turn = 400
			var spent [2]time.Duration
			var done [2]int
			b.ResetTimer()
			for n := 0; done[0] < b.N || done[1] < b.N; n++ {
				v := n % 2
				from, to := done[v], min(done[v]+turn, b.N)
				start := time.Now()
				write(b, writers, from, to, func(i int) error { return businessTx(ctx, db, ob, variants[v], i) })
				spent[v] += time.Since(start)
				done[v] = to
			}
			bare, exec := float64(b.N)/spent[0].Seconds(), float64(b.N)/spent[1].Seconds()
			b.ReportMetric(bare, "bare-tx/s")
			b.ReportMetric(exec, "exec-tx/s")
			b.ReportMetric(exec/bare, "exec/bare")
		})
	}
}

// orderInsert is the writer benchmarks' business statement, into ordersDB's
// table.
const orderInsert = "INSERT INTO orders (id, customer, cents) VALUES ($1, $2, $3)"

// ordersDB returns a new database with the business table of the writer
// benchmarks.
func ordersDB(b *testing.B) *sqldb.PgxDB {
	db := pgxDB(b, evbustest.PostgresDatabase(b))
	if _, err := db.Exec(context.Background(), "CREATE TABLE orders (id text PRIMARY KEY, customer text NOT NULL, cents bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	return db
}

// write runs tx for each i in [from, to), over writers goroutines.
func write(b *testing.B, writers, from, to int, tx func(i int) error) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := from + w; i < to; i += writers {
				if err := tx(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// businessTx runs business transaction i of variant (BenchmarkEnqueue's
// names, without "-norelay"): one order row and, but in "bare", its event.
func businessTx(ctx context.Context, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx], variant string, i int) error {
	id := variant + "-" + strconv.Itoa(i)
	ev := OrderEvent{OrderID: id, Seq: int64(i)}
	return sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		switch variant {
		case "exec", "exec+poll":
			return ob.Exec(ctx, tx, orderInsert, []any{id, "c-1", int64(i)}, ev)
		case "batch":
			var batch pgx.Batch
			batch.Queue(orderInsert, id, "c-1", int64(i))
			if err := outbox.Queue(ctx, ob, &batch, ev); err != nil {
				return err
			}
			return tx.SendBatch(ctx, &batch).Close()
		}
		if _, err := tx.Exec(ctx, orderInsert, id, "c-1", int64(i)); err != nil || variant == "bare" {
			return err
		}
		if variant == "enqueue+notify-every-commit" {
			if _, err := tx.Exec(ctx, "SELECT pg_notify('evbus_outbox', '')"); err != nil {
				return err
			}
		}
		return ob.Enqueue(ctx, tx, ev)
	})
}

// BenchmarkExecGo: the writers' Go work of one Exec of one event before
// the statement goes to the driver: the record, its headers and the
// statement's arguments (pgx encodes them for the driver; sqldb's
// BenchmarkOutboxExecPath measures that part). cpu-ns/op is the process's CPU time (garbage
// collection included), steadier than ns/op on a shared machine. Run:
//
//	go test ./outbox -run '^$' -bench BenchmarkExecGo -benchmem -count 5
func BenchmarkExecGo(b *testing.B) {
	ctx := context.Background()
	k := startKafka(b)
	ob := newOutbox(b, ordersDB(b), k.enc, outbox.Notify(false)) // one statement text
	b.ReportAllocs()
	cputime.PerOp(b)
	i := 0
	for b.Loop() {
		id := "order-" + strconv.Itoa(i)
		if err := outbox.Statements(ctx, ob, orderInsert, []any{id, "c-1", int64(i)}, []any{OrderEvent{OrderID: id, Seq: int64(i)}}, func(string, []any) error { return nil }); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
