package bench

import (
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

// startStack starts an embedded broker and registry for one benchmark
// run, creates topic on it, and returns them with a registry client and a
// Kafka client; all are closed when the run ends.
func startStack(b *testing.B, topic string, partitions int32) (*devstack.Stack, *schema.Registry, *kgo.Client) {
	b.Helper()
	ctx := b.Context()
	stack := evbustest.Start(b)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: topic, Partitions: partitions}); err != nil {
		b.Fatal(err)
	}
	return stack, reg, cl
}

// records is a topic holding events published by evbus (Avro with the
// Confluent prefix and the CloudEvents headers), and the registry, shared
// by the variants of one consuming benchmark.
type records struct {
	brokers  []string
	reg      *schema.Registry
	schemaID int
	sum      int64 // of Cents over the records: every consumer must find it
	groups   atomic.Int64
}

// publishRecords starts a stack and publishes n events of typ on its
// topic, made of the given partitions.
func publishRecords(b *testing.B, typ *bus.Type[benchOrder], partitions int32, n int) *records {
	b.Helper()
	ctx := b.Context()
	d := typ.Descriptor()
	stack, reg, cl := startStack(b, d.Topic(), partitions)
	p, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/orders-service"), bus.Types(typ))
	if err != nil {
		b.Fatal(err)
	}
	e := &records{brokers: stack.Brokers(), reg: reg}
	var failed atomic.Int64
	for _, ev := range benchEvents(n) {
		e.sum += ev.Cents
		p.PublishAsync(ctx, ev, func(r bus.PublishResult) {
			if r.Err != nil {
				failed.Add(1)
			}
		})
	}
	if err := p.Flush(ctx); err != nil || failed.Load() > 0 {
		b.Fatalf("producing the records: %v, %d failed", err, failed.Load())
	}
	w, err := reg.Writer(ctx, d.Topic(), d.Schema())
	if err != nil {
		b.Fatal(err)
	}
	e.schemaID = w.ID
	return e
}

// watermillPublisher is Watermill's Kafka publisher (a Sarama
// SyncProducer, with Watermill's default config), keyed by the "key"
// metadata. (Sarama hashes keys with FNV-1a, not Kafka's murmur2: one key
// lands on one partition, but not the one a Java or franz-go producer
// picks.)
func watermillPublisher(b *testing.B, brokers []string) *kafka.Publisher {
	b.Helper()
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers: brokers,
		Marshaler: kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get("key"), nil
		}),
		OverwriteSaramaConfig: kafka.DefaultSaramaSyncPublisherConfig(),
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	return pub
}

// watermillSubscriber is Watermill's Kafka subscriber (Sarama) in group,
// reading records from the oldest offset.
func (e *records) watermillSubscriber(b *testing.B, group string) *kafka.Subscriber {
	b.Helper()
	cfg := kafka.DefaultSaramaSubscriberConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               e.brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		ConsumerGroup:         group,
		OverwriteSaramaConfig: cfg,
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	return sub
}
