package codec_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/evbus/evbus/codec"
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
	{"name":"u5","type":["null",{"type":"long","logicalType":"timestamp-millis"}]},
	{"name":"dt","type":{"type":"int","logicalType":"date"}},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"lts","type":{"type":"long","logicalType":"local-timestamp-millis"}},
	{"name":"ltsu","type":{"type":"long","logicalType":"local-timestamp-micros"}},
	{"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
	{"name":"tmu","type":{"type":"long","logicalType":"time-micros"}},
	{"name":"id","type":{"type":"string","logicalType":"uuid"}},
	{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"fdec","type":{"type":"fixed","name":"Money","size":3,"logicalType":"decimal","precision":7,"scale":2}},
	{"name":"dur","type":{"type":"fixed","name":"Span","size":12,"logicalType":"duration"}},
	{"name":"inner","type":"Inner"}]}`

// withDefaults adds fields that take their defaults when missing.
const withDefaults = `{"type":"record","name":"Defaults","namespace":"com.example.json","fields":[
	{"name":"k","type":"string"},
	{"name":"by","type":"bytes","default":"\u0000\u00ff"},
	{"name":"fx","type":{"type":"fixed","name":"Two","size":2},"default":"\u00ffa"},
	{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2},"default":"\u0013\u0087"},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"default":1700000000123},
	{"name":"tm","type":{"type":"int","logicalType":"time-millis"},"default":1000},
	{"name":"n","type":["null","string"],"default":null},
	{"name":"u","type":["string","null"],"default":"x"},
	{"name":"r","type":{"type":"record","name":"R","fields":[{"name":"o","type":["null","int"]},{"name":"i","type":"int"}]},"default":{"o":null,"i":7}},
	{"name":"a","type":{"type":"array","items":"long"},"default":[1,2]}]}`

var plain, avroJSON = codec.JSONOptions{}, codec.JSONOptions{AvroJSON: true}

// roundTrip reads in, JSON spelled as from says, encodes it, decodes it as
// written and returns it as JSON spelled as to says.
func roundTrip(t *testing.T, avsc, in string, from, to codec.JSONOptions) (string, error) {
	t.Helper()
	s, err := codec.Parse(avsc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := codec.UnmarshalJSON(s, []byte(in), from)
	if err != nil {
		return "", err
	}
	c := newCodec(t, inferResolver{s})
	enc, err := c.Encoder(1, s, s)
	if err != nil {
		t.Fatal(err)
	}
	value, err := enc.AppendEncode(nil, v)
	if err != nil {
		t.Fatalf("encode %s: %v", in, err)
	}
	var back any
	if err := c.Decode(context.Background(), value, nil, nil, &back); err != nil {
		t.Fatalf("decode %s: %v", in, err)
	}
	out, err := codec.MarshalJSON(s, back, to)
	if err != nil {
		t.Fatalf("MarshalJSON of %s: %v", in, err)
	}
	return string(out), nil
}

// jsonEqual reports whether JSON texts a and b hold the same value: the
// encoder escapes differently than the tests spell their input.
func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestJSONRoundTrip: in each mode, JSON goes to Avro binary and back to
// the same JSON, for every type.
func TestJSONRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		o  codec.JSONOptions
		in string
	}{
		{plain, `{"s":"é <&>","i":-3,"l":9007199254740993,"f":0.1,"d":-2.25,"b":true,"by":"AP8=","fx":"YWJjZA==","e":"GREEN","a":[1,2],"m":{"k":"v"},` +
			`"u1":"x","u2":{"long":7},"u3":{"x":1},"u4":{"array":["p","q"]},"u5":"2026-01-02T15:04:05.123Z",` +
			`"dt":"2022-01-08","ts":"2023-11-14T22:13:20.123Z","tsu":"1969-12-31T23:59:59.999999Z","lts":"2023-11-14T22:13:20.5","ltsu":"2023-11-14T22:13:20.123456",` +
			`"tm":"15:04:05.123","tmu":"23:59:59.999999","id":"0190a0e8-0000-7000-8000-000000000000","dec":"49.99","fdec":"-1.00",` +
			`"dur":{"months":1,"days":2,"milliseconds":3},"inner":{"x":2}}`},
		{plain, `{"s":"","i":0,"l":0,"f":"NaN","d":"-Infinity","b":false,"by":"","fx":"AAAAAA==","e":"RED","a":[],"m":{},` +
			`"u1":null,"u2":{"string":"s"},"u3":null,"u4":{"string":"t"},"u5":null,` +
			`"dt":"1969-12-31","ts":"1970-01-01T00:00:00Z","tsu":"1970-01-01T00:00:00Z","lts":"1970-01-01T00:00:00","ltsu":"1970-01-01T00:00:00",` +
			`"tm":"00:00:00","tmu":"00:00:00","id":"0190A0E8-0000-7000-8000-000000000000","dec":"0.00","fdec":"-83886.08",` +
			`"dur":{"months":0,"days":0,"milliseconds":4294967295},"inner":{"x":-2}}`},
		{avroJSON, `{"s":"é <&>","i":-3,"l":9007199254740993,"f":1.5,"d":-2.25,"b":true,"by":"\u0000\u00ff","fx":"abcd","e":"GREEN","a":[1,2],"m":{"k":"v"},` +
			`"u1":{"string":"x"},"u2":{"long":7},"u3":{"com.example.json.Inner":{"x":1}},"u4":{"array":["p","q"]},"u5":{"long":1767366245123},` +
			`"dt":19000,"ts":1700000000123,"tsu":-1,"lts":1700000000500,"ltsu":1700000000123456,` +
			`"tm":54245123,"tmu":86399999999,"id":"x","dec":"\u0013\u0087","fdec":"\u00ff\u00ff\u009c",` +
			`"dur":"\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000","inner":{"x":2}}`},
		{avroJSON, `{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"\u0000\u0000\u0000\u0000","e":"RED","a":[],"m":{},` +
			`"u1":null,"u2":{"string":"s"},"u3":null,"u4":{"string":"t"},"u5":null,` +
			`"dt":-1,"ts":0,"tsu":0,"lts":0,"ltsu":0,"tm":0,"tmu":0,"id":"","dec":"\u00ff","fdec":"\u0000\u0000\u0000",` +
			`"dur":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000","inner":{"x":-2}}`},
	} {
		out, err := roundTrip(t, everyType, tc.in, tc.o, tc.o)
		if err != nil {
			t.Fatalf("%+v: %s: %v", tc.o, tc.in, err)
		}
		if !jsonEqual(t, tc.in, out) {
			t.Errorf("%+v round trip:\n in %s\nout %s", tc.o, tc.in, out)
		}
	}

	// Missing fields take the schema's defaults, which the schema writes
	// in Avro JSON whatever the mode.
	for o, want := range map[codec.JSONOptions]string{
		plain:    `{"k":"a","by":"AP8=","fx":"/2E=","dec":"49.99","ts":"2023-11-14T22:13:20.123Z","tm":"00:00:01","n":null,"u":"x","r":{"o":null,"i":7},"a":[1,2]}`,
		avroJSON: `{"k":"a","by":"\u0000\u00ff","fx":"\u00ffa","dec":"\u0013\u0087","ts":1700000000123,"tm":1000,"n":null,"u":{"string":"x"},"r":{"o":null,"i":7},"a":[1,2]}`,
	} {
		out, err := roundTrip(t, withDefaults, `{"k":"a"}`, o, o)
		if err != nil {
			t.Fatalf("defaults, %+v: %v", o, err)
		}
		if !jsonEqual(t, want, out) {
			t.Errorf("defaults, %+v:\nwant %s\n got %s", o, want, out)
		}
	}
}

// TestAvroJSONIsConfluents: the AvroJSON mode prints what Confluent's
// console consumer prints (Avro's JsonEncoder) for the same value: every
// union value but null wrapped in its branch's name (a named type's full
// name), bytes as the code points of ISO-8859-1, a decimal as its
// unscaled bytes, logical types as their numbers.
func TestAvroJSONIsConfluents(t *testing.T) {
	in := `{"s":"a\"b","i":1,"l":2,"f":0.1,"d":0.5,"b":true,"by":"AOn/","fx":"YWJjgA==","e":"RED","a":[1],"m":{},` +
		`"u1":"x","u2":{"long":7},"u3":{"x":1},"u4":{"string":"t"},"u5":null,` +
		`"dt":"2022-01-08","ts":"2023-11-14T22:13:20.123Z","tsu":"2023-11-14T22:13:20.123456Z","lts":"1970-01-01T00:00:01","ltsu":"1970-01-01T00:00:00.000001",` +
		`"tm":"00:00:01.5","tmu":"00:00:00.000001","id":"0190a0e8-0000-7000-8000-000000000000","dec":"49.99","fdec":"-1.00",` +
		`"dur":{"months":1,"days":2,"milliseconds":3},"inner":{"x":1}}`
	want := `{"s":"a\"b","i":1,"l":2,"f":0.1,"d":0.5,"b":true,"by":"\u0000\u00e9\u00ff","fx":"abc\u0080","e":"RED","a":[1],"m":{},` +
		`"u1":{"string":"x"},"u2":{"long":7},"u3":{"com.example.json.Inner":{"x":1}},"u4":{"string":"t"},"u5":null,` +
		`"dt":19000,"ts":1700000000123,"tsu":1700000000123456,"lts":1000,"ltsu":1,"tm":1500,"tmu":1,` +
		`"id":"0190a0e8-0000-7000-8000-000000000000","dec":"\u0013\u0087","fdec":"\u00ff\u00ff\u009c",` +
		`"dur":"\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000","inner":{"x":1}}`
	got, err := roundTrip(t, everyType, in, plain, avroJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, want, got) {
		t.Errorf("Avro JSON:\nwant %s\n got %s", want, got)
	}
}

// TestMarshalJSONKeepsFieldOrder: a record's fields come in the schema's
// order, and <, > and & are not escaped.
func TestMarshalJSONKeepsFieldOrder(t *testing.T) {
	out, err := roundTrip(t, `{"type":"record","name":"R","fields":[{"name":"z","type":"string"},{"name":"a","type":"int"}]}`, `{"a":1,"z":"<&>"}`, plain, plain)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"z":"<&>","a":1}`; out != want {
		t.Errorf("got %s, want %s", out, want)
	}
}

// TestUnmarshalJSONNamesTheField: a value that does not fit says where,
// and what each mode wants.
func TestUnmarshalJSONNamesTheField(t *testing.T) {
	s, err := codec.Parse(everyType)
	if err != nil {
		t.Fatal(err)
	}
	// The other fields fit, so that the one under test fails.
	base := map[codec.JSONOptions]string{
		plain: `{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"YWJjZA==","e":"RED","a":[],"m":{},"u1":null,"u2":null,"u3":null,"u4":{"string":""},"u5":null,` +
			`"dt":"2000-01-01","ts":"2000-01-01T00:00:00Z","tsu":"2000-01-01T00:00:00Z","lts":"2000-01-01T00:00:00","ltsu":"2000-01-01T00:00:00","tm":"00:00:00","tmu":"00:00:00",` +
			`"id":"0190a0e8-0000-7000-8000-000000000000","dec":"0","fdec":"0","dur":{"months":0,"days":0,"milliseconds":0},"inner":{"x":0}}`,
		avroJSON: `{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"abcd","e":"RED","a":[],"m":{},"u1":null,"u2":null,"u3":null,"u4":{"string":""},"u5":null,` +
			`"dt":0,"ts":0,"tsu":0,"lts":0,"ltsu":0,"tm":0,"tmu":0,"id":"","dec":"","fdec":"\u0000\u0000\u0000","dur":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000","inner":{"x":0}}`,
	}
	for _, tc := range []struct {
		o        codec.JSONOptions
		in, want string
	}{
		{plain, `{"i":"x"}`, "field i: want an integer"},
		{plain, `{"i":3000000000}`, "field i: 3000000000 is not a int"},
		{plain, `{"f":1e39}`, "field f: 1e39 is not a float"},
		{plain, `{"d":"Inf"}`, `field d: want a number, "NaN", "Infinity" or "-Infinity"`},
		{plain, `{"u2":5}`, `field u2: want null or {"<branch>": value} with a branch of the union: long, string`},
		{plain, `{"u1":{"string":"x"}}`, `field u1: want a string, got an object ({"string": value} is the Avro JSON form: write the value itself)`},
		{plain, `{"u3":{"x":"y"}}`, "field u3.x: want an integer"},
		{plain, `{"a":[1,"two"]}`, "field a[1]: want an integer"},
		{plain, `{"by":"\u0000"}`, "field by: want base64"},
		{plain, `{"fx":"YWJj"}`, "field fx: want 4 bytes (fixed com.example.json.Four), got 3"},
		{plain, `{"e":"BLUE"}`, `field e: "BLUE" is not one of RED, GREEN`},
		{plain, `{"dec":"1.234"}`, `field dec: "1.234" has more digits after the point than decimal(9,2) keeps (2)`},
		{plain, `{"ts":1700000000123}`, `field ts: want an RFC 3339 time such as "2026-01-02T15:04:05.123Z", got the number 1700000000123`},
		{plain, `{"ts":"2026-01-02T15:04:05.1234Z"}`, `field ts: "2026-01-02T15:04:05.1234Z" has digits finer than timestamp-millis keeps (1ms)`},
		{plain, `{"lts":"2026-01-02T15:04:05Z"}`, `field lts: want a date and time without offset`},
		{plain, `{"dt":"2026-1-2"}`, `field dt: want a date such as "2026-01-02"`},
		{plain, `{"tm":"24:00:00"}`, `field tm: want a time of day`},
		{plain, `{"id":"x"}`, `field id: want a UUID`},
		{plain, `{"dur":{"months":1}}`, `field dur: want a duration such as {"months": 1, "days": 2, "milliseconds": 3}: days is not a number`},
		{plain, `{"inner":{"x":1,"y":2}}`, "field inner.y: not in record com.example.json.Inner"},
		{plain, `{"u5":{"long":1}}`, `field u5: want an RFC 3339 time`},
		{avroJSON, `{"u1":"x"}`, `field u1: want null or {"<branch>": value} with a branch of the union: string`},
		{avroJSON, `{"u3":{"x":1}}`, `field u3: want null or {"<branch>": value} with a branch of the union: com.example.json.Inner`},
		{avroJSON, `{"u5":{"long.timestamp-millis":1}}`, `field u5: want null or {"<branch>": value}`},
		{avroJSON, `{"by":"€"}`, "field by: want a string of code points 0 to 255"},
		{avroJSON, `{"dec":"49.99"}`, ""}, // Avro JSON: the five bytes of the text, as Confluent's producer reads it
		{avroJSON, `{"fdec":"\u0001"}`, "field fdec: want 3 bytes (fixed com.example.json.Money), got 1"},
		{avroJSON, `{"ts":"2026-01-02T15:04:05Z"}`, "field ts: want an integer"},
	} {
		full, part := objectOf(t, base[tc.o]), objectOf(t, tc.in)
		for k, x := range part {
			full[k] = x
		}
		in, err := json.Marshal(full)
		if err != nil {
			t.Fatal(err)
		}
		_, err = codec.UnmarshalJSON(s, in, tc.o)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %s: %v", tc.o, tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %s: error %v, want %q", tc.o, tc.in, err, tc.want)
		}
	}
	for in, want := range map[string]string{
		`[1]`:      "field (the record): want an object",
		`{"s":`:    "not JSON",
		`{} {}`:    "more than one JSON value",
		`{"s":""}`: "field i: missing, and the schema gives no default",
	} {
		if _, err := codec.UnmarshalJSON(s, []byte(in), plain); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
	if _, err := codec.UnmarshalJSON(nil, []byte(`{}`), plain); err == nil {
		t.Error("UnmarshalJSON of a nil schema: no error")
	}
	if _, err := codec.MarshalJSON(nil, map[string]any{}, plain); err == nil {
		t.Error("MarshalJSON of a nil schema: no error")
	}
}

// objectOf decodes s, a JSON object, keeping its numbers' text.
func objectOf(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}
