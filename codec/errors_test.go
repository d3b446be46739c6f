package codec_test

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/evbus/evbus/codec"
)

func TestDecodeFrameErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, itemSchema)
	framed, w := e.encode(t, "items", s, &Item{SKU: "a", Qty: 1})
	body := framed[5:]
	c := e.consumer(t)

	cases := []struct {
		name          string
		value, header []byte
		want          error
		schemaID      int // the id the *DecodeError must carry, 0 for none
	}{
		{"empty value", []byte{}, nil, codec.ErrTruncated, 0},
		{"nil value", nil, nil, codec.ErrTruncated, 0},
		{"1 byte", framed[:1], nil, codec.ErrTruncated, 0},
		{"4 bytes", framed[:4], nil, codec.ErrTruncated, 0},
		{"magic 0x01", append([]byte{0x01}, framed[1:]...), nil, codec.ErrWrongMagic, 0},
		{"magic 0xff", append([]byte{0xff}, framed[1:]...), nil, codec.ErrWrongMagic, 0},
		{"plain JSON", []byte(`{"sku":"a"}`), nil, codec.ErrWrongMagic, 0},
		{"header magic 0x02", body, []byte{0x02, 0, 0, 0, 1}, codec.ErrWrongMagic, 0},
		{"empty header", body, []byte{}, codec.ErrTruncated, 0},
		{"id header of 4 bytes", body, []byte{0x00, 0, 0, 1}, codec.ErrTruncated, 0},
		{"guid header of 16 bytes", body, append([]byte{0x01}, make([]byte, 15)...), codec.ErrTruncated, 0},
		{"all-zero guid", body, append([]byte{0x01}, make([]byte, 16)...), codec.ErrUnknownSchema, 0},
		{"unknown id", codec.AppendPrefix(nil, 987654), nil, codec.ErrUnknownSchema, 987654},
		{"unknown id in header", body, codec.AppendPrefix(nil, 987654), codec.ErrUnknownSchema, 987654},
		{"id 0", append(codec.AppendPrefix(nil, 0), body...), nil, codec.ErrUnknownSchema, 0},
		{"id 0xffffffff", append([]byte{0, 0xff, 0xff, 0xff, 0xff}, body...), nil, codec.ErrUnknownSchema, 0xffffffff},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out Item
			err := c.Decode(ctx, tc.value, tc.header, s, &out)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: %v, want %v", err, tc.want)
			}
			var de *codec.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode: %T %v, want a *DecodeError", err, err)
			}
			if de.SchemaID != tc.schemaID {
				t.Errorf("DecodeError.SchemaID %d, want %d", de.SchemaID, tc.schemaID)
			}
			for _, other := range []error{codec.ErrTruncated, codec.ErrWrongMagic, codec.ErrUnknownSchema, codec.ErrUndecodable, codec.ErrIncompatible} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("Decode: %v also matches %v", err, other)
				}
			}
		})
	}

	// An unknown GUID names the GUID.
	guid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	var out Item
	err := c.Decode(ctx, body, codec.AppendGUIDHeader(nil, guid), s, &out)
	var de *codec.DecodeError
	if !errors.Is(err, codec.ErrUnknownSchema) || !errors.As(err, &de) || de.GUID != "01020304-0506-0708-090a-0b0c0d0e0f10" {
		t.Errorf("unknown GUID: %v (%+v), want ErrUnknownSchema naming the GUID", err, de)
	}
	// The registry knowing the id afterwards is not hidden by a cached
	// failure; the known id still decodes.
	if err := c.Decode(ctx, framed, nil, s, &out); err != nil || w.ID == 0 {
		t.Fatalf("valid frame after failures: %v", err)
	}
	// A nil target.
	if err := c.Decode(ctx, framed, nil, s, nil); !errors.Is(err, codec.ErrUndecodable) {
		t.Errorf("Decode into nil: %v, want ErrUndecodable", err)
	}
	if err := c.Decode(ctx, framed, nil, s, (*Item)(nil)); !errors.Is(err, codec.ErrUndecodable) {
		t.Errorf("Decode into (*Item)(nil): %v, want ErrUndecodable", err)
	}
}

func TestDecodeUndecodableBody(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, itemSchema)
	framed, w := e.encode(t, "items", s, &Item{SKU: "sku-1", Qty: 300, Tags: []string{"x", "yz"}})
	// Another registered schema whose body does not read as an Item: its
	// first field is an enum index out of range for... anything Item writes.
	statusSchema := mustParse(t, `{"type":"record","name":"StatusChanged","namespace":"com.example.h","fields":[
	  {"name":"status","type":{"type":"enum","name":"S","symbols":["A","B"]}},
	  {"name":"at","type":"long"}
	]}`)
	type StatusChanged struct {
		Status string `avro:"status"`
		At     int64  `avro:"at"`
	}
	_, sw := e.encode(t, "items", statusSchema, &StatusChanged{Status: "B", At: 1})

	relabel := func(b []byte, id int) []byte {
		out := append([]byte(nil), b...)
		binary.BigEndian.PutUint32(out[1:5], uint32(id))
		return out
	}
	cases := []struct {
		name  string
		value []byte
	}{
		{"body empty", framed[:5]},
		{"body cut in the first string", framed[:7]},
		{"body cut in a varint", append(append([]byte(nil), framed[:5+6]...), 0x80)},
		{"body missing its last byte", framed[:len(framed)-1]},
		{"array block without items", append(append([]byte(nil), framed[:5+6+2]...), 0x04)},
		{"trailing byte", append(append([]byte(nil), framed...), 0x00)},
		{"trailing garbage", append(append([]byte(nil), framed...), "garbage"...)},
		{"Item body under the other schema's id", relabel(framed, sw.ID)},
		{"negative string length", append(codec.AppendPrefix(nil, w.ID), 0x01)},
		{"varint longer than 10 bytes", append(codec.AppendPrefix(nil, w.ID), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, sOut = Item{}, StatusChanged{}
			var err error
			if tc.name == "Item body under the other schema's id" {
				err = e.consumer(t).Decode(ctx, tc.value, nil, statusSchema, &sOut)
			} else {
				err = e.consumer(t).Decode(ctx, tc.value, nil, s, &out)
			}
			if !errors.Is(err, codec.ErrUndecodable) {
				t.Fatalf("Decode(%x): %v (got %+v %+v), want ErrUndecodable", tc.value, err, out, sOut)
			}
			var de *codec.DecodeError
			if !errors.As(err, &de) || de.SchemaID == 0 {
				t.Errorf("Decode: %v, want a *DecodeError naming the schema", err)
			}
		})
	}
}

// Hostile length prefixes fail before anything of their size is allocated.
func TestDecodeHostileLengths(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	strS := mustParse(t, `{"type":"record","name":"S","namespace":"com.example.h","fields":[{"name":"s","type":"string"}]}`)
	bytesS := mustParse(t, `{"type":"record","name":"B","namespace":"com.example.h","fields":[{"name":"b","type":"bytes"}]}`)
	arrS := mustParse(t, `{"type":"record","name":"A","namespace":"com.example.h","fields":[{"name":"a","type":{"type":"array","items":"long"}}]}`)
	mapS := mustParse(t, `{"type":"record","name":"M","namespace":"com.example.h","fields":[{"name":"m","type":{"type":"map","values":"long"}}]}`)
	type S struct {
		S string `avro:"s"`
	}
	type B struct {
		B []byte `avro:"b"`
	}
	type A struct {
		A []int64 `avro:"a"`
	}
	type M struct {
		M map[string]int64 `avro:"m"`
	}
	ids := map[*codec.Schema]int{}
	for _, s := range []*codec.Schema{strS, bytesS, arrS, mapS} {
		ids[s] = e.register(t, "hostile", s).ID
	}
	frame := func(s *codec.Schema, longs ...int64) []byte {
		b := codec.AppendPrefix(nil, ids[s])
		for _, l := range longs {
			b = binary.AppendVarint(b, l) // Avro longs are zig-zag varints
		}
		return b
	}

	const huge = 1 << 40
	cases := []struct {
		name   string
		schema *codec.Schema
		value  []byte
		target func() any
	}{
		{"string of 1<<40 bytes", strS, frame(strS, huge), func() any { return new(S) }},
		{"string of 1<<40 bytes into any", strS, frame(strS, huge), func() any { return new(any) }},
		{"bytes of 1<<40", bytesS, frame(bytesS, huge), func() any { return new(B) }},
		{"array of 1<<40 items", arrS, frame(arrS, huge), func() any { return new(A) }},
		{"array of 1<<40 items into any", arrS, frame(arrS, huge), func() any { return new(any) }},
		{"array block of -(1<<40) items with a size", arrS, frame(arrS, -huge, 8), func() any { return new(A) }},
		{"array of 2 blocks of 1<<40", arrS, frame(arrS, 1, 7, huge), func() any { return new(A) }},
		{"map of 1<<40 entries", mapS, frame(mapS, huge), func() any { return new(M) }},
		{"string of MaxInt64 bytes", strS, frame(strS, 1<<63-1), func() any { return new(S) }},
		{"array of MinInt64 items", arrS, frame(arrS, -1<<63), func() any { return new(A) }},
	}
	c := e.consumer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reader := tc.schema
			if _, ok := tc.target().(*any); ok {
				reader = nil
			}
			err := c.Decode(ctx, tc.value, nil, reader, tc.target())
			if !errors.Is(err, codec.ErrUndecodable) {
				t.Fatalf("Decode(%x): %v, want ErrUndecodable", tc.value, err)
			}
			if perRun := allocBytes(20, func() { _ = c.Decode(ctx, tc.value, nil, reader, tc.target()) }); perRun > 1<<20 {
				t.Errorf("a failed decode allocated %d bytes", perRun)
			}
		})
	}
}

// allocBytes returns how many bytes f allocates per run, on average.
func allocBytes(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func TestDecodeLimitOptions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, itemSchema)
	encode := func(in Item) []byte {
		b, _ := e.encode(t, "items", s, &in)
		return b
	}
	sku16, sku17 := encode(Item{SKU: strings.Repeat("x", 16)}), encode(Item{SKU: strings.Repeat("x", 17)})
	tags3, tags4 := encode(Item{SKU: "s", Tags: []string{"a", "b", "c"}}), encode(Item{SKU: "s", Tags: []string{"a", "b", "c", "d"}})

	limited := e.consumer(t, codec.MaxBytesLen(16), codec.MaxArrayLen(3))
	unlimited := e.consumer(t)
	for _, tc := range []struct {
		name  string
		value []byte
		ok    bool
	}{
		{"string at MaxBytesLen", sku16, true},
		{"string over MaxBytesLen", sku17, false},
		{"array at MaxArrayLen", tags3, true},
		{"array over MaxArrayLen", tags4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out Item
			err := limited.Decode(ctx, tc.value, nil, s, &out)
			if tc.ok && err != nil {
				t.Fatalf("within the limit: %v", err)
			}
			if !tc.ok && !errors.Is(err, codec.ErrUndecodable) {
				t.Fatalf("over the limit: %v, want ErrUndecodable", err)
			}
			// The default limits are far higher.
			if err := unlimited.Decode(ctx, tc.value, nil, s, &out); err != nil {
				t.Fatalf("with the default limits: %v", err)
			}
		})
	}

	// A tag array over the limit is refused in blocks too: two blocks
	// of 2 items each.
	blocks := codec.AppendPrefix(nil, e.register(t, "items", s).ID)
	blocks = binary.AppendVarint(blocks, 1)
	blocks = append(blocks, 's')
	blocks = binary.AppendVarint(blocks, 0)
	for range 2 {
		blocks = binary.AppendVarint(blocks, 2)
		blocks = append(blocks, 0x02, 'a', 0x02, 'b')
	}
	blocks = binary.AppendVarint(blocks, 0)
	var out Item
	if err := unlimited.Decode(ctx, blocks, nil, s, &out); err != nil || len(out.Tags) != 4 {
		t.Fatalf("4 tags in 2 blocks: %v %+v", err, out)
	}
	if err := limited.Decode(ctx, blocks, nil, s, &out); !errors.Is(err, codec.ErrUndecodable) {
		t.Fatalf("4 tags in 2 blocks over MaxArrayLen 3: %v, want ErrUndecodable", err)
	}
}

func TestParseInvalidSchema(t *testing.T) {
	for _, text := range []string{
		"",
		"   \n",
		"{",
		`{"type":"record","name":"X"}`,
		`{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}`,
		`{"type":"record","name":"X","fields":[{"name":"a","type":"int","default":"zero"}]}`,
		`{"type":"enum","name":"E","symbols":["A","A"]}`,
		`{"type":"fixed","name":"F"}`,
		`["null","null"]`,
		`"com.example.Undefined"`,
	} {
		s, err := codec.Parse(text)
		if !errors.Is(err, codec.ErrInvalidSchema) || s != nil {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalidSchema", text, s, err)
		}
	}
	// A reference must itself be valid, and present.
	if _, err := codec.Parse(`"com.example.h.Item"`, nil); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Errorf("nil reference: %v", err)
	}
	item := mustParse(t, itemSchema)
	if s, err := codec.Parse(`{"type":"array","items":"com.example.h.Item"}`, item); err != nil || s.FullName() != "" {
		t.Errorf("with its reference: %v", err)
	}
	// Each parse has its own name space: a name parsed before is unknown
	// to a parse without the reference.
	if _, err := codec.Parse(`{"type":"array","items":"com.example.h.Item"}`); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Errorf("without its reference: %v", err)
	}
}

func TestEncodeErrors(t *testing.T) {
	e := newEnv(t)
	s := mustParse(t, allFeatures)
	w := e.register(t, "orders", s)
	enc, err := e.codec.Encoder(w.ID, w.Schema, s)
	if err != nil {
		t.Fatal(err)
	}
	tooPrecise := fullOrder()
	tooPrecise.Total = rat("12345678901.23") // 13 digits, precision 12
	badEnum := fullOrder()
	badEnum.Status = "LOST"
	nilPrice := fullOrder()
	nilPrice.Lines[0].UnitPrice = nil
	type Wrong struct {
		OrderID int `avro:"order_id"`
	}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"nil", nil},
		{"nil pointer", (*OrderPlaced)(nil)},
		{"nil map", map[string]any(nil)},
		{"a string", "order"},
		{"an int", 42},
		{"a struct of another shape", &Wrong{OrderID: 1}},
		{"another record", &Item{SKU: "x"}},
		{"a decimal beyond its precision", &tooPrecise},
		{"an enum symbol the schema lacks", &badEnum},
		{"a nil decimal", &nilPrice},
		{"a map missing fields", map[string]any{"order_id": "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := enc.AppendEncode(dst, tc.v)
			if !errors.Is(err, codec.ErrEncode) {
				t.Fatalf("AppendEncode(%#v): %v, want ErrEncode", tc.v, err)
			}
			if string(out) != "keep" {
				t.Errorf("a failed encode returned %q, want dst untouched", out)
			}
		})
	}
	// The encoder still works after failures.
	in := fullOrder()
	if _, err := enc.AppendEncode(nil, &in); err != nil {
		t.Fatalf("after failures: %v", err)
	}

	// Encoders need a positive id and a schema.
	if _, err := e.codec.Encoder(0, s, s); err == nil {
		t.Error("Encoder(0) succeeded")
	}
	if _, err := e.codec.Encoder(-1, s, s); err == nil {
		t.Error("Encoder(-1) succeeded")
	}
	if _, err := e.codec.Encoder(w.ID, s, nil); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Errorf("Encoder(nil schema): %v, want ErrInvalidSchema", err)
	}
}

// A reader that needs a field the writer never wrote cannot decode it, and
// the error says which field.
func TestDecodeIncompatibleWriter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, itemSchema)
	framed, w := e.encode(t, "items", s, &Item{SKU: "a", Qty: 1})
	reader := mustParse(t, `{"type":"record","name":"Item","namespace":"com.example.h","fields":[
	  {"name":"sku","type":"string"},
	  {"name":"warehouse","type":{"type":"record","name":"Warehouse","fields":[{"name":"code","type":"string"}]}}
	]}`)
	type Warehouse struct {
		Code string `avro:"code"`
	}
	type ItemWithWarehouse struct {
		SKU       string    `avro:"sku"`
		Warehouse Warehouse `avro:"warehouse"`
	}
	c := e.consumer(t)
	for range 2 { // the verdict is the same once cached
		var out ItemWithWarehouse
		err := c.Decode(ctx, framed, nil, reader, &out)
		var ie *codec.IncompatibleError
		var de *codec.DecodeError
		if !errors.Is(err, codec.ErrIncompatible) || !errors.As(err, &ie) || !errors.As(err, &de) {
			t.Fatalf("Decode: %v, want a *DecodeError wrapping an *IncompatibleError", err)
		}
		if ie.Path != "warehouse" || de.SchemaID != w.ID {
			t.Errorf("IncompatibleError.Path %q (want warehouse), DecodeError.SchemaID %d (want %d)", ie.Path, de.SchemaID, w.ID)
		}
		if errors.Is(err, codec.ErrUndecodable) {
			t.Errorf("an incompatible reader is not an undecodable body: %v", err)
		}
	}
}
