package evbustest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

type PaymentTaken struct {
	OrderID string `avro:"order_id"`
	Cents   int64  `avro:"cents"`
}

var paymentTaken = bus.Event[PaymentTaken]("payments", func(e *PaymentTaken) string { return e.OrderID }, bus.Namespace("com.example.billing"))

// runLedger creates the payments topic through cl, with a dead-letter
// topic for the ledger group, publishes a payment of order o-1 (500 cents)
// and a negative one of o-2, and runs the ledger group on them with opts:
// it handles o-1 and dead-letters o-2 ("negative payment", permanent). It
// returns the group's Recorder and a function that closes the consumer
// (t's cleanup closes it too).
func runLedger(t *testing.T, cl *kgo.Client, reg *schema.Registry, opts ...consumer.Option) (*evbustest.Recorder, func() error) {
	t.Helper()
	ctx := t.Context()
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: "payments", Partitions: 2, DeadLetterGroups: []string{"ledger"}}); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/billing"), bus.Types(paymentTaken))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, PaymentTaken{OrderID: "o-1", Cents: 500}, PaymentTaken{OrderID: "o-2", Cents: -1}); err != nil {
		t.Fatal(err)
	}
	rec := evbustest.NewRecorder()
	c, err := consumer.New("ledger", reg, append(opts, rec.Option())...)
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(c, paymentTaken, func(_ context.Context, p *PaymentTaken, _ bus.Meta) error {
		if p.Cents < 0 {
			return consumer.Permanent(errors.New("negative payment"))
		}
		return nil
	})
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	stop := sync.OnceValue(func() error {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.Close(closeCtx)
		<-errc
		return err
	})
	t.Cleanup(func() { _ = stop() })
	return rec, stop
}

func TestExpectations(t *testing.T) {
	stack := evbustest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := runLedger(t, cl, reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)))

	got, meta := evbustest.ExpectPublished(t, stack, paymentTaken, func(p *PaymentTaken, _ bus.Meta) bool { return p.OrderID == "o-1" })
	if got.Cents != 500 || meta.Source != "/billing" || string(meta.Key) != "o-1" {
		t.Fatalf("published %+v %+v", got, meta)
	}
	handled, hm := evbustest.ExpectHandled(t, rec, "ledger", paymentTaken, func(p *PaymentTaken, _ bus.Meta) bool { return p.OrderID == "o-1" })
	if handled.Cents != 500 || hm.ID != meta.ID {
		t.Fatalf("handled %+v %+v, want the published event %s", handled, hm, meta.ID)
	}
	dl := evbustest.ExpectDeadLettered(t, stack, "payments", "ledger", func(d wire.DeadLetter) bool { return string(d.Record.Key) == "o-2" })
	if dl.Kind != wire.KindPermanent || dl.Attempts != 1 || dl.Group != "ledger" || !strings.Contains(dl.Error, "negative payment") ||
		dl.Type != "com.example.billing.PaymentTaken" || dl.OriginalTopic != "payments" {
		t.Fatalf("dead letter %+v", dl)
	}

	// Failures say what was seen instead.
	short := evbustest.Within(300 * time.Millisecond)
	msg := failure(t, func(tb testing.TB) {
		evbustest.ExpectHandled(tb, rec, "ledger", paymentTaken, func(p *PaymentTaken, _ bus.Meta) bool { return p.OrderID == "o-9" }, short)
	})
	for _, want := range []string{"handled no com.example.billing.PaymentTaken", "ledger handled: com.example.billing.PaymentTaken key=o-1", "dead-lettered", "negative payment"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("ExpectHandled's failure lacks %q:\n%s", want, msg)
		}
	}
	msg = failure(t, func(tb testing.TB) {
		evbustest.ExpectPublished(tb, stack, paymentTaken, func(p *PaymentTaken, _ bus.Meta) bool { return p.Cents > 1000 }, short)
	})
	if !strings.Contains(msg, "no com.example.billing.PaymentTaken matching") || !strings.Contains(msg, "OrderID:o-1") || !strings.Contains(msg, "OrderID:o-2") {
		t.Fatalf("ExpectPublished's failure does not list what was seen:\n%s", msg)
	}
	msg = failure(t, func(tb testing.TB) {
		evbustest.ExpectDeadLettered(tb, stack, "payments", "ledger", func(d wire.DeadLetter) bool { return d.Kind == wire.KindPoison }, short)
	})
	if !strings.Contains(msg, "payments.ledger.dlt") || !strings.Contains(msg, "key=o-2") {
		t.Fatalf("ExpectDeadLettered's failure does not list what was seen:\n%s", msg)
	}
}
