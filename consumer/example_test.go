package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// Payment is an integration event; the account id is its partition key.
type Payment struct {
	Account string `avro:"account"`
	Cents   int64  `avro:"cents"`
}

var paymentReceived = bus.Event[Payment]("payments",
	func(p *Payment) string { return p.Account },
	bus.Namespace("com.example.payments"))

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack, err := devstack.Start(ctx) // in-process Kafka and schema registry
	if err != nil {
		log.Fatal(err)
	}
	defer stack.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		log.Fatal(err)
	}

	// The topic, and the dead-letter topic of the "ledger" group.
	err = bus.CreateTopics(ctx, kadm.NewClient(cl),
		bus.TopicSpec{Name: "payments", Partitions: 3, DeadLetterGroups: []string{"ledger"}})
	if err != nil {
		log.Fatal(err)
	}

	c, err := consumer.New("ledger", reg,
		consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)),
		consumer.Logger(slog.New(slog.DiscardHandler)),
		consumer.HandlerRetry(consumer.Backoff{Initial: 10 * time.Millisecond, MaxAttempts: 3}))
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	consumer.Handle(c, paymentReceived, func(ctx context.Context, p *Payment, m bus.Meta) error {
		if p.Cents < 0 {
			return consumer.Permanent(errors.New("negative payment")) // straight to the dead-letter topic
		}
		fmt.Printf("%s: %d cents (%s, attempt %d)\n", p.Account, p.Cents, m.Type, consumer.Attempt(ctx))
		if p.Cents == 300 {
			close(done)
		}
		return nil
	})
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	pub, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/payments-service"), bus.Types(paymentReceived))
	if err != nil {
		log.Fatal(err)
	}
	err = pub.Publish(ctx,
		&Payment{Account: "acct-1", Cents: 100},
		&Payment{Account: "acct-1", Cents: -5},
		&Payment{Account: "acct-1", Cents: 300})
	if err != nil {
		log.Fatal(err)
	}

	<-done
	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-runErr; err != nil {
		log.Fatal(err)
	}
	st := c.Stats()
	fmt.Println("handled", st.Handled, "dead-lettered", st.DeadLettered[wire.KindPermanent])
	// Output:
	// acct-1: 100 cents (com.example.payments.Payment, attempt 1)
	// acct-1: 300 cents (com.example.payments.Payment, attempt 1)
	// handled 2 dead-lettered 1
}
