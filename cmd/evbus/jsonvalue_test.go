package main

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
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

// roundTrip encodes in, read in mode, as publish does, decodes it through
// the registry as tail and dlt show do, and returns it printed in mode.
func roundTrip(t *testing.T, reg *schema.Registry, avsc string, mode jsonMode, in string) (string, error) {
	t.Helper()
	s, es := parseSchema(t, avsc)
	id, err := reg.Register(t.Context(), "every-"+s.FullName(), s)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.New(reg).Encoder(id, s, s)
	if err != nil {
		t.Fatal(err)
	}
	gv, err := mode.fromJSON(es, decodeJSON(t, in), "")
	if err != nil {
		return "", err
	}
	value, err := enc.AppendEncode(nil, gv)
	if err != nil {
		t.Fatalf("encode %s: %v", in, err)
	}
	dv, err := newDecoder(reg, mode).decode(context.Background(), &kgo.Record{Value: value})
	if err != nil || dv.err != nil {
		t.Fatalf("decode %s: %v %v", in, err, dv.err)
	}
	if dv.typeName != s.FullName() || dv.schemaID != id {
		t.Errorf("type %q schema id %d", dv.typeName, dv.schemaID)
	}
	out, err := json.Marshal(dv.json)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), nil
}

func parseSchema(t *testing.T, avsc string) (*codec.Schema, avro.Schema) {
	t.Helper()
	s, err := codec.Parse(avsc)
	if err != nil {
		t.Fatal(err)
	}
	es, err := engineSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, es
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// sameJSON compares JSON texts as values: Go's encoder escapes
// differently than the tests spell their input.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return mustJSON(x) == mustJSON(y)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestJSONRoundTrip: in each mode, JSON goes to Avro binary (publish's
// way) and back to the same JSON (tail's and show's way), through the
// registry, for every type.
func TestJSONRoundTrip(t *testing.T) {
	stack := evbustest.Start(t)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode jsonMode
		in   string
	}{
		{plainJSON, `{"s":"é <&>","i":-3,"l":9007199254740993,"f":0.1,"d":-2.25,"b":true,"by":"AP8=","fx":"YWJjZA==","e":"GREEN","a":[1,2],"m":{"k":"v"},` +
			`"u1":"x","u2":{"long":7},"u3":{"x":1},"u4":{"array":["p","q"]},"u5":"2026-01-02T15:04:05.123Z",` +
			`"dt":"2022-01-08","ts":"2023-11-14T22:13:20.123Z","tsu":"1969-12-31T23:59:59.999999Z","lts":"2023-11-14T22:13:20.5","ltsu":"2023-11-14T22:13:20.123456",` +
			`"tm":"15:04:05.123","tmu":"23:59:59.999999","id":"0190a0e8-0000-7000-8000-000000000000","dec":"49.99","fdec":"-1.00",` +
			`"dur":{"months":1,"days":2,"milliseconds":3},"inner":{"x":2}}`},
		{plainJSON, `{"s":"","i":0,"l":0,"f":"NaN","d":"-Infinity","b":false,"by":"","fx":"AAAAAA==","e":"RED","a":[],"m":{},` +
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
		out, err := roundTrip(t, reg, everyType, tc.mode, tc.in)
		if err != nil {
			t.Fatalf("mode %d: %s: %v", tc.mode, tc.in, err)
		}
		if !sameJSON(t, tc.in, out) {
			t.Errorf("mode %d round trip:\n in %s\nout %s", tc.mode, tc.in, out)
		}
	}

	// Missing fields take the schema's defaults, which the schema writes
	// in Avro JSON whatever the mode.
	for mode, want := range map[jsonMode]string{
		plainJSON: `{"k":"a","by":"AP8=","fx":"/2E=","dec":"49.99","ts":"2023-11-14T22:13:20.123Z","tm":"00:00:01","n":null,"u":"x","r":{"o":null,"i":7},"a":[1,2]}`,
		avroJSON:  `{"k":"a","by":"\u0000\u00ff","fx":"\u00ffa","dec":"\u0013\u0087","ts":1700000000123,"tm":1000,"n":null,"u":{"string":"x"},"r":{"o":null,"i":7},"a":[1,2]}`,
	} {
		out, err := roundTrip(t, reg, withDefaults, mode, `{"k":"a"}`)
		if err != nil {
			t.Fatalf("defaults, mode %d: %v", mode, err)
		}
		if !sameJSON(t, want, out) {
			t.Errorf("defaults, mode %d:\nwant %s\n got %s", mode, want, out)
		}
	}
}

// TestAvroJSONIsConfluents: --avro-json prints what Confluent's console
// consumer prints (Avro's JsonEncoder) for the same value: every union
// value but null wrapped in its branch's name (a named type's full
// name), bytes as the code points of ISO-8859-1, a decimal as its
// unscaled bytes, logical types as their numbers.
func TestAvroJSONIsConfluents(t *testing.T) {
	_, es := parseSchema(t, everyType)
	total, _ := new(big.Rat).SetString("49.99")
	minus, _ := new(big.Rat).SetString("-1.00")
	inner := map[string]any{"x": 1}
	decoded := map[string]any{
		"s": "a\"b", "i": 1, "l": int64(2), "f": float32(0.1), "d": 0.5, "b": true, "by": []byte{0, 0xe9, 0xff}, "fx": [4]byte{'a', 'b', 'c', 0x80},
		"e": "RED", "a": []any{1}, "m": map[string]any{}, "u1": map[string]any{"string": "x"}, "u2": map[string]any{"long": int64(7)},
		"u3": map[string]any{"com.example.json.Inner": inner}, "u4": map[string]any{"string": "t"}, "u5": nil,
		"dt": mustTime(t, "2022-01-08T00:00:00Z"), "ts": mustTime(t, "2023-11-14T22:13:20.123Z"), "tsu": mustTime(t, "2023-11-14T22:13:20.123456Z"),
		"lts": mustTime(t, "1970-01-01T00:00:01Z"), "ltsu": mustTime(t, "1970-01-01T00:00:00.000001Z"), "tm": 1500 * time.Millisecond, "tmu": time.Microsecond,
		"id": "0190a0e8-0000-7000-8000-000000000000", "dec": total, "fdec": minus,
		"dur": avro.LogicalDuration{Months: 1, Days: 2, Milliseconds: 3}, "inner": inner,
	}
	out, err := avroJSON.toJSON(es, decoded, "")
	if err != nil {
		t.Fatal(err)
	}
	got := mustJSON(out)
	want := `{"s":"a\"b","i":1,"l":2,"f":0.1,"d":0.5,"b":true,"by":"\u0000\u00e9\u00ff","fx":"abc\u0080","e":"RED","a":[1],"m":{},` +
		`"u1":{"string":"x"},"u2":{"long":7},"u3":{"com.example.json.Inner":{"x":1}},"u4":{"string":"t"},"u5":null,` +
		`"dt":19000,"ts":1700000000123,"tsu":1700000000123456,"lts":1000,"ltsu":1,"tm":1500,"tmu":1,` +
		`"id":"0190a0e8-0000-7000-8000-000000000000","dec":"\u0013\u0087","fdec":"\u00ff\u00ff\u009c",` +
		`"dur":"\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000","inner":{"x":1}}`
	if !sameJSON(t, want, got) {
		t.Errorf("Avro JSON:\nwant %s\n got %s", want, got)
	}
}

// TestDecimalText: a decimal reads from its digits exactly, or says why
// it does not fit, and prints with exactly its scale's digits.
func TestDecimalText(t *testing.T) {
	es, err := avro.Parse(`{"type":"record","name":"D","fields":[
		{"name":"b","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
		{"name":"f","type":{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":4,"scale":2}},
		{"name":"z","type":{"type":"bytes","logicalType":"decimal","precision":3,"scale":0}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	fields := es.(*avro.RecordSchema).Fields()
	b, f, z := fields[0].Type(), fields[1].Type(), fields[2].Type()
	for _, tc := range []struct {
		s    avro.Schema
		in   string // JSON
		want string // the unscaled value, or the error
	}{
		{b, `"49.99"`, "4999"}, {b, `"-1.00"`, "-100"}, {b, `"0.05"`, "5"}, {b, `"-0.05"`, "-5"}, {b, `49.99`, "4999"},
		{b, `"49.9"`, "4990"}, {b, `"49.990"`, "4999"}, {b, `"1e2"`, "10000"}, {b, `4.999e1`, "4999"}, {b, `"-0"`, "0"},
		{b, `"+7"`, "700"}, {b, `"9999999999.99"`, "999999999999"}, {b, `"-9999999999.99"`, "-999999999999"},
		{f, `"99.99"`, "9999"}, {f, `"-99.99"`, "-9999"}, {f, `"0"`, "0"}, {z, `"999"`, "999"}, {z, `"-128"`, "-128"},
		{b, `"49.999"`, `"49.999" has more digits after the point than decimal(12,2) keeps (2)`},
		{b, `49.991`, `49.991 has more digits after the point than decimal(12,2) keeps (2)`},
		{b, `"10000000000"`, `"10000000000" does not fit decimal(12,2): at most 10 digits before the point`},
		{b, `"1e10"`, `does not fit decimal(12,2)`},
		{b, `"1e999999"`, `exponent out of range`},
		{f, `"100"`, `"100" does not fit decimal(4,2): at most 2 digits before the point`},
		{z, `"1.5"`, `more digits after the point than decimal(3,0) keeps (0)`},
		{b, `"4,99"`, `want a decimal such as "49.99" (decimal(12,2)), got the string "4,99"`},
		{b, `"0x10"`, `want a decimal`}, {b, `"1/3"`, `want a decimal`}, {b, `""`, `want a decimal`}, {b, `"."`, `want a decimal`},
		{b, `true`, `want a decimal`}, {b, `"\u0013\u0087"`, `want a decimal`},
	} {
		raw, err := plainIn(tc.s, decodeJSON(t, tc.in))
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = unscaled(raw.([]byte)).String()
			if size := fixedSize(tc.s); size > 0 && len(raw.([]byte)) != size {
				t.Errorf("%s: %d bytes for fixed(%d)", tc.in, len(raw.([]byte)), size)
			}
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.in, got, tc.want)
		}
	}
	for n, want := range map[int64]string{4999: "49.99", -100: "-1.00", 5: "0.05", -5: "-0.05", 0: "0.00", 999999999999: "9999999999.99"} {
		if got := decimalString(big.NewInt(n), 2); got != want {
			t.Errorf("decimalString(%d, 2) = %s, want %s", n, got, want)
		}
	}
	if got := decimalString(big.NewInt(-12), 0); got != "-12" {
		t.Errorf("decimalString(-12, 0) = %s", got)
	}
	// Two's complement: the fewest bytes, read back the same.
	for n := int64(-70000); n <= 70000; n++ {
		b, _ := twosComplement(big.NewInt(n), 0)
		if back := unscaled(b).Int64(); back != n || (len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0)) {
			t.Fatalf("%d: % x reads back %d", n, b, back)
		}
	}
}

// TestFromJSONNamesTheField: a value that does not fit says where, and
// what each mode wants.
func TestFromJSONNamesTheField(t *testing.T) {
	_, es := parseSchema(t, everyType)
	// The other fields fit, so that the one under test fails.
	base := map[jsonMode]string{
		plainJSON: `{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"YWJjZA==","e":"RED","a":[],"m":{},"u1":null,"u2":null,"u3":null,"u4":{"string":""},"u5":null,` +
			`"dt":"2000-01-01","ts":"2000-01-01T00:00:00Z","tsu":"2000-01-01T00:00:00Z","lts":"2000-01-01T00:00:00","ltsu":"2000-01-01T00:00:00","tm":"00:00:00","tmu":"00:00:00",` +
			`"id":"0190a0e8-0000-7000-8000-000000000000","dec":"0","fdec":"0","dur":{"months":0,"days":0,"milliseconds":0},"inner":{"x":0}}`,
		avroJSON: `{"s":"","i":0,"l":0,"f":0,"d":0,"b":false,"by":"","fx":"abcd","e":"RED","a":[],"m":{},"u1":null,"u2":null,"u3":null,"u4":{"string":""},"u5":null,` +
			`"dt":0,"ts":0,"tsu":0,"lts":0,"ltsu":0,"tm":0,"tmu":0,"id":"","dec":"","fdec":"\u0000\u0000\u0000","dur":"\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000","inner":{"x":0}}`,
	}
	for _, tc := range []struct {
		mode     jsonMode
		in, want string
	}{
		{plainJSON, `{"i":"x"}`, "field i: want an integer"},
		{plainJSON, `{"i":3000000000}`, "field i: 3000000000 is not a int"},
		{plainJSON, `{"f":1e39}`, "field f: 1e39 is not a float"},
		{plainJSON, `{"d":"Inf"}`, `field d: want a number, "NaN", "Infinity" or "-Infinity"`},
		{plainJSON, `{"u2":5}`, `field u2: want null or {"<branch>": value} with a branch of the union: long, string`},
		{plainJSON, `{"u1":{"string":"x"}}`, `field u1: want a string, got an object ({"string": value} is --avro-json's form: write the value itself)`},
		{plainJSON, `{"u3":{"x":"y"}}`, "field u3.x: want an integer"},
		{plainJSON, `{"a":[1,"two"]}`, "field a[1]: want an integer"},
		{plainJSON, `{"by":"\u0000"}`, "field by: want base64"},
		{plainJSON, `{"fx":"YWJj"}`, "field fx: want 4 bytes (fixed com.example.json.Four), got 3"},
		{plainJSON, `{"e":"BLUE"}`, `field e: "BLUE" is not one of RED, GREEN`},
		{plainJSON, `{"dec":"1.234"}`, `field dec: "1.234" has more digits after the point than decimal(9,2) keeps (2)`},
		{plainJSON, `{"ts":1700000000123}`, `field ts: want an RFC 3339 time such as "2026-01-02T15:04:05.123Z", got the number 1700000000123`},
		{plainJSON, `{"ts":"2026-01-02T15:04:05.1234Z"}`, `field ts: "2026-01-02T15:04:05.1234Z" has digits finer than timestamp-millis keeps (1ms)`},
		{plainJSON, `{"lts":"2026-01-02T15:04:05Z"}`, `field lts: want a date and time without offset`},
		{plainJSON, `{"dt":"2026-1-2"}`, `field dt: want a date such as "2026-01-02"`},
		{plainJSON, `{"tm":"24:00:00"}`, `field tm: want a time of day`},
		{plainJSON, `{"id":"x"}`, `field id: want a UUID`},
		{plainJSON, `{"dur":{"months":1}}`, `field dur: want a duration such as {"months": 1, "days": 2, "milliseconds": 3}: days is not a number`},
		{plainJSON, `{"inner":{"x":1,"y":2}}`, "field inner.y: not in record com.example.json.Inner"},
		{plainJSON, `{"u5":{"long":1}}`, `field u5: want an RFC 3339 time`},
		{avroJSON, `{"u1":"x"}`, `field u1: want null or {"<branch>": value} with a branch of the union: string`},
		{avroJSON, `{"u3":{"x":1}}`, `field u3: want null or {"<branch>": value} with a branch of the union: com.example.json.Inner`},
		{avroJSON, `{"u5":{"long.timestamp-millis":1}}`, `field u5: want null or {"<branch>": value}`},
		{avroJSON, `{"by":"€"}`, "field by: want a string of code points 0 to 255"},
		{avroJSON, `{"dec":"49.99"}`, ""}, // Avro JSON: the five bytes of the text, as Confluent's producer reads it
		{avroJSON, `{"fdec":"\u0001"}`, "field fdec: want 3 bytes (fixed com.example.json.Money), got 1"},
		{avroJSON, `{"ts":"2026-01-02T15:04:05Z"}`, "field ts: want an integer"},
	} {
		full := decodeJSON(t, base[tc.mode]).(map[string]any)
		for k, x := range decodeJSON(t, tc.in).(map[string]any) {
			full[k] = x
		}
		_, err := tc.mode.fromJSON(es, full, "")
		if tc.want == "" {
			if err != nil {
				t.Errorf("mode %d: %s: %v", tc.mode, tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mode %d: %s: error %v, want %q", tc.mode, tc.in, err, tc.want)
		}
	}
	if _, err := plainJSON.fromJSON(es, []any{json.Number("1")}, ""); err == nil || !strings.Contains(err.Error(), "field (the record): want an object") {
		t.Errorf("an array for the record: %v", err)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
