package codec_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/codec"
)

type InferStatus string

type InferLine struct {
	SKU   string   `avro:"sku"`
	Qty   int32    `avro:"qty"`
	Price *big.Rat `avro:"price" avsc:"decimal(10,2)"`
}

type Inferred struct {
	ID          string            `avro:"id" avsc:"uuid"`
	InferStatus InferStatus       `avro:"status" avsc:"enum(NEW,PAID)"`
	Previous    InferStatus       `avro:"previous" avsc:"enum(NEW,PAID)"`
	At          time.Time         `avro:"at" avsc:"timestamp-micros"`
	Created     time.Time         `avro:"created"`
	Day         time.Time         `avro:"day" avsc:"date"`
	Lines       []InferLine       `avro:"lines"`
	Tags        map[string]string `avro:"tags"`
	Coupon      *string           `avro:"coupon"`
	Hash        [4]byte           `avro:"hash"`
	Raw         []byte            `avro:"raw"`
	Count       int64             `avro:"count"`
	Ratio       float64           `avro:"ratio"`
	OK          bool              `avro:"ok"`
	Skipped     string            `avro:"-"`
	internal    int
}

func TestInferRoundTrip(t *testing.T) {
	s, err := codec.Infer(Inferred{}, "com.example")
	if err != nil {
		t.Fatal(err)
	}
	if s.FullName() != "com.example.Inferred" {
		t.Fatalf("full name %q", s.FullName())
	}
	for _, want := range []string{`"logicalType":"uuid"`, `"symbols":["NEW","PAID"]`, `"timestamp-micros"`, `"timestamp-millis"`,
		`"logicalType":"date"`, `"precision":10`, `"default":null`, `"type":"fixed"`} {
		if !strings.Contains(s.String(), want) {
			t.Fatalf("inferred schema lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s.String(), "Skipped") || strings.Contains(s.String(), "internal") {
		t.Fatalf("skipped fields inferred: %s", s)
	}
	c := newCodec(t, nil)
	enc, err := c.Encoder(1, s, s)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 10, 30, 0, 123456000, time.UTC)
	in := Inferred{ID: "0193e0a4-7b1c-7c1e-9f00-000000000001", InferStatus: "PAID", Previous: "NEW", At: at, Created: at.Truncate(time.Millisecond),
		Day: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Lines: []InferLine{{SKU: "a", Qty: 2, Price: big.NewRat(1999, 100)}},
		Tags: map[string]string{"k": "v"}, Hash: [4]byte{1, 2, 3, 4}, Raw: []byte{9}, Count: 1 << 40, Ratio: 0.5, OK: true}
	b, err := enc.AppendEncode(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	var out Inferred
	if err := newCodec(t, inferResolver{s}).Decode(t.Context(), b, nil, s, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.InferStatus != in.InferStatus || !out.At.Equal(in.At) || !out.Created.Equal(in.Created) || !out.Day.Equal(in.Day) ||
		len(out.Lines) != 1 || out.Lines[0].Price.Cmp(in.Lines[0].Price) != 0 || out.Tags["k"] != "v" || out.Coupon != nil ||
		out.Hash != in.Hash || out.Count != in.Count || !out.OK {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

// inferResolver knows one schema, as id 1.
type inferResolver struct{ s *codec.Schema }

func (r inferResolver) SchemaByID(_ context.Context, id int) (*codec.Schema, error) {
	if id != 1 {
		return nil, codec.ErrUnknownSchema
	}
	return r.s, nil
}

func (r inferResolver) SchemaByGUID(context.Context, string) (int, *codec.Schema, error) {
	return 0, nil, codec.ErrUnknownSchema
}

func TestInferErrors(t *testing.T) {
	type noPrecision struct {
		Total *big.Rat `avro:"total"`
	}
	type badTag struct {
		At string `avro:"at" avsc:"timestamp-millis"`
	}
	type chanField struct{ C chan int }
	type intKeys struct{ M map[int]string }
	for _, tc := range []struct {
		v    any
		want string
	}{
		{42, "not a struct"},
		{nil, "not a struct"},
		{noPrecision{}, "decimal(P,S)"},
		{badTag{}, "time.Time"},
		{chanField{}, "no Avro type"},
		{intKeys{}, "string keys"},
		{struct{ A string }{}, "anonymous struct"},
	} {
		_, err := codec.Infer(tc.v, "x")
		if !errors.Is(err, codec.ErrInvalidSchema) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Infer(%T): want ErrInvalidSchema mentioning %q, got %v", tc.v, tc.want, err)
		}
	}
}
