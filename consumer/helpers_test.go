package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
)

// Order is the event most tests publish.
type Order struct {
	OrderID string `avro:"order_id"`
	Seq     int64  `avro:"seq"`
	Note    string `avro:"note"`
}

// Shipped shares the orders topic with Order.
type Shipped struct {
	OrderID string `avro:"order_id"`
}

var (
	orderPlaced  = bus.Event[Order]("orders", func(o *Order) string { return o.OrderID }, bus.Namespace("com.example.test"))
	orderShipped = bus.Event[Shipped]("orders", func(o *Shipped) string { return o.OrderID }, bus.Namespace("com.example.test"))
)

// guard bounds every wait in the tests: a hang guard, never a timing check.
const guard = 45 * time.Second

// env is an embedded stack with the clients a test needs.
type env struct {
	t     testing.TB
	stack *devstack.Stack
	reg   *schema.Registry
	cl    *kgo.Client // producer and admin
	adm   *kadm.Client
	pub   *bus.Publisher
}

func start(t testing.TB) *env {
	t.Helper()
	stack := evbustest.Start(t)
	return connect(t, stack)
}

func connect(t testing.TB, stack *devstack.Stack) *env {
	t.Helper()
	k := testkit.Connect(t, stack)
	return &env{t: t, stack: stack, reg: k.Registry, cl: k.Client, adm: k.Admin}
}

// topics creates topics with the given partition count.
func (e *env) topics(partitions int32, names ...string) {
	e.t.Helper()
	for _, n := range names {
		if err := bus.CreateTopics(context.Background(), e.adm, bus.TopicSpec{Name: n, Partitions: partitions}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// publisher returns a publisher of the test event types.
func (e *env) publisher() *bus.Publisher {
	e.t.Helper()
	if e.pub == nil {
		p, err := bus.NewPublisher(context.Background(), e.cl, e.reg, bus.Source("/test"), bus.Types(orderPlaced, orderShipped))
		if err != nil {
			e.t.Fatal(err)
		}
		e.pub = p
	}
	return e.pub
}

func (e *env) publish(events ...any) {
	e.t.Helper()
	if err := e.publisher().Publish(context.Background(), events...); err != nil {
		e.t.Fatal(err)
	}
}

// testLogger discards logs unless EVBUS_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("EVBUS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// kgoLogger logs franz-go's info when EVBUS_TEST_LOG is set.
func kgoLogger() kgo.Logger {
	if os.Getenv("EVBUS_TEST_LOG") != "" {
		return kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)
	}
	return kgo.BasicLogger(io.Discard, kgo.LogLevelNone, nil)
}

// fast are the options of a test consumer: quick heartbeats and commits,
// short back-offs.
func (e *env) fast(extra ...kgo.Opt) []consumer.Option {
	kopts := append([]kgo.Opt{
		kgo.SeedBrokers(e.stack.Brokers()...),
		kgo.WithLogger(kgoLogger()),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, extra...)
	return []consumer.Option{
		consumer.Kafka(kopts...),
		consumer.Logger(testLogger()),
		consumer.CommitInterval(50 * time.Millisecond),
		consumer.HandlerRetry(consumer.Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 3}),
		consumer.OutageRetry(consumer.Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond}),
	}
}

func (e *env) consumer(group string, opts ...consumer.Option) *consumer.Consumer {
	e.t.Helper()
	c, err := consumer.New(group, e.reg, append(e.fast(), opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run runs c until the test ends (then closes it) and returns Run's result
// channel.
func run(t testing.TB, c *consumer.Consumer) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return errc
}

var waitFor = testkit.WaitFor

// read returns the first n records of a topic, read directly (no group).
func (e *env) read(topic string, n int) []*kgo.Record {
	e.t.Helper()
	return testkit.ReadN(e.t, e.stack.Brokers(), topic, n)
}

// count returns how many records a topic holds.
func (e *env) count(topic string) int64 { return evbustest.Records(e.t, e.stack, topic) }

// committed returns a group's committed offsets of a topic by partition.
func (e *env) committed(group, topic string) map[int32]int64 {
	return evbustest.Committed(e.t, e.stack, group, topic)
}

// headers returns a record's headers as a map; a repeated key fails.
func headers(t testing.TB, r *kgo.Record) map[string]string {
	t.Helper()
	return testkit.Headers(t, r.Headers)
}

// seen records what handlers saw, safe for concurrent use.
type seen struct {
	mu    sync.Mutex
	byKey map[string][]int64
	n     int
}

func newSeen() *seen { return &seen{byKey: make(map[string][]int64)} }

func (s *seen) add(key string, seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey[key] = append(s.byKey[key], seq)
	s.n++
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// missing returns, as "key/seq", the orders of orderRange(keys, 0, perKey)
// that s has not seen, the first limit of them.
func (s *seen) missing(keys, perKey, limit int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range keys {
		key := orderKey(k)
		for q := range perKey {
			if len(out) == limit {
				return out
			}
			if !slices.Contains(s.byKey[key], int64(q)) {
				out = append(out, fmt.Sprintf("%s/%d", key, q))
			}
		}
	}
	return out
}

// all reports whether s has seen every order of orderRange(keys, 0, perKey).
// It is a wait condition, polled while handlers add: it stops at the
// first order missing.
func (s *seen) all(keys, perKey int) bool { return len(s.missing(keys, perKey, 1)) == 0 }

func orderKey(k int) string { return fmt.Sprintf("order-%03d", k) }

// orders returns perKey orders of each of keys keys.
func orders(keys, perKey int) []any { return orderRange(keys, 0, perKey) }

// orderRange returns the orders with sequence numbers from to to (not
// included) of each of keys keys, one sequence number after the other.
func orderRange(keys, from, to int) []any {
	var out []any
	for seq := from; seq < to; seq++ {
		for k := range keys {
			out = append(out, &Order{OrderID: orderKey(k), Seq: int64(seq), Note: "n"})
		}
	}
	return out
}

// logBuffer collects a logger's output for tests that assert on it.
type logBuffer = testkit.Buffer
