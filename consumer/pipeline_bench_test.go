package consumer

import (
	"context"
	"log/slog"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/schema"
)

// BenchOrder is the event of the benchmarks, ~200 bytes (the Avro body;
// the CloudEvents headers come on top). Exported for the package's
// external benchmarks.
type BenchOrder struct {
	OrderID    string `avro:"order_id"`
	CustomerID string `avro:"customer_id"`
	SKU        string `avro:"sku"`
	Qty        int32  `avro:"qty"`
	Cents      int64  `avro:"cents"`
	Currency   string `avro:"currency"`
	PlacedAt   int64  `avro:"placed_at"`
	Note       string `avro:"note"`
}

var pipelineType = bus.Event[BenchOrder]("pipeline", func(o *BenchOrder) string { return o.CustomerID },
	bus.Namespace("com.example.bench"))

// BenchmarkPipeline splits the cost of one record, without Kafka in the
// way: bare hamba/avro, the codec's Decode, reading the headers, and the
// whole pipeline (headers, routing, decoding, a no-op handler).
func BenchmarkPipeline(b *testing.B) {
	ctx := context.Background()
	st, err := devstack.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	reg, err := schema.New(st.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(st.Brokers()...), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("pipeline"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	pub, err := bus.NewPublisher(ctx, cl, reg, bus.Source("/bench"), bus.Types(pipelineType), bus.SkipTopicCheck())
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Publish(ctx, &BenchOrder{
		OrderID: "0190b7a2-8c1e-7a3b-9f00-000000000001", CustomerID: "customer-000001", SKU: "SKU-ABCDEFGH-1234",
		Qty: 3, Cents: 1234, Currency: "EUR", PlacedAt: 1,
		Note: "gift wrap, leave at the door gift wrap, leave at the door gift wrap, leave at the door ",
	}); err != nil {
		b.Fatal(err)
	}
	var rec *kgo.Record
	for rec == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { rec = r })
	}

	c, err := New("bench", reg, Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	Handle(c, pipelineType, func(context.Context, *BenchOrder, bus.Meta) error { return nil })
	_, c.retryOf = c.topicsLocked()
	c.cl = cl
	p := newPartition(ctx, c, "pipeline", 0)
	s, err := avro.Parse(pipelineType.Descriptor().Schema().String())
	if err != nil {
		b.Fatal(err)
	}

	b.Run("hamba", func(b *testing.B) {
		b.ReportAllocs()
		cputime.PerOp(b)
		for b.Loop() {
			var v BenchOrder
			if err := avro.Unmarshal(s, rec.Value[5:], &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		cputime.PerOp(b)
		for b.Loop() {
			var v BenchOrder
			if err := c.codec.Decode(ctx, rec.Value, nil, pipelineType.Descriptor().Schema(), &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("headers", func(b *testing.B) {
		b.ReportAllocs()
		cputime.PerOp(b)
		for b.Loop() {
			env := &envelope{rec: rec}
			if err := c.open(p, env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipeline", func(b *testing.B) {
		b.ReportAllocs()
		cputime.PerOp(b)
		l := &lane{} // it keeps its slot from one record to the next
		defer p.drop(l)
		for b.Loop() {
			if !c.process(p, l, rec) {
				b.Fatal("not settled")
			}
		}
	})
}
