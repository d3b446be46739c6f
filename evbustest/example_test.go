package evbustest_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

// A service's test: the embedded stack, the service's consumer with a
// Recorder, an event published, and the assertion that the group handled
// it (a readable failure lists what it saw instead).
func Example() {
	testBilling := func(t *testing.T) {
		stack := evbustest.Start(t)
		reg, _ := schema.New(stack.RegistryURL())
		rec := evbustest.NewRecorder()
		c, _ := consumer.New("billing", reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)), rec.Option())
		consumer.Handle(c, paymentTaken, func(ctx context.Context, ev *PaymentTaken, m bus.Meta) error { return nil })
		go c.Run(t.Context())
		defer c.Close(context.Background())

		cl, _ := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
		defer cl.Close()
		pub, _ := bus.NewPublisher(t.Context(), cl, reg, bus.Source("/payments"), bus.Types(paymentTaken), bus.SkipTopicCheck())
		_ = pub.Publish(t.Context(), PaymentTaken{OrderID: "o-1", Cents: 100})

		evbustest.ExpectHandled(t, rec, "billing", paymentTaken, func(ev *PaymentTaken, _ bus.Meta) bool { return ev.OrderID == "o-1" })
	}
	_ = testBilling // in a _test.go file: func TestBilling(t *testing.T) { ... }
}
