// Command quickstart is the main job on the embedded stack: a service
// publishes OrderPlaced events, a consumer group handles them, one order
// the handler rejects and one record of garbage bytes from a foreign
// producer land in the group's dead-letter topic, and the output shows
// each step and the dead letters with their headers.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// OrderPlaced is an integration event. The schema is given as an .avsc;
// avro struct tags name the fields (avrogen generates such structs).
type OrderPlaced struct {
	OrderID    string    `avro:"order_id"`
	CustomerID string    `avro:"customer_id"`
	Total      *big.Rat  `avro:"total"`
	PlacedAt   time.Time `avro:"placed_at"`
	Coupon     *string   `avro:"coupon"`
}

const orderPlacedSchema = `{
  "type": "record", "name": "OrderPlaced", "namespace": "com.example.orders",
  "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "customer_id", "type": "string"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "coupon", "type": ["null", "string"], "default": null}
  ]
}`

// orderPlaced: published to "orders", keyed by the order id, so all events
// of one order land on one partition, in order.
var orderPlaced = bus.Event[OrderPlaced]("orders",
	func(o *OrderPlaced) string { return o.OrderID },
	bus.Schema(orderPlacedSchema))

const group = "billing"

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	stack, err := devstack.Start(ctx)
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Fprintf(out, "embedded stack: kafka %v, registry %s\n\n", stack.Brokers(), stack.RegistryURL())

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl),
		bus.TopicSpec{Name: "orders", Partitions: 3, DeadLetterGroups: []string{group}}); err != nil {
		return err
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		return err
	}

	// The consumer group: a handler per event type; a Permanent error goes
	// to the dead-letter topic without retries.
	var mu sync.Mutex
	settled := 0
	allSettled := make(chan struct{})
	c, err := consumer.New(group, reg,
		consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)),
		consumer.Logger(slog.New(slog.DiscardHandler)),
		consumer.Observe(func(o consumer.Outcome) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "  %-8s %-13s %s/%d@%d key=%s %s\n", o.Group, o.Result, o.Meta.Topic, o.Meta.Partition, o.Meta.Offset, o.Meta.Key, o.Meta.ID)
			if settled++; settled == 5 {
				close(allSettled)
			}
		}))
	if err != nil {
		return err
	}
	consumer.Handle(c, orderPlaced, func(ctx context.Context, o *OrderPlaced, m bus.Meta) error {
		if o.Total.Sign() <= 0 {
			return consumer.Permanent(fmt.Errorf("order %s: total %s is not positive", o.OrderID, o.Total.FloatString(2)))
		}
		fmt.Fprintf(out, "  billing  charges %s %s for %s (event %s)\n", o.CustomerID, o.Total.FloatString(2), o.OrderID, m.ID)
		return nil
	})
	// The producing service.
	pub, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/orders-service"), bus.Types(orderPlaced))
	if err != nil {
		return err
	}
	coupon := "WELCOME10"
	now := time.Now().UTC()
	orders := []OrderPlaced{
		{OrderID: "o-1001", CustomerID: "c-7", Total: big.NewRat(4999, 100), PlacedAt: now, Coupon: &coupon},
		{OrderID: "o-1002", CustomerID: "c-9", Total: big.NewRat(1250, 100), PlacedAt: now},
		{OrderID: "o-1003", CustomerID: "c-7", Total: big.NewRat(0, 1), PlacedAt: now}, // rejected by the handler
		{OrderID: "o-1004", CustomerID: "c-3", Total: big.NewRat(310045, 100), PlacedAt: now},
	}
	fmt.Fprintln(out, "orders-service publishes:")
	for i := range orders {
		if err := pub.Publish(ctx, &orders[i]); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s total=%s\n", orders[i].OrderID, orders[i].Total.FloatString(2))
	}
	// A foreign producer writes bytes that are not Confluent-framed Avro.
	poison := &kgo.Record{Topic: "orders", Key: []byte("o-1005"), Value: []byte("{\"not\":\"avro\"}")}
	if err := cl.ProduceSync(ctx, poison).FirstErr(); err != nil {
		return err
	}
	fmt.Fprintln(out, "  (and a foreign producer writes a JSON record to orders)")
	fmt.Fprintln(out, "\nbilling consumer group:")
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()

	select {
	case <-allSettled:
	case <-ctx.Done():
		return errors.New("the consumer did not settle every record in time")
	}
	if err := c.Close(ctx); err != nil {
		return err
	}
	if err := <-runDone; err != nil {
		return err
	}

	// The dead-letter topic, as an operator sees it.
	dlt := wire.DeadLetterTopic("orders", group)
	fmt.Fprintf(out, "\ndead-letter topic %s:\n", dlt)
	reader, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.ConsumeTopics(dlt),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer reader.Close()
	for found := 0; found < 2; {
		fetches := reader.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return err
		}
		for _, r := range fetches.Records() {
			d, err := wire.ParseDeadLetter(r)
			if err != nil {
				return err
			}
			found++
			fmt.Fprintf(out, "  key=%s kind=%s attempts=%d from %s/%d@%d\n    error: %s\n    value: %d bytes, kept as written\n",
				r.Key, d.Kind, d.Attempts, d.OriginalTopic, d.OriginalPartition, d.OriginalOffset, d.Error, len(r.Value))
		}
	}
	s := c.Stats()
	fmt.Fprintf(out, "\nsummary: published=%d handled=%d dead-lettered=%d (permanent=%d poison=%d)\n",
		len(orders)+1, s.Handled, s.DeadLettered[wire.KindPermanent]+s.DeadLettered[wire.KindPoison],
		s.DeadLettered[wire.KindPermanent], s.DeadLettered[wire.KindPoison])
	return nil
}
