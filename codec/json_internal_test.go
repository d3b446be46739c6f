package codec

import (
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// everyType's fields, for the engine's values of each type.
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

// jsonValue decodes s as UnmarshalJSON does.
func jsonValue(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAvroJSONIsConfluents: --avro-json prints what Confluent's console
// consumer prints (Avro's JsonEncoder) for the same value: every union
// value but null wrapped in its branch's name (a named type's full
// name), bytes as the code points of ISO-8859-1, a decimal as its
// unscaled bytes, logical types as their numbers.
func TestAvroJSONIsConfluents(t *testing.T) {
	s, err := Parse(everyType)
	if err != nil {
		t.Fatal(err)
	}
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
	out, err := MarshalJSON(s, decoded, JSONOptions{AvroJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	want := `{"s":"a\"b","i":1,"l":2,"f":0.1,"d":0.5,"b":true,"by":"\u0000\u00e9\u00ff","fx":"abc\u0080","e":"RED","a":[1],"m":{},` +
		`"u1":{"string":"x"},"u2":{"long":7},"u3":{"com.example.json.Inner":{"x":1}},"u4":{"string":"t"},"u5":null,` +
		`"dt":19000,"ts":1700000000123,"tsu":1700000000123456,"lts":1000,"ltsu":1,"tm":1500,"tmu":1,` +
		`"id":"0190a0e8-0000-7000-8000-000000000000","dec":"\u0013\u0087","fdec":"\u00ff\u00ff\u009c",` +
		`"dur":"\u0001\u0000\u0000\u0000\u0002\u0000\u0000\u0000\u0003\u0000\u0000\u0000","inner":{"x":1}}`
	if !reflect.DeepEqual(jsonValue(t, got), jsonValue(t, want)) {
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
		raw, err := plainIn(tc.s, jsonValue(t, tc.in))
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

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
