package consumer

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
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
// whole pipeline (headers, routing, decoding, a no-op handler). The trick/
// sub-benchmarks measure each speed trick of the path against the plain
// code doing the same work, in the same run, to be read as a share of
// pipeline.
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
			r := &call{c: c, p: p, rec: rec}
			if err := r.open(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipeline", func(b *testing.B) {
		b.ReportAllocs()
		cputime.PerOp(b)
		for b.Loop() {
			r := call{c: c, p: p, rec: rec}
			if !r.steps(r.open()) {
				b.Fatal("not settled")
			}
		}
	})
	benchTricks(b, c, p, rec)
}

// Sinks keep the compiler from dropping the work of the trick benchmarks.
var (
	sinkTime time.Time
	sinkMeta bus.Meta
	sinkCtx  context.Context
)

// benchTricks measures the path's speed tricks against the plain code.
func benchTricks(b *testing.B, c *Consumer, p *partition, rec *kgo.Record) {
	var timeText string
	for _, h := range rec.Headers {
		if h.Key == wire.HeaderTime {
			timeText = string(h.Value)
		}
	}
	run := func(name string, fn func()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			cputime.PerOp(b)
			for b.Loop() {
				fn()
			}
		})
	}
	// What a hand-written RFC 3339 parser would save (it was removed: it
	// saved 14 ns of 1195, 1.1%), time.Parse on ce_time.
	run("plain=time.Parse", func() { sinkTime, _ = time.Parse(time.RFC3339Nano, timeText) })
	// bus.Meta's strings aliasing the fetched header values, against a
	// copy of each (what open converts).
	strs := func(conv func([]byte) string) {
		for i := range rec.Headers {
			h := &rec.Headers[i]
			switch h.Key {
			case wire.HeaderID:
				sinkMeta.ID = conv(h.Value)
			case wire.HeaderSource:
				sinkMeta.Source = conv(h.Value)
			case wire.HeaderSubject:
				sinkMeta.Subject = conv(h.Value)
			case wire.HeaderCorrelationID:
				sinkMeta.CorrelationID = conv(h.Value)
			case wire.HeaderCausationID:
				sinkMeta.CausationID = conv(h.Value)
			case wire.HeaderTime:
				sinkMeta.Type = conv(h.Value)
			}
		}
	}
	run("trick=unsafeStrings", func() { strs(text) })
	run("plain=copiedStrings", func() { strs(func(v []byte) string { return string(v) }) })
	// What a lane keeping its concurrency slot from one record to the
	// next would save (it was removed: 11 ns of 1195, 0.9%), a slot per
	// record.
	run("plain=slotPerRecord", func() {
		if !p.acquire() {
			b.Fatal("slot")
		}
		p.release()
	})
	// The handler's context answering Value(bus.MetaKey) and Attempt
	// itself, against two context.WithValue per call; the handler reads
	// both once.
	var h handling
	run("trick=ownContext", func() {
		h.ctx = handlerContext{Context: p.ctx, meta: &h.meta, attempt: 1}
		sinkCtx = &h.ctx
		m, _ := bus.MetaFrom(sinkCtx)
		sinkMeta.Offset = m.Offset + int64(Attempt(sinkCtx))
	})
	run("plain=withValue", func() {
		sinkCtx = context.WithValue(bus.WithMeta(p.ctx, &h.meta), attemptKey{}, 1)
		m, _ := bus.MetaFrom(sinkCtx)
		sinkMeta.Offset = m.Offset + int64(Attempt(sinkCtx))
	})
}
