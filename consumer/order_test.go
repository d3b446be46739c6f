package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

func TestHandlesWithMetadata(t *testing.T) {
	e := start(t)
	e.topics(3, "orders", "orders.meta.dlt")
	c := e.consumer("meta")
	type got struct {
		ev      Order
		m       bus.Meta
		ctxMeta *bus.Meta
		attempt int
	}
	gotc := make(chan got, 10)
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		cm, _ := bus.MetaFrom(ctx)
		gotc <- got{*ev, m, cm, consumer.Attempt(ctx)}
		return nil
	})
	run(t, c)

	ctx := bus.WithCorrelationID(context.Background(), "conv-1")
	if err := e.publisher().Publish(ctx, &Order{OrderID: "o-1", Seq: 7, Note: "hello"}); err != nil {
		t.Fatal(err)
	}
	var g got
	select {
	case g = <-gotc:
	case <-time.After(guard):
		t.Fatal("not handled")
	}
	rec := e.read("orders", 1)[0]
	if g.ev != (Order{OrderID: "o-1", Seq: 7, Note: "hello"}) {
		t.Errorf("event %+v", g.ev)
	}
	h := headers(t, rec)
	m := g.m
	switch {
	case m.ID == "" || m.ID != h[wire.HeaderID]:
		t.Errorf("ID %q, header %q", m.ID, h[wire.HeaderID])
	case m.Type != "com.example.test.Order":
		t.Errorf("Type %q", m.Type)
	case m.Source != "/test" || m.Subject != "o-1" || m.CorrelationID != "conv-1":
		t.Errorf("Source %q Subject %q CorrelationID %q", m.Source, m.Subject, m.CorrelationID)
	case string(m.Key) != "o-1" || m.Topic != "orders" || m.Partition != rec.Partition || m.Offset != rec.Offset:
		t.Errorf("key %q at %s/%d@%d, record at %d@%d", m.Key, m.Topic, m.Partition, m.Offset, rec.Partition, rec.Offset)
	case m.Time.IsZero() || m.SchemaID <= 0 || len(m.Headers) != len(rec.Headers):
		t.Errorf("Time %v SchemaID %d headers %d", m.Time, m.SchemaID, len(m.Headers))
	case g.ctxMeta == nil || g.ctxMeta.ID != m.ID:
		t.Errorf("bus.MetaFrom(ctx) = %v", g.ctxMeta)
	case g.attempt != 1:
		t.Errorf("Attempt = %d", g.attempt)
	}
}

func TestRegistrationErrors(t *testing.T) {
	e := start(t)
	if _, err := consumer.New("bad group!", e.reg); err == nil {
		t.Error("New accepted a group name with a space and '!'")
	}
	if _, err := consumer.New("g", nil); err == nil {
		t.Error("New accepted a nil registry")
	}
	if _, err := consumer.New("g", e.reg, consumer.Concurrency(0)); err == nil {
		t.Error("New accepted Concurrency(0)")
	}
	if _, err := consumer.New("g", e.reg, consumer.HandlerRetry(consumer.Backoff{Multiplier: 0.5})); err == nil {
		t.Error("New accepted a multiplier below 1")
	}

	c := e.consumer("twice")
	noop := func(context.Context, *Order, bus.Meta) error { return nil }
	consumer.Handle(c, orderPlaced, noop)
	consumer.Handle(c, orderPlaced, noop)
	if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrRegistration) {
		t.Errorf("Run with a type registered twice: %v, want ErrRegistration", err)
	}

	type Bad struct{ X chan int }
	c = e.consumer("bad")
	consumer.Handle(c, bus.Event[Bad]("orders", func(*Bad) string { return "k" }), func(context.Context, *Bad, bus.Meta) error { return nil })
	if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrRegistration) {
		t.Errorf("Run with a type that has a definition error: %v, want ErrRegistration", err)
	}

	c = e.consumer("none")
	if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrNoHandlers) {
		t.Errorf("Run without handlers: %v, want ErrNoHandlers", err)
	}

	c = e.consumer("retry-missing")
	consumer.Handle(c, orderPlaced, noop, consumer.RetryTopics(time.Second))
	if err := c.Run(context.Background()); !errors.Is(err, bus.ErrTopicMissing) {
		t.Errorf("Run with missing retry topics: %v, want bus.ErrTopicMissing", err)
	}
}

// TestPerKeyOrder runs many keys over several partitions with handlers of
// random duration and checks the exact sequence of every key.
func TestPerKeyOrder(t *testing.T) {
	for _, tc := range []struct {
		name   string
		perKey int
	}{{"partition-order", 1}, {"per-key-lanes", 8}} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			e.topics(4, "orders")
			const keys, perKey = 60, 30
			e.publish(orders(keys, perKey)...)

			s := newSeen()
			var (
				mu       sync.Mutex
				inFlight = map[int32]int{}
				maxIn    = map[int32]int{}
			)
			c := e.consumer("order-"+tc.name, consumer.PerKey(tc.perKey), consumer.Concurrency(16))
			consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
				mu.Lock()
				inFlight[m.Partition]++
				maxIn[m.Partition] = max(maxIn[m.Partition], inFlight[m.Partition])
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				s.add(ev.OrderID, ev.Seq)
				mu.Lock()
				inFlight[m.Partition]--
				mu.Unlock()
				return nil
			})
			run(t, c)
			waitFor(t, "every record handled", func() bool { return s.count() >= keys*perKey })

			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.byKey) != keys {
				t.Fatalf("%d keys handled, want %d", len(s.byKey), keys)
			}
			for k, seqs := range s.byKey {
				want := make([]int64, perKey)
				for i := range want {
					want[i] = int64(i)
				}
				if fmt.Sprint(seqs) != fmt.Sprint(want) {
					t.Errorf("key %s handled as %v, want %v", k, seqs, want)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			most := 0
			for p, n := range maxIn {
				most = max(most, n)
				if tc.perKey == 1 && n != 1 {
					t.Errorf("partition %d had %d handlers at once, want 1", p, n)
				}
			}
			if tc.perKey > 1 && most < 2 {
				t.Errorf("with PerKey(%d) no partition ever had two handlers at once", tc.perKey)
			}
			if st := c.Stats(); st.Handled != keys*perKey || st.Retried != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestConcurrencyBound checks that no more handlers run at once than
// Concurrency allows, across partitions.
func TestConcurrencyBound(t *testing.T) {
	e := start(t)
	e.topics(6, "orders")
	e.publish(orders(30, 10)...)
	var in, most atomic.Int32
	var n atomic.Int32
	c := e.consumer("bound", consumer.Concurrency(2), consumer.PerKey(4))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		cur := in.Add(1)
		for {
			old := most.Load()
			if cur <= old || most.CompareAndSwap(old, cur) {
				break
			}
		}
		time.Sleep(100 * time.Microsecond)
		in.Add(-1)
		n.Add(1)
		return nil
	})
	run(t, c)
	waitFor(t, "every record handled", func() bool { return n.Load() >= 300 })
	if m := most.Load(); m > 2 {
		t.Errorf("%d handlers ran at once, Concurrency(2)", m)
	}
}

// TestPerKeyRetryBlocksOnlyItsKey: with PerKey, a record waiting between
// retries holds back its own key only; other keys of its partition go on.
func TestPerKeyRetryBlocksOnlyItsKey(t *testing.T) {
	e := start(t)
	e.topics(1, "orders") // one partition: every key shares it
	others := make(chan struct{})
	var once sync.Once
	var seqs []int64
	var mu sync.Mutex
	c := e.consumer("perkey-retry", consumer.PerKey(64))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		if ev.OrderID != "slow" {
			once.Do(func() { close(others) })
			return nil
		}
		if consumer.Attempt(ctx) == 1 {
			return errors.New("not yet")
		}
		if ev.Seq == 0 {
			select { // its retry must not hold back the other keys
			case <-others:
			case <-time.After(guard):
				return consumer.Permanent(errors.New("no other key was handled meanwhile"))
			}
		}
		mu.Lock()
		seqs = append(seqs, ev.Seq)
		mu.Unlock()
		return nil
	}, consumer.Retry(consumer.Backoff{Initial: time.Millisecond, MaxAttempts: 3}))
	events := []any{&Order{OrderID: "slow", Seq: 0}, &Order{OrderID: "slow", Seq: 1}}
	for i := 0; i < 20; i++ {
		events = append(events, &Order{OrderID: fmt.Sprintf("other-%d", i)})
	}
	e.publish(events...)
	run(t, c)
	waitFor(t, "both records of the slow key handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seqs) == 2
	})
	if seqs[0] != 0 || seqs[1] != 1 {
		t.Errorf("the slow key was handled as %v, want [0 1]", seqs)
	}
	if st := c.Stats(); st.DeadLettered[wire.KindPermanent] != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestRetryWaitHoldsNoSlot: a record waiting between retries holds no
// concurrency slot. With Concurrency(1), the records of other keys are
// handled while it waits.
func TestRetryWaitHoldsNoSlot(t *testing.T) {
	e := start(t)
	e.topics(1, "orders")
	failed := make(chan struct{})
	var others atomic.Int32
	c := e.consumer("retry-slot", consumer.Concurrency(1), consumer.PerKey(64))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		if ev.OrderID == "slow" {
			if consumer.Attempt(ctx) == 1 {
				close(failed)
			}
			return errors.New("not yet")
		}
		others.Add(1)
		return nil
	}, consumer.Retry(consumer.Backoff{Initial: time.Hour, Max: time.Hour, MaxAttempts: 2}))
	e.publish(&Order{OrderID: "slow"})
	run(t, c)
	select {
	case <-failed:
	case <-time.After(guard):
		t.Fatal("the slow record's handler did not run")
	}
	// Published once the slow record waits: ten keys, ten lanes at most
	// one of which is the slow record's.
	events := []any{}
	for i := range 10 {
		events = append(events, &Order{OrderID: fmt.Sprintf("other-%d", i)})
	}
	e.publish(events...)
	waitFor(t, "other keys handled while a record waits for its retry", func() bool { return others.Load() > 0 })
}
