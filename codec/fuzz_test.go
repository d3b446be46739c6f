package codec_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/evbus/evbus/codec"
)

// fuzzResolver is a tiny in-process codec.Resolver over fixed schemas, so
// fuzzing needs no registry and runs fast.
type fuzzResolver struct {
	byID   map[int]*codec.Schema
	byGUID map[string]int
}

func (r *fuzzResolver) SchemaByID(_ context.Context, id int) (*codec.Schema, error) {
	if s, ok := r.byID[id]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("schema id %d: %w", id, codec.ErrUnknownSchema)
}

func (r *fuzzResolver) SchemaByGUID(_ context.Context, guid string) (int, *codec.Schema, error) {
	if id, ok := r.byGUID[guid]; ok {
		return id, r.byID[id], nil
	}
	return 0, nil, fmt.Errorf("schema guid %s: %w", guid, codec.ErrUnknownSchema)
}

// The writer schemas the fuzzer's frames name.
const (
	fuzzOrderID  = 1 // allFeatures
	fuzzItemID   = 2 // itemSchema
	fuzzUnionID  = 3 // cartUnion, with its references
	fuzzOrderV0  = 4 // an older OrderPlaced, resolved to allFeatures
	fuzzItemGUID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
)

// orderV0 is an older OrderPlaced: fewer fields and symbols, an int qty
// and an int sequence. allFeaturesReader reads it as well as allFeatures.
const orderV0 = `{"type":"record","name":"OrderPlaced","namespace":"com.example.orders","fields":[
  {"name":"order_id","type":"string"},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
    {"name":"id","type":"string"},
    {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"zip","type":"string"}]}}
  ]}},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PENDING","PAID"]}},
  {"name":"lines","type":{"type":"array","items":{"type":"record","name":"OrderLine","fields":[
    {"name":"sku","type":"string"},
    {"name":"qty","type":"int"},
    {"name":"unit_price","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}}
  ]}}},
  {"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
  {"name":"placed_at","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"sequence","type":"int"}
]}`

// allFeaturesReader is a later version a consumer reads both with:
// fields added with defaults, fields dropped, qty and sequence widened, an
// enum symbol added.
const allFeaturesReader = `{
  "type": "record", "name": "OrderPlaced", "namespace": "com.example.orders",
  "fields": [
    {"name": "order_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "id", "type": "string"},
      {"name": "email", "type": ["null", "string"], "default": null},
      {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
        {"name": "street", "type": "string"},
        {"name": "zip", "type": "string"},
        {"name": "country", "type": "string", "default": "GB"}
      ]}}
    ]}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["PENDING", "PAID", "SHIPPED", "CANCELLED"], "default": "PENDING"}},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "OrderLine", "fields": [
      {"name": "sku", "type": "string"},
      {"name": "qty", "type": "long"},
      {"name": "unit_price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}}
    ]}}},
    {"name": "coupon", "type": ["null", "string"], "default": null},
    {"name": "shipping", "type": ["null", "Address"], "default": null},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "sequence", "type": "double"},
    {"name": "channel", "type": "string", "default": "web"}
  ]
}`

type fuzzEnv struct {
	codec                  *codec.Codec
	order, item, placed    *codec.Schema
	orderReader            *codec.Schema
	orderEnc, itemEnc      *codec.Encoder
	placedEnc, cancelEnc   *codec.Encoder
	orderV0                *codec.Schema
	orderV0Enc             *codec.Encoder
	itemHeader, guidHeader []byte
}

func newFuzzEnv(t testing.TB) *fuzzEnv {
	t.Helper()
	placed, cancelled := mustParse(t, placedRef), mustParse(t, cancelledRef)
	f := &fuzzEnv{
		order:       mustParse(t, allFeatures),
		item:        mustParse(t, itemSchema),
		placed:      placed,
		orderReader: mustParse(t, allFeaturesReader),
	}
	union := mustParse(t, cartUnion, placed, cancelled)
	f.orderV0 = mustParse(t, orderV0)
	guid, err := codec.ParseGUID(fuzzItemGUID)
	if err != nil {
		t.Fatal(err)
	}
	res := &fuzzResolver{
		byID:   map[int]*codec.Schema{fuzzOrderID: f.order, fuzzItemID: f.item, fuzzUnionID: union, fuzzOrderV0: f.orderV0},
		byGUID: map[string]int{fuzzItemGUID: fuzzItemID},
	}
	f.codec = newCodec(t, res)
	f.itemHeader = codec.AppendPrefix(nil, fuzzItemID)
	f.guidHeader = codec.AppendGUIDHeader(nil, guid)
	enc := func(id int, registered, s *codec.Schema) *codec.Encoder {
		e, err := f.codec.Encoder(id, registered, s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	f.orderEnc = enc(fuzzOrderID, f.order, f.order)
	f.itemEnc = enc(fuzzItemID, f.item, f.item)
	f.placedEnc = enc(fuzzUnionID, union, placed)
	f.cancelEnc = enc(fuzzUnionID, union, cancelled)
	f.orderV0Enc = enc(fuzzOrderV0, f.orderV0, f.orderV0)
	return f
}

type fuzzSeed struct {
	value, header []byte
	mode          byte
	valid         bool // decodes without error
}

// seeds returns valid frames and near misses.
func (f *fuzzEnv) seeds(t testing.TB) []fuzzSeed {
	t.Helper()
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	full, sparse := fullOrder(), sparseOrder()
	orderFull := must(f.orderEnc.AppendEncode(nil, &full))
	orderSparse := must(f.orderEnc.AppendEncode(nil, &sparse))
	item := must(f.itemEnc.AppendEncode(nil, &Item{SKU: "sku-1", Qty: -5, Tags: []string{"a", "bb", ""}}))
	placed := must(f.placedEnc.AppendEncode(nil, &Placed{CartID: "c", Items: 3}))
	cancelled := must(f.cancelEnc.AppendEncode(nil, &Cancelled{CartID: "c", Reason: ptr("r")}))
	v0 := must(f.orderV0Enc.AppendEncode(nil, map[string]any{
		"order_id": "o", "customer": map[string]any{"id": "c", "address": map[string]any{"street": "s", "zip": "z"}},
		"status": "PAID", "lines": []any{map[string]any{"sku": "a", "qty": int32(2), "unit_price": rat("1.50")}},
		"total": rat("3.00"), "placed_at": full.PlacedAt, "sequence": int32(7),
	}))
	noHeader := []byte{}
	seeds := []fuzzSeed{
		{orderFull, noHeader, byte(fuzzSame), true},
		{orderFull, noHeader, byte(fuzzGeneric), true},
		{orderFull, noHeader, byte(fuzzResolved), true},
		{orderSparse, noHeader, byte(fuzzSame), true},
		{orderSparse, noHeader, byte(fuzzResolved), true},
		{item, noHeader, byte(fuzzSame), true},
		{item[5:], f.itemHeader, byte(fuzzSame | fuzzWithHeader), true},
		{item[5:], f.guidHeader, byte(fuzzSame | fuzzWithHeader), true},
		{item[5:], f.guidHeader, byte(fuzzGeneric | fuzzWithHeader), true},
		{v0, noHeader, byte(fuzzResolved), true},
		{v0, noHeader, byte(fuzzGeneric), true},
		{placed, noHeader, byte(fuzzSame), true},
		{cancelled, noHeader, byte(fuzzSame), true},
		{placed, noHeader, byte(fuzzGeneric), true},
		{orderFull[:len(orderFull)/2], noHeader, byte(fuzzSame), false},
		{append(codec.AppendPrefix(nil, fuzzItemID), 0x80, 0x80, 0x80, 0x80, 0x80, 0x40), noHeader, byte(fuzzSame), false},
		{binary.AppendVarint(binary.AppendVarint(codec.AppendPrefix(nil, fuzzItemID), 2), 'x'), noHeader, byte(fuzzGeneric), false},
		{[]byte{0x00, 0, 0, 0, 9, 0}, noHeader, byte(fuzzSame), false},
		{[]byte{}, []byte{0x01}, byte(fuzzWithHeader), false},
	}
	return seeds
}

// What the fuzzer decodes a frame into, from its mode byte.
const (
	fuzzSame       = 0 // the writer's own schema, into its Go struct
	fuzzGeneric    = 1 // no reader schema, into any
	fuzzResolved   = 2 // another version of the writer's record
	fuzzWithHeader = 4 // pass the header (else nil)
)

func (f *fuzzEnv) decode(t *testing.T, value, header []byte, mode byte) {
	ctx := context.Background()
	if mode&fuzzWithHeader == 0 {
		header = nil
	} else if header == nil {
		header = []byte{}
	}
	frame, ferr := codec.ParseFrame(value, header)
	var id int
	if ferr == nil {
		id = frame.ID
		if frame.HasGUID() && frame.GUIDString() == fuzzItemGUID {
			id = fuzzItemID
		}
	}

	var (
		err    error
		target any
		reader *codec.Schema
	)
	switch mode & 3 {
	case fuzzGeneric:
		target = new(any)
	case fuzzResolved:
		target, reader = new(map[string]any), f.orderReader
	default:
		switch id {
		case fuzzOrderID:
			target, reader = new(OrderPlaced), f.order
		case fuzzOrderV0:
			target, reader = new(map[string]any), f.orderReader
		case fuzzUnionID:
			target, reader = new(Placed), f.placed
		default:
			target, reader = new(Item), f.item
		}
	}
	err = f.codec.Decode(ctx, value, header, reader, target)
	if err == nil {
		if ferr != nil {
			t.Fatalf("Decode succeeded where ParseFrame fails: %v", ferr)
		}
		f.reencode(t, id, target)
		return
	}
	// Every failure is a *DecodeError wrapping exactly one sentinel.
	var de *codec.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode error %T %v is not a *DecodeError", err, err)
	}
	n := 0
	for _, s := range []error{codec.ErrWrongMagic, codec.ErrTruncated, codec.ErrUnknownSchema, codec.ErrUndecodable, codec.ErrIncompatible} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("Decode error %v matches %d sentinels, want 1", err, n)
	}
	if ferr != nil && !errors.Is(err, errors.Unwrap(ferr)) && !strings.Contains(err.Error(), ferr.Error()) {
		t.Fatalf("Decode error %v, ParseFrame error %v", err, ferr)
	}
	// A panic inside the Avro engine is turned into ErrUndecodable; it
	// would still be an engine bug worth knowing about.
	if msg := err.Error(); strings.Contains(msg, "runtime error") && fuzzStrictPanics {
		t.Fatalf("the engine panicked: %v", err)
	}
}

// fuzzStrictPanics makes a recovered engine panic fail the fuzz target;
// set it to look for engine bugs that the codec contains.
var fuzzStrictPanics = os.Getenv("EVBUS_FUZZ_STRICT") != ""

// reencode checks that what decoded encodes again and decodes to the same.
func (f *fuzzEnv) reencode(t *testing.T, id int, target any) {
	var (
		enc *codec.Encoder
		s   *codec.Schema
	)
	switch v := target.(type) {
	case *OrderPlaced:
		if id != fuzzOrderID {
			return
		}
		enc, s = f.orderEnc, f.order
		b, err := enc.AppendEncode(nil, v)
		if err != nil {
			return // decoding is laxer than encoding (decimal precision, uuid form)
		}
		var again OrderPlaced
		if err := f.codec.Decode(context.Background(), b, nil, s, &again); err != nil {
			t.Fatalf("re-encoded order does not decode: %v", err)
		}
		if err := orderDiff(again, *v); err != nil {
			t.Fatalf("order changed through a re-encode: %v", err)
		}
	case *Item:
		if id != fuzzItemID {
			return
		}
		b, err := f.itemEnc.AppendEncode(nil, v)
		if err != nil {
			t.Fatalf("decoded item does not encode: %v", err)
		}
		var again Item
		if err := f.codec.Decode(context.Background(), b, nil, f.item, &again); err != nil {
			t.Fatalf("re-encoded item does not decode: %v", err)
		}
		assertDeepEqual(t, again, *v)
	}
}

// The fuzz seeds that are valid frames decode, so the fuzzer starts from
// inputs that reach deep into the decoder.
func TestFuzzSeeds(t *testing.T) {
	env := newFuzzEnv(t)
	for i, s := range env.seeds(t) {
		header := s.header
		if s.mode&fuzzWithHeader == 0 {
			header = nil
		}
		var target any = new(any)
		var reader *codec.Schema
		switch {
		case s.mode&3 == fuzzResolved:
			target, reader = new(map[string]any), env.orderReader
		case s.mode&3 == fuzzSame && i < 5:
			target, reader = new(OrderPlaced), env.order
		}
		err := env.codec.Decode(context.Background(), s.value, header, reader, target)
		if s.valid != (err == nil) {
			t.Errorf("seed %d: valid %v, Decode: %v", i, s.valid, err)
		}
		if s.mode&3 == fuzzResolved && err == nil {
			m := *target.(*map[string]any)
			addr, _ := m["customer"].(map[string]any)["address"].(map[string]any)
			if m["channel"] != "web" || addr["country"] != "GB" {
				t.Errorf("seed %d: defaults not applied: %v", i, m)
			}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { env.decode(t, s.value, s.header, s.mode) })
	}
}

func FuzzDecode(f *testing.F) {
	env := newFuzzEnv(f)
	for _, s := range env.seeds(f) {
		f.Add(s.value, s.header, s.mode)
	}
	f.Fuzz(func(t *testing.T, value, header []byte, mode byte) {
		env.decode(t, value, header, mode)
	})
}

func FuzzParseFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 2}, []byte{}, false)
	f.Add([]byte{1, 2, 3}, []byte{0, 0, 0, 1, 0}, true)
	f.Add([]byte{}, append([]byte{1}, make([]byte, 16)...), true)
	f.Fuzz(func(t *testing.T, value, header []byte, withHeader bool) {
		if !withHeader {
			header = nil
		} else if header == nil {
			header = []byte{}
		}
		fr, err := codec.ParseFrame(value, header)
		if err != nil {
			if !errors.Is(err, codec.ErrTruncated) && !errors.Is(err, codec.ErrWrongMagic) && !errors.Is(err, codec.ErrUnknownSchema) {
				t.Fatalf("ParseFrame error %v wraps no sentinel", err)
			}
			return
		}
		if fr.HasGUID() == (fr.ID != 0) && fr.ID != 0 {
			t.Fatalf("frame has both an id and a GUID: %+v", fr)
		}
		// Parsing and appending agree.
		if header == nil {
			if got := codec.AppendPrefix(nil, fr.ID); string(got) != string(value[:5]) || string(fr.Body) != string(value[5:]) {
				t.Fatalf("ParseFrame(%x) = %+v, AppendPrefix gives %x", value, fr, got)
			}
		} else if fr.HasGUID() {
			if got := codec.AppendGUIDHeader(nil, fr.GUID); string(got) != string(header[:17]) {
				t.Fatalf("GUID header %x parsed as %x", header, fr.GUID)
			}
			g, err := codec.ParseGUID(fr.GUIDString())
			if err != nil || g != fr.GUID {
				t.Fatalf("GUID text %q does not parse back: %v", fr.GUIDString(), err)
			}
		} else if got := codec.AppendPrefix(nil, fr.ID); string(got) != string(header[:5]) {
			t.Fatalf("id header %x parsed as %d", header, fr.ID)
		}
	})
}
