package codec_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

type exampleOrderPlaced struct {
	OrderID  string    `avro:"order_id"`
	Total    *big.Rat  `avro:"total"`
	Coupon   *string   `avro:"coupon"`
	PlacedAt time.Time `avro:"placed_at"`
}

// A producer registers the event's schema and frames values with the id
// the registry assigned; a consumer decodes them with the schema it was
// compiled with, fetching the writer schema by id.
func ExampleCodec_Decode() {
	registry := srfake.New() // stands in for your schema registry
	defer registry.Close()
	ctx := context.Background()

	s, err := codec.Parse(`{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
	  {"name":"order_id","type":"string"},
	  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
	  {"name":"coupon","type":["null","string"],"default":null},
	  {"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}}
	]}`)
	if err != nil {
		panic(err)
	}

	// Producer.
	reg, err := schema.New(registry.URL())
	if err != nil {
		panic(err)
	}
	w, err := reg.Writer(ctx, "orders", s)
	if err != nil {
		panic(err)
	}
	c, err := codec.New(reg)
	if err != nil {
		panic(err)
	}
	enc, err := c.Encoder(w.ID, w.Schema, s)
	if err != nil {
		panic(err)
	}
	value, err := enc.AppendEncode(nil, &exampleOrderPlaced{
		OrderID:  "o-1",
		Total:    big.NewRat(4999, 100),
		PlacedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("subject %s, frame % x ...\n", w.Subject, value[:5])

	// Consumer, in another process.
	creg, err := schema.New(registry.URL())
	if err != nil {
		panic(err)
	}
	var got exampleOrderPlaced
	dec, err := codec.New(creg)
	if err != nil {
		panic(err)
	}
	if err := dec.Decode(ctx, value, nil, s, &got); err != nil {
		panic(err)
	}
	fmt.Println(got.OrderID, got.Total.FloatString(2), got.Coupon == nil, got.PlacedAt.Format(time.RFC3339))

	// Output:
	// subject orders-com.example.orders.OrderPlaced, frame 00 00 00 00 01 ...
	// o-1 49.99 true 2025-01-02T03:04:05Z
}

// Compatible says whether a consumer on one version reads data written
// with another, and which field breaks it when it cannot.
func ExampleCompatible() {
	v1, _ := codec.Parse(`{"type":"record","name":"OrderPlaced","fields":[
	  {"name":"order_id","type":"string"},
	  {"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"id","type":"string"}]}}
	]}`)
	v2, _ := codec.Parse(`{"type":"record","name":"OrderPlaced","fields":[
	  {"name":"order_id","type":"string"},
	  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
	    {"name":"id","type":"string"},
	    {"name":"tier","type":"string"}
	  ]}}
	]}`)

	fmt.Println("v1 reads v2:", codec.Compatible(v1, v2))
	err := codec.Compatible(v2, v1)
	var ie *codec.IncompatibleError
	if errors.As(err, &ie) {
		fmt.Println("v2 reads v1:", errors.Is(err, codec.ErrIncompatible), ie.Path)
	}
	// Output:
	// v1 reads v2: <nil>
	// v2 reads v1: true customer.tier
}

// Parse turns schema text into a Schema; bad text is ErrInvalidSchema.
func ExampleParse() {
	s, err := codec.Parse(`{"type":"enum","name":"Status","namespace":"com.example","symbols":["NEW","PAID"]}`)
	fmt.Println(s.FullName(), err)
	_, err = codec.Parse(`{"type":"record","name":"Broken"}`)
	fmt.Println(errors.Is(err, codec.ErrInvalidSchema))
	// Output:
	// com.example.Status <nil>
	// true
}

// A tool reads events written as JSON, encodes them, and prints what it
// decodes as JSON again: as people write values, or in the Avro
// specification's JSON encoding, as Confluent's console tools do.
func ExampleMarshalJSON() {
	registry := srfake.New() // stands in for your schema registry
	defer registry.Close()
	ctx := context.Background()
	reg, err := schema.New(registry.URL())
	if err != nil {
		panic(err)
	}
	s, err := codec.Parse(`{"type":"record","name":"Invoice","namespace":"com.example.billing","fields":[
	  {"name":"id","type":"string"},
	  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
	  {"name":"note","type":["null","string"],"default":null},
	  {"name":"issued_at","type":{"type":"long","logicalType":"timestamp-millis"}}
	]}`)
	if err != nil {
		panic(err)
	}

	v, err := codec.UnmarshalJSON(s, []byte(`{"id":"i-1","total":"49.9","note":"paid","issued_at":"2026-01-02T16:04:05.123+01:00"}`), codec.JSONOptions{})
	if err != nil {
		panic(err)
	}
	w, err := reg.Writer(ctx, "invoices", s)
	if err != nil {
		panic(err)
	}
	c, err := codec.New(reg)
	if err != nil {
		panic(err)
	}
	enc, err := c.Encoder(w.ID, w.Schema, s)
	if err != nil {
		panic(err)
	}
	value, err := enc.AppendEncode(nil, v)
	if err != nil {
		panic(err)
	}

	var decoded any
	writer, _, err := c.DecodeWriter(ctx, value, nil, nil, &decoded)
	if err != nil {
		panic(err)
	}
	for _, o := range []codec.JSONOptions{{}, {AvroJSON: true}} {
		out, err := codec.MarshalJSON(writer, decoded, o)
		if err != nil {
			panic(err)
		}
		fmt.Println(string(out))
	}
	// Output:
	// {"id":"i-1","total":"49.90","note":"paid","issued_at":"2026-01-02T15:04:05.123Z"}
	// {"id":"i-1","total":"\u0013~","note":{"string":"paid"},"issued_at":1767366245123}
}
