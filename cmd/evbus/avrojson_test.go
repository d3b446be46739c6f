package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

const everyType = `{"type":"record","name":"Every","namespace":"com.example.json","fields":[
	{"name":"s","type":"string"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"b","type":"boolean"},
	{"name":"by","type":"bytes"},
	{"name":"fx","type":{"type":"fixed","name":"Four","size":4}},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"a","type":{"type":"array","items":"int"}},
	{"name":"m","type":{"type":"map","values":"string"}},
	{"name":"u1","type":["null","string"]},
	{"name":"u2","type":["null","long","string"]},
	{"name":"u3","type":["null",{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}]},
	{"name":"u4","type":["string",{"type":"array","items":"string"}]},
	{"name":"dt","type":{"type":"int","logicalType":"date"}},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"id","type":{"type":"string","logicalType":"uuid"}},
	{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"inner","type":"Inner"}]}`

// TestAvroJSONRoundTrip: Avro JSON goes to Avro binary (publish's way)
// and back to the same Avro JSON (tail's and show's way), through the
// registry, for every type.
func TestAvroJSONRoundTrip(t *testing.T) {
	stack := evbustest.Start(t)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	s, err := codec.Parse(everyType)
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.Register(t.Context(), "every-value", s)
	if err != nil {
		t.Fatal(err)
	}
	es, err := engineSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.New(reg).Encoder(id, s, s)
	if err != nil {
		t.Fatal(err)
	}
	d := newDecoder(reg)
	for _, in := range []string{
		`{"s":"é","i":-3,"l":9007199254740993,"f":1.5,"d":-2.25,"b":true,"by":"\u0000\u00ff","fx":"abcd","e":"GREEN","a":[1,2],"m":{"k":"v"},"u1":{"string":"x"},"u2":{"long":7},"u3":{"com.example.json.Inner":{"x":1}},"u4":{"array":["p","q"]},"dt":19000,"ts":1700000000123,"tsu":1700000000123456,"id":"0190a0e8-0000-7000-8000-000000000000","dec":"\u0004\u00d2","inner":{"x":2}}`,
		`{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"\u0000\u0000\u0000\u0000","e":"RED","a":[],"m":{},"u1":null,"u2":{"string":"s"},"u3":null,"u4":{"string":"t"},"dt":-1,"ts":0,"tsu":0,"id":"x","dec":"\u00ff","inner":{"x":-2}}`,
	} {
		var v any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		gv, err := fromJSON(es, v, "")
		if err != nil {
			t.Fatalf("fromJSON(%s): %v", in, err)
		}
		value, err := enc.AppendEncode(nil, gv)
		if err != nil {
			t.Fatalf("encode %s: %v", in, err)
		}
		dv, err := d.decode(context.Background(), &kgo.Record{Value: value})
		if err != nil || dv.err != nil {
			t.Fatalf("decode %s: %v %v", in, err, dv.err)
		}
		out, err := json.Marshal(dv.json)
		if err != nil {
			t.Fatal(err)
		}
		// Go's encoder escapes differently than the input spells it:
		// compare the decoded JSON values.
		var want, got any
		json.Unmarshal([]byte(in), &want)
		json.Unmarshal(out, &got)
		if w, g := mustJSON(want), mustJSON(got); w != g {
			t.Errorf("round trip:\n in %s\nout %s", w, g)
		}
		if dv.typeName != "com.example.json.Every" || dv.schemaID != id {
			t.Errorf("type %q schema id %d", dv.typeName, dv.schemaID)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestFromJSONNamesTheField: a value that does not fit says where.
func TestFromJSONNamesTheField(t *testing.T) {
	s, err := codec.Parse(everyType)
	if err != nil {
		t.Fatal(err)
	}
	es, err := engineSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		`{"i":"x"}`: "field i: want an integer",
		`{"u2":5}`:  `field u2: want null or {"<branch>": value}`,
		`{"u3":{"com.example.json.Inner":{"x":"y"}}}`: "field u3.x: want an integer",
		`{"a":[1,"two"]}`:         "field a[1]: want an integer",
		`{"i":3000000000}`:        "field i: 3000000000 is not a int",
		`{"fx":"abc"}`:            "field fx: want 4 bytes",
		`{"e":"BLUE"}`:            `field e: "BLUE" is not one of RED, GREEN`,
		`{"by":"€"}`:              "field by: want a string of code points 0 to 255",
		`{"inner":{"x":1,"y":2}}`: "field inner.y: not in record com.example.json.Inner",
		`[1]`:                     "field (the record): want an object",
	} {
		var v any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		// Fill in the other fields so that the one under test fails.
		if m, ok := v.(map[string]any); ok {
			var full map[string]any
			d := json.NewDecoder(strings.NewReader(`{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"abcd","e":"RED","a":[],"m":{},"u1":null,"u2":null,"u3":null,"u4":{"string":""},"dt":0,"ts":0,"tsu":0,"id":"","dec":"","inner":{"x":0}}`))
			d.UseNumber()
			d.Decode(&full)
			for k, x := range m {
				full[k] = x
			}
			v = full
		}
		_, err := fromJSON(es, v, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
}
