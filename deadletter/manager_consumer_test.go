package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// TestManagerWithConsumer: replays reach the real consumer, which records
// their outcomes; a replay that fails again is dead-lettered again, and
// a bulk replay of the cause then leaves the first dead letter alone
// (the new one carries it on), the loop guard parks the new one, and by
// id it is replayed and resolved. Each event's handler ran once.
func TestManagerWithConsumer(t *testing.T) {
	stack := evbustest.Start(t)
	ctx := t.Context()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failing := map[string]bool{"o-0": true, "o-1": true, "o-2": true}
	handled := map[string]int{}
	c, err := consumer.New("billing", reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...), kgo.FetchMaxWait(100*time.Millisecond)),
		consumer.CommitInterval(50*time.Millisecond), consumer.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(c, orderPlaced, func(_ context.Context, o *Order, _ bus.Meta) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[o.OrderID] {
			return consumer.Permanent(fmt.Errorf("order %s: customer %q not found", o.OrderID, o.Customer))
		}
		handled[o.OrderID]++
		return nil
	})
	run := make(chan error, 1)
	go func() { run <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Close(closeCtx); err != nil {
			t.Error(err)
		}
		if err := <-run; err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	})
	pub, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/shop"), bus.Types(orderPlaced))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := pub.Publish(ctx, Order{OrderID: fmt.Sprintf("o-%d", i), Customer: "c1"}); err != nil {
			t.Fatal(err)
		}
	}
	waitRecords(t, stack, wire.DeadLetterTopic("orders", "billing"), 3)

	m, err := deadletter.NewManager(ctx, cl, "billing", deadletter.MaxReplays(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	gs, err := m.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Count != 3 {
		t.Fatalf("Groups: %+v, %v", gs, err)
	}
	fp := gs[0].Fingerprint.ID
	first, err := m.List(ctx, deadletter.Selection{Fingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	stateOf := func(id string) wire.LedgerState {
		l, err := m.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return l.State
	}

	// o-0 and o-1 are fixed; o-2 still fails.
	mu.Lock()
	failing["o-0"], failing["o-1"] = false, false
	mu.Unlock()
	if rep, err := m.Replay(ctx, deadletter.Selection{Fingerprint: fp}, deadletter.Actor{Name: "alice"}); err != nil || rep.Done != 3 {
		t.Fatalf("replay: %d, %v", rep.Done, err)
	}
	testkit.WaitFor(t, "the outcomes", func() bool {
		return stateOf(first[0].ID) == wire.LedgerResolved && stateOf(first[1].ID) == wire.LedgerResolved && stateOf(first[2].ID) == wire.LedgerFailedAgain
	})
	again, err := m.Get(ctx, first[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	newID := again.Ledger.History[len(again.Ledger.History)-1].Record
	redone, err := m.Get(ctx, newID)
	if err != nil || redone.Replays != 1 || redone.Fingerprint.ID != fp || redone.State != wire.LedgerOpen {
		t.Fatalf("the new dead letter %q: %+v, %v", newID, redone, err)
	}

	// In bulk: the resolved ones and the failed-again one stay, the new
	// one is parked by the loop guard (MaxReplays(1)).
	mu.Lock()
	failing["o-2"] = false
	mu.Unlock()
	rep, err := m.Replay(ctx, deadletter.Selection{Fingerprint: fp}, deadletter.Actor{Name: "alice"})
	if err != nil || rep.Done != 1 || rep.Count(deadletter.ActionPark) != 1 || rep.Count(deadletter.ActionReplay) != 0 {
		t.Fatalf("bulk replay: %+v, %v", rep, err)
	}
	for _, s := range rep.Steps {
		if s.Letter.ID == first[2].ID && !strings.Contains(s.Why, newID+" carries it on") {
			t.Errorf("the failed-again one: %q", s.Why)
		}
	}
	if st := stateOf(newID); st != wire.LedgerParked {
		t.Fatalf("the new dead letter after a bulk replay: %s, want parked", st)
	}
	// By id, it goes.
	if rep, err := m.Replay(ctx, deadletter.Selection{IDs: []string{newID}}, deadletter.Actor{Name: "alice", Reason: "fixed"}); err != nil || rep.Done != 1 {
		t.Fatalf("replay by id: %+v, %v", rep, err)
	}
	testkit.WaitFor(t, "o-2 resolved", func() bool { return stateOf(newID) == wire.LedgerResolved })
	mu.Lock()
	defer mu.Unlock()
	if handled["o-0"] != 1 || handled["o-1"] != 1 || handled["o-2"] != 1 {
		t.Fatalf("handled: %v, want each once", handled)
	}
}
