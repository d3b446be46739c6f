package testkit

import "time"

// BenchOrder is the benchmarks' 8-field event, whose framed Avro value is
// about 200 bytes (CloudEvents headers come on top); BenchOrderSchema is
// its schema.
type BenchOrder struct {
	OrderID    string    `avro:"order_id"`
	CustomerID string    `avro:"customer_id"`
	SKU        string    `avro:"sku"`
	Qty        int32     `avro:"qty"`
	Cents      int64     `avro:"cents"`
	Currency   string    `avro:"currency"`
	PlacedAt   time.Time `avro:"placed_at"`
	Note       string    `avro:"note"`
}

const BenchOrderSchema = `{"type":"record","name":"OrderPlaced","namespace":"com.example.bench","fields":[
  {"name":"order_id","type":{"type":"string","logicalType":"uuid"}},
  {"name":"customer_id","type":"string"},
  {"name":"sku","type":"string"},
  {"name":"qty","type":"int"},
  {"name":"cents","type":"long"},
  {"name":"currency","type":"string"},
  {"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"note","type":"string"}
]}`
