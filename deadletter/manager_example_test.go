package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// An operator finds group billing's causes, dry-runs the replay of the
// largest, and replays it: the dead letter replayed three times already
// is parked by the loop guard instead.
func ExampleManager() {
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer kafka.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		panic(err)
	}
	// Three dead letters of one cause, as billing's consumer writes them;
	// the last one's event was replayed three times already.
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		rec := &kgo.Record{Topic: "orders", Offset: int64(i), Key: fmt.Appendf(nil, "o-%d", i), Value: []byte("…")}
		if i == 2 {
			rec.Headers = []kgo.RecordHeader{{Key: wire.HeaderReplayCount, Value: []byte("3")}}
		}
		dl := wire.DeadLetterRecord(rec, wire.Origin{Topic: "orders", Offset: int64(i), Timestamp: at}, "billing",
			wire.KindRetriesExhausted, 3, fmt.Errorf("tax service at 10.0.0.%d:443 timed out", i), at.Add(time.Duration(i)*time.Minute))
		if err := cl.ProduceSync(ctx, dl).FirstErr(); err != nil {
			panic(err)
		}
	}

	m, err := deadletter.NewManager(ctx, cl, "billing")
	if err != nil {
		panic(err)
	}
	defer m.Close()
	gs, err := m.Groups(ctx)
	if err != nil {
		panic(err)
	}
	cause := gs[0]
	fmt.Println(cause.Count, cause.Fingerprint.Error, cause.States)

	sel := deadletter.Selection{Fingerprint: cause.Fingerprint.ID}
	plan, err := m.Plan(ctx, deadletter.ActionReplay, sel)
	if err != nil {
		panic(err)
	}
	for _, s := range plan.Steps {
		fmt.Printf("%s %s %q\n", s.Letter.ID, s.Do, s.Why)
	}
	rep, err := m.Replay(ctx, sel, deadletter.Actor{Name: "alice", Reason: "the tax service is back"})
	if err != nil {
		panic(err)
	}
	fmt.Println("done:", rep.Done)

	_, err = m.Get(ctx, "orders.billing.dlt/0/9")
	fmt.Println(errors.Is(err, deadletter.ErrNotFound))
	ls, err := m.List(ctx, deadletter.Selection{All: true})
	if err != nil {
		panic(err)
	}
	for _, l := range ls {
		fmt.Println(l.ID, l.State, l.Sent)
	}
	// Output:
	// 3 tax service at <addr> timed out map[open:3]
	// orders.billing.dlt/0/0 replay ""
	// orders.billing.dlt/0/1 replay ""
	// orders.billing.dlt/0/2 park "loop guard: failed after 3 replays"
	// done: 3
	// true
	// orders.billing.dlt/0/0 replaying 1
	// orders.billing.dlt/0/1 replaying 1
	// orders.billing.dlt/0/2 parked 0
}
