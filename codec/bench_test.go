package codec_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/evbus/evbus/codec"
)

// A realistic event for the benchmarks.
const (
	benchOrderV1Avsc = `{"type":"record","name":"OrderPlaced","namespace":"com.example.bench","fields":[
	  {"name":"order_id","type":{"type":"string","logicalType":"uuid"}},
	  {"name":"customer_id","type":"string"},
	  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PENDING","PAID","SHIPPED","CANCELLED"]}},
	  {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
	    {"name":"sku","type":"string"},
	    {"name":"qty","type":"int"},
	    {"name":"unit_price","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}}
	  ]}}},
	  {"name":"coupon","type":["null","string"],"default":null},
	  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
	  {"name":"currency","type":"string"},
	  {"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}},
	  {"name":"channel","type":"string"},
	  {"name":"attributes","type":{"type":"map","values":"string"}}
	]}`
	// v2: qty widened to long, channel dropped, a field added.
	benchOrderV2Avsc = `{"type":"record","name":"OrderPlaced","namespace":"com.example.bench","fields":[
	  {"name":"order_id","type":{"type":"string","logicalType":"uuid"}},
	  {"name":"customer_id","type":"string"},
	  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PENDING","PAID","SHIPPED","CANCELLED","REFUNDED"]}},
	  {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
	    {"name":"sku","type":"string"},
	    {"name":"qty","type":"long"},
	    {"name":"unit_price","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}}
	  ]}}},
	  {"name":"coupon","type":["null","string"],"default":null},
	  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
	  {"name":"currency","type":"string"},
	  {"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}},
	  {"name":"attributes","type":{"type":"map","values":"string"}},
	  {"name":"sales_rep","type":["null","string"],"default":null}
	]}`
)

type benchLine struct {
	SKU       string   `avro:"sku"`
	Qty       int32    `avro:"qty"`
	UnitPrice *big.Rat `avro:"unit_price"`
}

type benchOrder struct {
	OrderID    string            `avro:"order_id"`
	CustomerID string            `avro:"customer_id"`
	Status     string            `avro:"status"`
	Lines      []benchLine       `avro:"lines"`
	Coupon     *string           `avro:"coupon"`
	Total      *big.Rat          `avro:"total"`
	Currency   string            `avro:"currency"`
	PlacedAt   time.Time         `avro:"placed_at"`
	Channel    string            `avro:"channel"`
	Attributes map[string]string `avro:"attributes"`
}

type benchLineV2 struct {
	SKU       string   `avro:"sku"`
	Qty       int64    `avro:"qty"`
	UnitPrice *big.Rat `avro:"unit_price"`
}

type benchOrderV2 struct {
	OrderID    string            `avro:"order_id"`
	CustomerID string            `avro:"customer_id"`
	Status     string            `avro:"status"`
	Lines      []benchLineV2     `avro:"lines"`
	Coupon     *string           `avro:"coupon"`
	Total      *big.Rat          `avro:"total"`
	Currency   string            `avro:"currency"`
	PlacedAt   time.Time         `avro:"placed_at"`
	Attributes map[string]string `avro:"attributes"`
	SalesRep   *string           `avro:"sales_rep"`
}

func newBenchOrder() benchOrder {
	return benchOrder{
		OrderID:    "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		CustomerID: "cust-000042",
		Status:     "PAID",
		Lines: []benchLine{
			{SKU: "SKU-1001", Qty: 2, UnitPrice: big.NewRat(1999, 100)},
			{SKU: "SKU-2002", Qty: 1, UnitPrice: big.NewRat(54950, 100)},
			{SKU: "SKU-3003", Qty: 12, UnitPrice: big.NewRat(125, 100)},
		},
		Coupon:     ptr("SPRING25"),
		Total:      big.NewRat(60448, 100),
		Currency:   "EUR",
		PlacedAt:   time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC),
		Channel:    "web",
		Attributes: map[string]string{"locale": "de-DE"},
	}
}

type benchEnv struct {
	v1, v2   *codec.Schema // as the producer and the consumer parsed them
	hambaV1  avro.Schema
	enc      *codec.Encoder
	consumer *codec.Codec
	frameV1  []byte
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	e := newEnv(b)
	v1, v2 := mustParse(b, benchOrderV1Avsc), mustParse(b, benchOrderV2Avsc)
	w := e.register(b, "bench", v1)
	enc, err := e.codec.Encoder(w.ID, w.Schema, v1)
	if err != nil {
		b.Fatal(err)
	}
	in := newBenchOrder()
	frame, err := enc.AppendEncode(nil, &in)
	if err != nil {
		b.Fatal(err)
	}
	hambaV1, err := avro.Parse(benchOrderV1Avsc)
	if err != nil {
		b.Fatal(err)
	}
	be := &benchEnv{v1: v1, v2: v2, hambaV1: hambaV1, enc: enc, consumer: e.consumer(b), frameV1: frame}
	// The consumer parsed its own copy of the schema; warm its caches
	// (writer schema by id, resolution plans) as a running consumer has.
	var o1 benchOrder
	var o2 benchOrderV2
	if err := be.consumer.Decode(context.Background(), frame, nil, mustParse(b, benchOrderV1Avsc), &o1); err != nil {
		b.Fatal(err)
	}
	if err := be.consumer.Decode(context.Background(), frame, nil, v2, &o2); err != nil {
		b.Fatal(err)
	}
	return be
}

func BenchmarkEncode(b *testing.B) {
	be := newBenchEnv(b)
	in := newBenchOrder()

	b.Run("evbus", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			out, err := be.enc.AppendEncode(buf[:0], &in)
			if err != nil {
				b.Fatal(err)
			}
			buf = out
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("hamba", func(b *testing.B) {
		var n int
		b.ReportAllocs()
		for b.Loop() {
			out, err := avro.Marshal(be.hambaV1, &in)
			if err != nil {
				b.Fatal(err)
			}
			n = len(out)
		}
		b.SetBytes(int64(n + 5))
	})
}

func BenchmarkDecode(b *testing.B) {
	be := newBenchEnv(b)
	ctx := context.Background()
	reader := mustParse(b, benchOrderV1Avsc) // the consumer's own copy, not the registry's
	if err := be.consumer.Decode(ctx, be.frameV1, nil, reader, new(benchOrder)); err != nil {
		b.Fatal(err)
	}
	body := be.frameV1[5:]

	b.Run("evbus", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(be.frameV1)))
		for b.Loop() {
			var out benchOrder
			if err := be.consumer.Decode(ctx, be.frameV1, nil, reader, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hamba", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(be.frameV1)))
		for b.Loop() {
			var out benchOrder
			if err := avro.Unmarshal(be.hambaV1, body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("evbus-resolved", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(be.frameV1)))
		for b.Loop() {
			var out benchOrderV2
			if err := be.consumer.Decode(ctx, be.frameV1, nil, be.v2, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same resolution done by hand with hamba, for scale.
	b.Run("hamba-resolved", func(b *testing.B) {
		r2, err := avro.Parse(benchOrderV2Avsc)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := avro.NewSchemaCompatibility().Resolve(r2, be.hambaV1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(be.frameV1)))
		for b.Loop() {
			var out benchOrderV2
			if err := avro.Unmarshal(plan, body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The benchmarks measure what they claim: both sides produce the same
// bytes and the same values.
func TestBenchmarkInputs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v1, v2 := mustParse(t, benchOrderV1Avsc), mustParse(t, benchOrderV2Avsc)
	in := newBenchOrder()
	frame, w := e.encode(t, "bench", v1, &in)
	hambaV1, err := avro.Parse(benchOrderV1Avsc)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := avro.Marshal(hambaV1, &in)
	if err != nil {
		t.Fatal(err)
	}
	if string(frame) != string(append(codec.AppendPrefix(nil, w.ID), bare...)) {
		t.Fatalf("evbus frame %x is not the prefix and hamba's body %x", frame, bare)
	}
	var out benchOrder
	if err := e.consumer(t).Decode(ctx, frame, nil, v1, &out); err != nil {
		t.Fatal(err)
	}
	var out2 benchOrderV2
	if err := e.consumer(t).Decode(ctx, frame, nil, v2, &out2); err != nil {
		t.Fatal(err)
	}
	if out.Total.Cmp(in.Total) != 0 || out2.Total.Cmp(in.Total) != 0 || len(out2.Lines) != 3 || out2.Lines[2].Qty != 12 ||
		out2.SalesRep != nil || !out2.PlacedAt.Equal(in.PlacedAt) || out.Channel != "web" || *out2.Coupon != "SPRING25" {
		t.Fatalf("decoded %+v and %+v from %+v", out, out2, in)
	}
}
