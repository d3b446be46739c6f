package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for watermill-sql
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

const (
	outboxTopic = "bench-outbox"
	// forwarderTopic is Watermill's SQL topic, the table watermill_outbox.
	forwarderTopic = "outbox"

	// outboxDrain is how many committed events one drain op relays.
	outboxDrain = 20_000
	// fillChunk is how many events one transaction commits when filling.
	fillChunk = 1000

	// The latency ops: latencyRate events/s from latencyWriters
	// goroutines, one event per business transaction, for latencyFor.
	latencyRate    = 1000
	latencyWriters = 4
	latencyFor     = 3 * time.Second

	// outboxTimeout bounds waiting for the consumer: a relay that has not
	// delivered everything by then fails the benchmark.
	outboxTimeout = 2 * time.Minute
)

var outboxOrder = bus.Event[benchOrder](outboxTopic, func(o *benchOrder) string { return o.OrderID }, bus.Schema(benchOrderAvsc))

// outboxEnv is the broker with the 3-partition topic, the encoder both
// implementations take their record bytes from, and the producer client
// of evbus's relay (franz-go defaults: idempotent, acks=all).
type outboxEnv struct {
	brokers []string
	cl      *kgo.Client
	enc     *bus.Encoder
	next    atomic.Int64 // event numbers, unique over the run
}

func startOutboxEnv(b *testing.B) *outboxEnv {
	b.Helper()
	ctx := b.Context()
	stack, reg, cl := startStack(b, outboxTopic, 3)
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/orders-service"), bus.Types(outboxOrder))
	if err != nil {
		b.Fatal(err)
	}
	return &outboxEnv{brokers: stack.Brokers(), cl: cl, enc: enc}
}

// events returns n new events.
func (e *outboxEnv) events(n int) []*benchOrder {
	evs := make([]*benchOrder, n)
	for i := range evs {
		evs[i] = benchEvent(e.next.Add(1))
	}
	return evs
}

// relayer is one implementation of the outbox: write commits a business
// transaction (one row in orders) carrying evs; start starts relaying
// committed events to Kafka and returns the function that stops it.
type relayer interface {
	write(ctx context.Context, evs []*benchOrder) error
	start(b *testing.B) (stop func())
}

const (
	ordersDDL   = "CREATE TABLE orders (order_id text PRIMARY KEY, customer_id text NOT NULL, cents bigint NOT NULL)"
	insertOrder = "INSERT INTO orders (order_id, customer_id, cents) VALUES ($1, $2, $3)"
)

// evbusOutbox: outbox.Enqueue in the caller's pgx transaction, and
// outbox.Relay with its defaults (wake-up by NOTIFY when idle, polling
// every 500 ms otherwise, batches of up to 1000).
type evbusOutbox struct {
	e   *outboxEnv
	db  *sqldb.PgxDB
	box *outbox.Outbox[pgx.Tx]
}

func newEvbusOutbox(b *testing.B, e *outboxEnv) relayer {
	ctx := b.Context()
	db := sqldb.Pgx(newPool(b, newDatabase(b)))
	if _, err := db.Exec(ctx, ordersDDL); err != nil {
		b.Fatal(err)
	}
	box, err := outbox.New(db, e.enc)
	if err != nil {
		b.Fatal(err)
	}
	if err := box.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return &evbusOutbox{e: e, db: db, box: box}
}

func (o *evbusOutbox) write(ctx context.Context, evs []*benchOrder) error {
	return sqldb.InTx(ctx, o.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertOrder, evs[0].OrderID, evs[0].CustomerID, evs[0].Cents); err != nil {
			return err
		}
		anys := make([]any, len(evs))
		for i, ev := range evs {
			anys[i] = ev
		}
		return o.box.Enqueue(ctx, tx, anys...)
	})
}

func (o *evbusOutbox) start(b *testing.B) func() {
	r, err := o.box.Relay(o.e.cl)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		// Close ends Run with nil (watermill's router) or, in older
		// versions, context.Canceled: either is a clean stop.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
	}
}

// watermillOutbox: watermill-sql's PostgreSQL publisher on the caller's
// *sql.Tx (DefaultPostgreSQLSchema, pgx's database/sql driver), wrapped by
// the Forwarder's publisher (a JSON envelope naming the Kafka topic); the
// Forwarder reads the SQL topic with watermill-sql's subscriber and
// publishes with watermill-kafka's publisher (Sarama SyncProducer, key
// from the "key" metadata). The message carries the same value bytes and
// the same CloudEvents headers (as metadata) as evbus's record.
type watermillOutbox struct {
	e    *outboxEnv
	db   *sql.DB
	poll time.Duration // the SQL subscriber's PollInterval; 0: its default, 1 s
}

func newWatermillOutbox(poll time.Duration) func(b *testing.B, e *outboxEnv) relayer {
	return func(b *testing.B, e *outboxEnv) relayer {
		db, err := sql.Open("pgx", newDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(poolConns)
		b.Cleanup(func() { db.Close() })
		if _, err := db.ExecContext(b.Context(), ordersDDL); err != nil {
			b.Fatal(err)
		}
		o := &watermillOutbox{e: e, db: db, poll: poll}
		// The tables, created up front: a publisher on a transaction may
		// not create them (an implicit commit).
		if err := o.subscriber(b).SubscribeInitialize(forwarderTopic); err != nil {
			b.Fatal(err)
		}
		return o
	}
}

func (o *watermillOutbox) subscriber(b *testing.B) *wsql.Subscriber {
	sub, err := wsql.NewSubscriber(o.db, wsql.SubscriberConfig{
		SchemaAdapter:  wsql.DefaultPostgreSQLSchema{},
		OffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{},
		PollInterval:   o.poll,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	return sub
}

func (o *watermillOutbox) write(ctx context.Context, evs []*benchOrder) error {
	msgs := make([]*message.Message, len(evs))
	for i, ev := range evs {
		rec, err := o.e.enc.Record(ctx, ev)
		if err != nil {
			return err
		}
		m := message.NewMessage("", rec.Value)
		for _, h := range rec.Headers {
			m.Metadata.Set(h.Key, string(h.Value))
		}
		m.UUID = m.Metadata.Get(wire.HeaderID)
		m.Metadata.Set("key", string(rec.Key))
		msgs[i] = m
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insertOrder, evs[0].OrderID, evs[0].CustomerID, evs[0].Cents); err != nil {
		return err
	}
	pub, err := wsql.NewPublisher(tx, wsql.PublisherConfig{SchemaAdapter: wsql.DefaultPostgreSQLSchema{}}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	if err := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: forwarderTopic}).Publish(outboxTopic, msgs...); err != nil {
		return err
	}
	return tx.Commit()
}

func (o *watermillOutbox) start(b *testing.B) func() {
	sub := o.subscriber(b)
	pub := watermillPublisher(b, o.e.brokers)
	fwd, err := forwarder.NewForwarder(sub, pub, watermill.NopLogger{}, forwarder.Config{ForwarderTopic: forwarderTopic})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fwd.Run(context.Background()) }()
	return func() {
		if err := fwd.Close(); err != nil {
			b.Error(err)
		}
		// Close ends Run with nil (watermill's router) or, in older
		// versions, context.Canceled: either is a clean stop.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
		if err := pub.Close(); err != nil {
			b.Error(err)
		}
		if err := sub.Close(); err != nil {
			b.Error(err)
		}
	}
}

// arrivals is a plain franz-go consumer (no group) reading the topic from
// its current end: when each event arrived, by event number.
type arrivals struct {
	mu   sync.Mutex
	at   map[int64]time.Time
	last time.Time
	want int
	done chan struct{}
	err  error
}

// watch starts reading the topic from its end, until want events arrived
// or stop is called.
func (e *outboxEnv) watch(b *testing.B, want int) (a *arrivals, stop func()) {
	b.Helper()
	ctx := b.Context()
	ends, err := kadm.NewClient(e.cl).ListEndOffsets(ctx, outboxTopic)
	if err != nil {
		b.Fatal(err)
	}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { from[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{outboxTopic: from}))
	if err != nil {
		b.Fatal(err)
	}
	a = &arrivals{at: make(map[int64]time.Time, want), want: want, done: make(chan struct{})}
	pctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for pctx.Err() == nil {
			fs := cl.PollFetches(pctx)
			now := time.Now()
			a.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				n, err := eventNumber(r.Key)
				if err != nil && a.err == nil {
					a.err = err
				}
				if _, dup := a.at[n]; !dup {
					a.at[n] = now
				}
			})
			if len(a.at) >= a.want && a.last.IsZero() {
				a.last = now
				close(a.done)
			}
			a.mu.Unlock()
		}
	}()
	return a, func() { cancel(); <-stopped; cl.Close() }
}

// wait waits until every event arrived, failing b after outboxTimeout.
func (a *arrivals) wait(b *testing.B) {
	select {
	case <-a.done:
	case <-time.After(outboxTimeout):
		a.mu.Lock()
		defer a.mu.Unlock()
		b.Fatalf("%d of %d events arrived in %v", len(a.at), a.want, outboxTimeout)
	}
	if a.err != nil {
		b.Fatal(a.err)
	}
}

// BenchmarkOutbox compares evbus's outbox (outbox.Enqueue in the business
// transaction, outbox.Relay) with Watermill's (watermill-sql publisher in
// the business transaction, the Forwarder to watermill-kafka), on one
// PostgreSQL server (durable commits; a fresh database per op) and one
// kfake broker, with the same record bytes. A plain franz-go consumer
// (no group) notes when each event arrives.
//
//	op=drain/impl=...     outboxDrain events committed beforehand (not timed); timed from
//	                      starting the relay to the last event consumed: events/s, cpu-ns/event
//	op=latency/impl=...   latencyRate events/s, one business transaction each (a row in
//	                      orders and the event) from latencyWriters goroutines, for latencyFor,
//	                      the relay running: commit returned -> consumed, p50-ms, p99-ms
//
//	impl=evbus               outbox.Relay defaults (NOTIFY wake-up when idle, 500 ms poll)
//	impl=watermill           watermill-sql subscriber defaults (1 s poll when it finds nothing)
//	impl=watermill-poll10ms  the same polling every 10 ms (latency only; polling is
//	                         irrelevant while a backlog drains)
//
// The parent prints the ratios evbus/watermill of its own run.
func BenchmarkOutbox(b *testing.B) {
	e := startOutboxEnv(b)
	impls := []struct {
		name    string
		new     func(*testing.B, *outboxEnv) relayer
		latOnly bool
	}{
		{"evbus", newEvbusOutbox, false},
		{"watermill", newWatermillOutbox(0), false},
		{"watermill-poll10ms", newWatermillOutbox(10 * time.Millisecond), true},
	}
	got := map[string]float64{}
	for _, im := range impls {
		if im.latOnly {
			continue
		}
		b.Run("op=drain/impl="+im.name, func(b *testing.B) { got["drain/"+im.name] = e.drain(b, im.new) })
	}
	for _, im := range impls {
		b.Run("op=latency/impl="+im.name, func(b *testing.B) {
			p50, p99 := e.latency(b, im.new)
			got["p50/"+im.name], got["p99/"+im.name] = p50, p99
		})
	}
	// A parent benchmark's b.Log shows only with -v; the ratios always.
	fmt.Printf("# BenchmarkOutbox evbus/watermill: drain events/s %s; latency p50 %s, p99 %s; against watermill-poll10ms: p50 %s, p99 %s\n",
		ratio(got, "drain/evbus", "drain/watermill"),
		ratio(got, "p50/evbus", "p50/watermill"), ratio(got, "p99/evbus", "p99/watermill"),
		ratio(got, "p50/evbus", "p50/watermill-poll10ms"), ratio(got, "p99/evbus", "p99/watermill-poll10ms"))
}

// ratio formats got[a]/got[b], or "-" when one of them did not run.
func ratio(got map[string]float64, a, b string) string {
	x, okA := got[a]
	y, okB := got[b]
	if !okA || !okB || y == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3gx", x/y)
}

// drain reports and returns events/s.
func (e *outboxEnv) drain(b *testing.B, newImpl func(*testing.B, *outboxEnv) relayer) float64 {
	var took, cpu time.Duration
	for range b.N {
		b.StopTimer()
		impl := newImpl(b, e)
		evs := e.events(outboxDrain)
		for i := 0; i < len(evs); i += fillChunk {
			if err := impl.write(b.Context(), evs[i:min(i+fillChunk, len(evs))]); err != nil {
				b.Fatal(err)
			}
		}
		a, stopWatch := e.watch(b, len(evs))
		b.StartTimer()
		start, cpu0 := time.Now(), cputime.Process()
		stop := impl.start(b)
		a.wait(b)
		b.StopTimer()
		cpu += cputime.Process() - cpu0
		took += a.last.Sub(start)
		stop()
		stopWatch()
	}
	n := float64(b.N * outboxDrain)
	rate := n / took.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/event")
	return rate
}

// latency reports and returns the p50 and p99 in milliseconds.
func (e *outboxEnv) latency(b *testing.B, newImpl func(*testing.B, *outboxEnv) relayer) (p50, p99 float64) {
	var lat []time.Duration
	for range b.N {
		b.StopTimer()
		impl := newImpl(b, e)
		evs := e.events(int(latencyFor.Seconds() * latencyRate))
		a, stopWatch := e.watch(b, len(evs))
		stop := impl.start(b)
		time.Sleep(300 * time.Millisecond) // the relay starts and goes idle
		b.StartTimer()
		committed := make([]time.Time, len(evs))
		var wg sync.WaitGroup
		for w := range latencyWriters {
			wg.Go(func() {
				tick := time.NewTicker(time.Second * latencyWriters / latencyRate)
				defer tick.Stop()
				for i := w; i < len(evs); i += latencyWriters {
					<-tick.C
					if err := impl.write(context.Background(), evs[i:i+1]); err != nil {
						b.Error(err)
						return
					}
					committed[i] = time.Now()
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		a.wait(b)
		b.StopTimer()
		stop()
		stopWatch()
		for i, ev := range evs {
			n, _ := eventNumber([]byte(ev.OrderID))
			lat = append(lat, a.at[n].Sub(committed[i]))
		}
	}
	slices.Sort(lat)
	p50 = float64(lat[len(lat)/2].Microseconds()) / 1000
	p99 = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	return p50, p99
}
