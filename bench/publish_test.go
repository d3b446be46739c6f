package bench

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

// publishEnv is a broker that acknowledges produce requests without
// storing them (kfake.BlackholeProduce: the broker is not the
// bottleneck) and a registry, shared by every variant of one run.
type publishEnv struct {
	brokers  []string
	reg      *schema.Registry
	schemaID int
	events   []*benchOrder
}

func startPublishEnv(b *testing.B) *publishEnv {
	b.Helper()
	stack := evbustest.Start(b) // for its registry; its broker idles
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, publishTopic), kfake.BlackholeProduce())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cluster.Close)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	d := publishOrder.Descriptor()
	w, err := reg.Writer(b.Context(), d.Topic(), d.Schema())
	if err != nil {
		b.Fatal(err)
	}
	return &publishEnv{brokers: cluster.ListenAddrs(), reg: reg, schemaID: w.ID, events: benchEvents(1024)}
}

// kgoClient is a producer with franz-go's defaults (idempotent, acks=all,
// 10ms linger), connected by one record.
func (e *publishEnv) kgoClient(b *testing.B) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	if err := cl.ProduceSync(b.Context(), &kgo.Record{Topic: publishTopic, Value: []byte("warm-up")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	return cl
}

func (e *publishEnv) publisher(b *testing.B) *bus.Publisher {
	b.Helper()
	p, err := bus.NewPublisher(b.Context(), e.kgoClient(b), e.reg, bus.Source("/orders-service"), bus.Types(publishOrder))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// watermill is Watermill's Kafka publisher, keyed by the aggregate id
// like the others, connected by one message.
func (e *publishEnv) watermill(b *testing.B) *kafka.Publisher {
	b.Helper()
	pub := watermillPublisher(b, e.brokers)
	b.Cleanup(func() { pub.Close() })
	if err := pub.Publish(publishTopic, message.NewMessage(watermill.NewUUID(), []byte("warm-up"))); err != nil {
		b.Fatal(err)
	}
	return pub
}

// watermillMessage is what a Watermill user publishes: the same framed
// Avro bytes as the others, encoded in the loop, with the key in metadata.
func (e *publishEnv) watermillMessage(ev *benchOrder) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), handEncode(e.schemaID, ev))
	m.Metadata.Set("key", ev.OrderID)
	return m
}

// BenchmarkPublish publishes the same ~200-byte event (same value bytes)
// through each implementation; one op is one record.
//
//	impl=evbus            bus.Publisher.PublishAsync, many in flight, Flush at the end
//	impl=franz-go+hamba   kgo.Client.Produce of avro.Marshal + Confluent prefix, no headers
//	impl=watermill        watermill-kafka Publisher.Publish, one message per call, one goroutine
//	impl=watermill-x64    the same from 64 goroutines (Sarama batches concurrent sends)
//	impl=evbus-sync       bus.Publisher.Publish, one event per call, one goroutine
//	impl=evbus-sync-x64   the same from 64 goroutines
//
// watermill-kafka v3 has no asynchronous publisher: concurrent callers are
// how a Watermill user gets throughput.
func BenchmarkPublish(b *testing.B) {
	e := startPublishEnv(b)
	ctx := context.Background()
	// Each run (the testing package calls a benchmark function again for
	// each b.N it tries) makes its own client; the run's cleanups close it.

	b.Run("impl=evbus", func(b *testing.B) {
		p := e.publisher(b)
		var failed atomic.Int64
		done := func(r bus.PublishResult) {
			if r.Err != nil {
				failed.Add(1)
			}
		}
		m := startMeter(b)
		for i := 0; i < b.N; i++ {
			p.PublishAsync(ctx, e.events[i&1023], done)
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		m.stop(b)
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d events failed", n)
		}
	})

	b.Run("impl=franz-go+hamba", func(b *testing.B) {
		cl := e.kgoClient(b)
		var failed atomic.Int64
		done := func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		}
		m := startMeter(b)
		for i := 0; i < b.N; i++ {
			ev := e.events[i&1023]
			cl.Produce(ctx, &kgo.Record{Topic: publishTopic, Key: []byte(ev.OrderID), Value: handEncode(e.schemaID, ev)}, done)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		m.stop(b)
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d records failed", n)
		}
	})

	b.Run("impl=watermill", func(b *testing.B) {
		pub := e.watermill(b)
		m := startMeter(b)
		for i := 0; i < b.N; i++ {
			if err := pub.Publish(publishTopic, e.watermillMessage(e.events[i&1023])); err != nil {
				b.Fatal(err)
			}
		}
		m.stop(b)
	})

	b.Run("impl=watermill-x64", func(b *testing.B) {
		pub := e.watermill(b)
		var next atomic.Int64
		b.SetParallelism(32) // 32 x GOMAXPROCS(2) goroutines
		m := startMeter(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := pub.Publish(publishTopic, e.watermillMessage(e.events[next.Add(1)&1023])); err != nil {
					b.Error(err)
					return
				}
			}
		})
		m.stop(b)
	})

	b.Run("impl=evbus-sync", func(b *testing.B) {
		p := e.publisher(b)
		m := startMeter(b)
		for i := 0; i < b.N; i++ {
			if err := p.Publish(ctx, e.events[i&1023]); err != nil {
				b.Fatal(err)
			}
		}
		m.stop(b)
	})

	b.Run("impl=evbus-sync-x64", func(b *testing.B) {
		p := e.publisher(b)
		var next atomic.Int64
		b.SetParallelism(32)
		m := startMeter(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Publish(ctx, e.events[next.Add(1)&1023]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		m.stop(b)
	})
}
