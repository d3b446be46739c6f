package outbox_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
	"github.com/evbus/evbus/wire"
)

func TestMain(m *testing.M) {
	if os.Getenv(consumeEnv) != "" {
		os.Exit(consumeChild())
	}
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	evbustest.RunWithPostgreSQL(m)
}

// OrderEvent is the tests' event: Seq counts the events of one order.
type OrderEvent struct {
	OrderID string `avro:"order_id"`
	Seq     int64  `avro:"seq"`
}

// Unregistered is a type no encoder knows.
type Unregistered struct {
	X string `avro:"x"`
}

const topic = "orders"

var orderEvent = bus.Event[OrderEvent](topic, func(e *OrderEvent) string { return e.OrderID }, bus.Namespace("com.example.orders"))

// kafka is a started stack with the orders topic and an encoder.
type kafka struct {
	stack *devstack.Stack
	cl    *kgo.Client
	enc   *bus.Encoder
}

func startKafka(t testing.TB) kafka {
	t.Helper()
	stack := evbustest.Start(t)
	c := testkit.Connect(t, stack)
	if err := bus.CreateTopics(t.Context(), c.Admin, bus.TopicSpec{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	return kafka{stack: stack, cl: c.Client, enc: encoder(t, stack.RegistryURL())}
}

func encoder(t testing.TB, registryURL string) *bus.Encoder {
	t.Helper()
	reg, err := schema.New(registryURL)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(context.Background(), reg, bus.Source("/orders-service"), bus.Types(orderEvent))
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

func pgxDB(t testing.TB, url string) *sqldb.PgxDB { return pgxPool(t, url, 20) }

// pgxPool returns the database of a pgx pool of conns connections.
func pgxPool(t testing.TB, url string, conns int32) *sqldb.PgxDB {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return sqldb.Pgx(pool)
}

func stdlibDB(t testing.TB, url string) *sqldb.SQLDB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sqldb.SQL(db, sqldb.Postgres)
}

func sqliteDB(t testing.TB) *sqldb.SQLDB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Pool().Close() })
	return db
}

// newOutbox returns a migrated outbox.
func newOutbox[Tx any](t testing.TB, db sqldb.DB[Tx], enc *bus.Encoder, opts ...outbox.Option) *outbox.Outbox[Tx] {
	t.Helper()
	ob, err := outbox.New(db, enc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ob
}

// runRelay runs a relay until the test ends.
func runRelay[Tx any](t testing.TB, ob *outbox.Outbox[Tx], cl *kgo.Client, opts ...outbox.RelayOption) *outbox.Relay {
	t.Helper()
	r, err := ob.Relay(cl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// enqueue commits one transaction with events.
func enqueue[Tx any](t testing.TB, db sqldb.DB[Tx], ob *outbox.Outbox[Tx], events ...any) {
	t.Helper()
	if err := sqldb.InTx(context.Background(), db, func(tx Tx) error { return ob.Enqueue(context.Background(), tx, events...) }); err != nil {
		t.Fatal(err)
	}
}

// published is an event read back from Kafka.
type published struct {
	id, key string
	seq     int64
	rec     *kgo.Record
}

// consume reads the topic from the start until done says it has enough.
func consume(t testing.TB, brokers []string, done func([]published) bool) []published {
	t.Helper()
	var got []published
	testkit.Read(t, brokers, topic, func(recs []*kgo.Record) bool {
		for _, r := range recs[len(got):] {
			id, _ := testkit.Header(r.Headers, wire.HeaderID)
			got = append(got, published{id: id, key: string(r.Key), seq: seqOf(t, r.Value), rec: r})
		}
		return done(got)
	})
	return got
}

// seqOf decodes OrderEvent's seq from a framed Avro value: magic byte,
// schema id, then order_id (length-prefixed) and seq, zigzag varints.
func seqOf(t testing.TB, v []byte) int64 {
	t.Helper()
	if len(v) < 5 || v[0] != 0 {
		t.Fatalf("value %x is not framed", v)
	}
	b := v[5:]
	n, w := binary.Varint(b)
	if w <= 0 || int(n) > len(b)-w {
		t.Fatalf("value %x: bad order_id", v)
	}
	seq, w2 := binary.Varint(b[w+int(n):])
	if w2 <= 0 {
		t.Fatalf("value %x: bad seq", v)
	}
	return seq
}

func atLeast(n int) func([]published) bool { return func(p []published) bool { return len(p) >= n } }

// distinct returns how many distinct ce_ids ps holds.
func distinct(ps []published) int {
	seen := map[string]bool{}
	for _, p := range ps {
		seen[p.id] = true
	}
	return len(seen)
}

// checkOrder checks that the first publication of each event follows the
// order want gives per key (seqs), that every wanted event is there, and
// that a repeated ce_id repeats the same event. It returns the number of
// repeats.
func checkOrder(t testing.TB, got []published, want map[string][]int64) (dups int) {
	t.Helper()
	first := map[string]published{}
	seqs := map[string][]int64{}
	for _, p := range got {
		if f, ok := first[p.id]; ok {
			dups++
			if f.key != p.key || f.seq != p.seq {
				t.Errorf("ce_id %s published as %s/%d and as %s/%d", p.id, f.key, f.seq, p.key, p.seq)
			}
			continue
		}
		first[p.id] = p
		seqs[p.key] = append(seqs[p.key], p.seq)
	}
	for k, w := range want {
		if fmt.Sprint(seqs[k]) != fmt.Sprint(w) {
			t.Errorf("key %s: published in order %v, want %v", k, seqs[k], w)
		}
	}
	for k := range seqs {
		if _, ok := want[k]; !ok {
			t.Errorf("key %s published, not expected", k)
		}
	}
	return dups
}

var waitFor = testkit.WaitFor

func backlog[Tx any](t testing.TB, ob *outbox.Outbox[Tx]) int64 {
	t.Helper()
	s, err := ob.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Backlog
}

func key(i int) string { return "order-" + strconv.Itoa(i) }

// logs records what a slog.Logger writes, for the tests that read the
// relay's log.
type logs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }
func (l *logs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// at returns the records of level whose message and attributes contain
// every one of words, as text.
func (l *logs) at(level slog.Level, words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Level != level {
			continue
		}
		line := r.Message
		r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			out = append(out, r.Time.Format(time.RFC3339Nano)+" "+line)
		}
	}
	return out
}
