// Command quickstart publishes a few OrderPlaced events as Confluent-framed
// Avro on the embedded stack and consumes them back, printing each one.
package main

import (
	"context"
	"fmt"
	"log"
	"math/big"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/schema"
)

const orderPlaced = `{
  "type": "record", "name": "OrderPlaced", "namespace": "com.example.orders",
  "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "customer_id", "type": "string"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "coupon", "type": ["null", "string"], "default": null}
  ]
}`

// OrderPlaced is the Go side of the schema: avro struct tags name the fields.
type OrderPlaced struct {
	OrderID    string    `avro:"order_id"`
	CustomerID string    `avro:"customer_id"`
	Total      *big.Rat  `avro:"total"`
	PlacedAt   time.Time `avro:"placed_at"`
	Coupon     *string   `avro:"coupon"`
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	log.SetFlags(0)

	stack, err := devstack.Start(ctx)
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Printf("embedded stack: kafka %v, registry %s\n", stack.Brokers(), stack.RegistryURL())

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	const topic = "orders"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}

	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		return err
	}
	s, err := codec.Parse(orderPlaced)
	if err != nil {
		return err
	}
	w, err := reg.Writer(ctx, topic, s)
	if err != nil {
		return err
	}
	fmt.Printf("registered %s as schema id %d\n", w.Subject, w.ID)
	c := codec.New(reg)
	enc, err := c.Encoder(w.ID, w.Schema, s)
	if err != nil {
		return err
	}

	coupon := "WELCOME10"
	orders := []OrderPlaced{
		{OrderID: "o-1001", CustomerID: "c-7", Total: big.NewRat(4999, 100), PlacedAt: time.Now().UTC(), Coupon: &coupon},
		{OrderID: "o-1002", CustomerID: "c-9", Total: big.NewRat(1250, 100), PlacedAt: time.Now().UTC()},
		{OrderID: "o-1003", CustomerID: "c-7", Total: big.NewRat(310045, 100), PlacedAt: time.Now().UTC()},
	}
	for i := range orders {
		value, err := enc.AppendEncode(nil, &orders[i])
		if err != nil {
			return err
		}
		rec := &kgo.Record{Topic: topic, Key: []byte(orders[i].OrderID), Value: value}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		fmt.Printf("published %s -> partition %d offset %d (%d bytes)\n", orders[i].OrderID, rec.Partition, rec.Offset, len(value))
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup("quickstart"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer consumer.Close()
	for seen := 0; seen < len(orders); {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		for _, rec := range fetches.Records() {
			var o OrderPlaced
			if err := c.Decode(ctx, rec.Value, nil, s, &o); err != nil {
				return err
			}
			total := o.Total.FloatString(2)
			fmt.Printf("consumed  %s customer=%s total=%s partition=%d offset=%d\n", o.OrderID, o.CustomerID, total, rec.Partition, rec.Offset)
			seen++
		}
	}
	return nil
}
