package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

type Order struct {
	OrderID  string `avro:"order_id"`
	Customer string `avro:"customer"`
}

type Refund struct {
	OrderID string `avro:"order_id"`
}

type Payment struct {
	OrderID string `avro:"order_id"`
}

var (
	orderPlaced   = bus.Event[Order]("orders", func(o *Order) string { return o.OrderID }, bus.Namespace("com.example.dl"))
	refundAsked   = bus.Event[Refund]("orders", func(r *Refund) string { return r.OrderID }, bus.Namespace("com.example.dl"))
	paymentFailed = bus.Event[Payment]("payments", func(p *Payment) string { return p.OrderID }, bus.Namespace("com.example.dl"))
)

// TestGroups: the real consumer dead-letters records of several causes on
// two topics; Groups finds one group per cause, largest first, with its
// count, first and last failure and a sample; Topic keeps one topic's; a
// group without a dead-letter topic is an error naming those with one.
func TestGroups(t *testing.T) {
	stack := evbustest.Start(t)
	ctx := t.Context()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl),
		bus.TopicSpec{Name: "orders", Partitions: 2, DeadLetterGroups: []string{"billing", "com.acme.ship"}},
		bus.TopicSpec{Name: "payments", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New("billing", reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)), consumer.CommitInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(c, orderPlaced, func(_ context.Context, o *Order, _ bus.Meta) error {
		return consumer.Permanent(fmt.Errorf("order %s: customer %q not found", o.OrderID, o.Customer))
	})
	consumer.Handle(c, refundAsked, func(_ context.Context, r *Refund, _ bus.Meta) error {
		return consumer.Permanent(fmt.Errorf("refund of %s: no payment 0x%x", r.OrderID, len(r.OrderID)*4099))
	})
	consumer.Handle(c, paymentFailed, func(_ context.Context, p *Payment, _ bus.Meta) error {
		return consumer.Permanent(fmt.Errorf("gateway 10.0.0.%d:443 timed out after %dms", len(p.OrderID), 250))
	})
	run := make(chan error, 1)
	go func() { run <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Close(closeCtx); err != nil {
			t.Error(err)
		}
		if err := <-run; err != nil {
			t.Error(err)
		}
	})

	pub, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/shop"), bus.Types(orderPlaced, refundAsked, paymentFailed))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := pub.Publish(ctx, Order{OrderID: fmt.Sprintf("o-%d", i), Customer: fmt.Sprintf("c%d", i*7)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := pub.Publish(ctx, Refund{OrderID: fmt.Sprintf("o-%d", i*10)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(ctx, Payment{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	// A record no schema decodes: poison.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("junk"), Value: []byte("not avro")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, stack, wire.DeadLetterTopic("orders", "billing"), 7)
	waitRecords(t, stack, wire.DeadLetterTopic("payments", "billing"), 1)

	gs, err := deadletter.Groups(ctx, cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		count int
		kind  wire.FailureKind
		typ   string
		error string
	}{
		{4, wire.KindPermanent, "com.example.dl.Order", "order o-<n>: customer <str> not found"},
		{2, wire.KindPermanent, "com.example.dl.Refund", "refund of o-<n>: no payment <hex>"},
	}
	if len(gs) != 4 {
		t.Fatalf("Groups: %d groups, want 4: %+v", len(gs), gs)
	}
	for i, w := range want {
		g := gs[i]
		f := g.Fingerprint
		if g.Count != w.count || f.Kind != w.kind || f.Type != w.typ || f.Error != w.error {
			t.Errorf("group %d: %d × %+v, want %d × %s %s %q", i, g.Count, f, w.count, w.kind, w.typ, w.error)
		}
		if g.Sample.Record == nil || deadletter.FingerprintOf(g.Sample) != f || g.Sample.FailedAt != g.LastFailed || g.FirstFailed.After(g.LastFailed) {
			t.Errorf("group %d: sample %+v, first %v, last %v", i, g.Sample, g.FirstFailed, g.LastFailed)
		}
	}
	// Two groups of one: the one that failed last comes first.
	kinds := map[wire.FailureKind]bool{gs[2].Fingerprint.Kind: true, gs[3].Fingerprint.Kind: true}
	if gs[2].Count != 1 || gs[3].Count != 1 || !kinds[wire.KindPoison] || gs[2].LastFailed.Before(gs[3].LastFailed) {
		t.Errorf("groups of one: %+v, %+v", gs[2], gs[3])
	}
	for _, g := range gs {
		if g.Fingerprint.Type == "com.example.dl.Payment" && g.Fingerprint.Error != "gateway <addr> timed out after <dur>" {
			t.Errorf("payment's cause: %q", g.Fingerprint.Error)
		}
	}

	// Topic keeps one topic's dead letters.
	orders, err := deadletter.Groups(ctx, cl, "billing", deadletter.Topic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 3 {
		t.Errorf("Topic(orders): %d groups, want 3", len(orders))
	}
	for _, g := range orders {
		if g.Sample.OriginalTopic != "orders" {
			t.Errorf("Topic(orders) holds a dead letter of %s", g.Sample.OriginalTopic)
		}
	}

	// Errors name what is wrong.
	_, err = deadletter.Groups(ctx, cl, "shipping")
	var nt *deadletter.NoTopicError
	if !errors.As(err, &nt) || !errors.Is(err, deadletter.ErrNoTopic) || fmt.Sprint(nt.Groups) != "[billing com.acme.ship]" {
		t.Errorf("Groups of a group without dead-letter topics: %v", err)
	}
	_, err = deadletter.Groups(ctx, cl, "com.acme.ship", deadletter.Topic("payments"))
	if !errors.As(err, &nt) || fmt.Sprint(nt.Groups) != "[billing]" || err.Error() != "deadletter: group com.acme.ship has no dead-letter topic of payments (payments.com.acme.ship.dlt)" {
		t.Errorf("Groups of com.acme.ship on payments: %v", err)
	}
	if _, err = deadletter.Groups(ctx, cl, "billing", deadletter.Topic("refunds")); !errors.As(err, &nt) || !nt.TopicMissing {
		t.Errorf("Topic(refunds), which does not exist: %v", err)
	}
	for _, bad := range []struct {
		opts []deadletter.Option
		want string
	}{
		{[]deadletter.Option{nil}, "deadletter: Groups: option 1 is nil"},
		{[]deadletter.Option{deadletter.Topic("no spaces")}, `deadletter: Topic("no spaces"): wire: invalid topic name`},
	} {
		if _, err := deadletter.Groups(ctx, cl, "billing", bad.opts...); err == nil || len(err.Error()) < len(bad.want) || err.Error()[:len(bad.want)] != bad.want {
			t.Errorf("Groups with %v: %v, want %s…", bad.opts, err, bad.want)
		}
	}
	if _, err := deadletter.Groups(ctx, cl, ""); err == nil {
		t.Error("Groups of an empty group name: no error")
	}
}

// waitRecords waits until topic holds n records.
func waitRecords(t *testing.T, stack evbustest.Cluster, topic string, n int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for evbustest.Records(t, stack, topic) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d records after a minute, want %d", topic, evbustest.Records(t, stack, topic), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
