package codec_test

import (
	"fmt"
	"math"
	"math/big"
	"reflect"
	"testing"
	"time"
)

// allFeatures is one realistic event that uses every Avro feature events
// use: nested records, a named type used twice, arrays, maps (of arrays),
// nullable unions of a primitive and of a record, an enum, a fixed, and the
// logical types timestamp-millis, timestamp-micros, date, decimal (bytes)
// and uuid (string).
const allFeatures = `{
  "type": "record", "name": "OrderPlaced", "namespace": "com.example.orders",
  "fields": [
    {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "id", "type": "string"},
      {"name": "email", "type": ["null", "string"], "default": null},
      {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
        {"name": "street", "type": "string"},
        {"name": "zip", "type": "string"}
      ]}}
    ]}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["PENDING", "PAID", "SHIPPED"]}},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "OrderLine", "fields": [
      {"name": "sku", "type": "string"},
      {"name": "qty", "type": "int"},
      {"name": "unit_price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}}
    ]}}},
    {"name": "attributes", "type": {"type": "map", "values": "string"}},
    {"name": "dimensions", "type": {"type": "map", "values": {"type": "array", "items": "double"}}},
    {"name": "coupon", "type": ["null", "string"], "default": null},
    {"name": "shipping", "type": ["null", "Address"], "default": null},
    {"name": "checksum", "type": {"type": "fixed", "name": "MD5", "size": 16}},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "captured_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "delivery_date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "gift", "type": "boolean"},
    {"name": "weight_kg", "type": "float"},
    {"name": "sequence", "type": "long"},
    {"name": "note", "type": "bytes"}
  ]
}`

type Address struct {
	Street string `avro:"street"`
	Zip    string `avro:"zip"`
}

type Customer struct {
	ID      string  `avro:"id"`
	Email   *string `avro:"email"`
	Address Address `avro:"address"`
}

type OrderLine struct {
	SKU       string   `avro:"sku"`
	Qty       int32    `avro:"qty"`
	UnitPrice *big.Rat `avro:"unit_price"`
}

type OrderPlaced struct {
	OrderID      string               `avro:"order_id"`
	Customer     Customer             `avro:"customer"`
	Status       string               `avro:"status"`
	Lines        []OrderLine          `avro:"lines"`
	Attributes   map[string]string    `avro:"attributes"`
	Dimensions   map[string][]float64 `avro:"dimensions"`
	Coupon       *string              `avro:"coupon"`
	Shipping     *Address             `avro:"shipping"`
	Checksum     [16]byte             `avro:"checksum"`
	Total        *big.Rat             `avro:"total"`
	PlacedAt     time.Time            `avro:"placed_at"`
	CapturedAt   time.Time            `avro:"captured_at"`
	DeliveryDate time.Time            `avro:"delivery_date"`
	Gift         bool                 `avro:"gift"`
	WeightKg     float32              `avro:"weight_kg"`
	Sequence     int64                `avro:"sequence"`
	Note         []byte               `avro:"note"`
}

func ptr[T any](v T) *T { return &v }

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad rat " + s)
	}
	return r
}

// fullOrder has every optional part set; its times carry nanoseconds the
// logical types cannot hold.
func fullOrder() OrderPlaced {
	placed := time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.UTC)
	return OrderPlaced{
		OrderID: "0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		Customer: Customer{
			ID:      "cust-42",
			Email:   ptr("ada@example.com"),
			Address: Address{Street: "1 Analytical Way", Zip: "EC1A 1BB"},
		},
		Status: "PAID",
		Lines: []OrderLine{
			{SKU: "SKU-1", Qty: 2, UnitPrice: rat("19.99")},
			{SKU: "SKU-2", Qty: 1, UnitPrice: rat("-0.50")},
			{SKU: "SKU-3", Qty: 100000, UnitPrice: rat("9999999999.99")},
		},
		Attributes: map[string]string{"channel": "web", "locale": "en-GB", "": "empty key"},
		Dimensions: map[string][]float64{"box": {30.5, 20, 10.25}, "none": {}},
		Coupon:     ptr("SPRING25"),
		Shipping:   &Address{Street: "221B Baker St", Zip: "NW1 6XE"},
		Checksum:   [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff},
		Total:      rat("1234567890.12"),
		PlacedAt:   placed,
		CapturedAt: placed.Add(1500 * time.Millisecond),
		// date holds days: a time of day is lost.
		DeliveryDate: time.Date(2025, 3, 18, 0, 0, 0, 0, time.UTC),
		Gift:         true,
		WeightKg:     1.25,
		Sequence:     1 << 40,
		Note:         []byte{0, 1, 2, 0xff},
	}
}

// sparseOrder has every nullable field null and every collection empty.
func sparseOrder() OrderPlaced {
	return OrderPlaced{
		OrderID:      "00000000-0000-0000-0000-000000000000",
		Customer:     Customer{ID: "c", Address: Address{}},
		Status:       "PENDING",
		Lines:        []OrderLine{},
		Attributes:   map[string]string{},
		Dimensions:   map[string][]float64{},
		Total:        rat("0"),
		PlacedAt:     time.UnixMilli(0).UTC(),
		CapturedAt:   time.UnixMicro(1).UTC(),
		DeliveryDate: time.Unix(0, 0).UTC(),
		Sequence:     -1,
		Note:         []byte{},
	}
}

// assertOrderEqual compares two orders field by field: decimals by value,
// times with Equal after truncating want to each logical type's precision,
// everything else with reflect.DeepEqual.
func assertOrderEqual(t testing.TB, got, want OrderPlaced) {
	t.Helper()
	if err := orderDiff(got, want); err != nil {
		t.Errorf("decoded order differs: %v\n got: %+v\nwant: %+v", err, got, want)
	}
}

func orderDiff(got, want OrderPlaced) error {
	if err := ratDiff("total", got.Total, want.Total); err != nil {
		return err
	}
	if len(got.Lines) != len(want.Lines) {
		return fmt.Errorf("lines: %d, want %d", len(got.Lines), len(want.Lines))
	}
	for i := range want.Lines {
		if err := ratDiff(fmt.Sprintf("lines[%d].unit_price", i), got.Lines[i].UnitPrice, want.Lines[i].UnitPrice); err != nil {
			return err
		}
	}
	times := []struct {
		name      string
		got, want time.Time
		precision time.Duration
	}{
		{"placed_at", got.PlacedAt, want.PlacedAt, time.Millisecond},
		{"captured_at", got.CapturedAt, want.CapturedAt, time.Microsecond},
		{"delivery_date", got.DeliveryDate, want.DeliveryDate, 24 * time.Hour},
	}
	for _, tm := range times {
		if w := tm.want.Truncate(tm.precision); !tm.got.Equal(w) {
			return fmt.Errorf("%s: %v, want %v", tm.name, tm.got, w)
		}
	}
	// Floats compare by their bits: a NaN that went through unchanged is
	// not equal to itself.
	if math.Float32bits(got.WeightKg) != math.Float32bits(want.WeightKg) {
		return fmt.Errorf("weight_kg: %v, want %v", got.WeightKg, want.WeightKg)
	}
	if len(got.Dimensions) != len(want.Dimensions) {
		return fmt.Errorf("dimensions: %d keys, want %d", len(got.Dimensions), len(want.Dimensions))
	}
	for k, wv := range want.Dimensions {
		gv, ok := got.Dimensions[k]
		if !ok || len(gv) != len(wv) || (gv == nil) != (wv == nil) {
			return fmt.Errorf("dimensions[%q]: %v, want %v", k, gv, wv)
		}
		for i := range wv {
			if math.Float64bits(gv[i]) != math.Float64bits(wv[i]) {
				return fmt.Errorf("dimensions[%q][%d]: %v, want %v", k, i, gv[i], wv[i])
			}
		}
	}
	// What is left must be deeply equal.
	g, w := got, want
	g.WeightKg, w.WeightKg = 0, 0
	if (g.Dimensions == nil) != (w.Dimensions == nil) {
		return fmt.Errorf("dimensions: %v, want %v", g.Dimensions, w.Dimensions)
	}
	g.Dimensions, w.Dimensions = nil, nil
	g.Total, w.Total = nil, nil
	g.PlacedAt, w.PlacedAt = time.Time{}, time.Time{}
	g.CapturedAt, w.CapturedAt = time.Time{}, time.Time{}
	g.DeliveryDate, w.DeliveryDate = time.Time{}, time.Time{}
	g.Lines, w.Lines = stripPrices(g.Lines), stripPrices(w.Lines)
	if !reflect.DeepEqual(g, w) {
		return fmt.Errorf("other fields differ")
	}
	return nil
}

func ratDiff(name string, got, want *big.Rat) error {
	if (got == nil) != (want == nil) || (got != nil && got.Cmp(want) != 0) {
		return fmt.Errorf("%s: %v, want %v", name, got, want)
	}
	return nil
}

func stripPrices(ls []OrderLine) []OrderLine {
	if ls == nil {
		return nil
	}
	out := make([]OrderLine, len(ls))
	for i, l := range ls {
		l.UnitPrice = nil
		out[i] = l
	}
	return out
}
