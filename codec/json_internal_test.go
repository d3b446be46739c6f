package codec

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

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
		in   any    // as UnmarshalJSON decodes it
		want string // the unscaled value, or the error
	}{
		{b, "49.99", "4999"}, {b, "-1.00", "-100"}, {b, "0.05", "5"}, {b, "-0.05", "-5"}, {b, json.Number("49.99"), "4999"},
		{b, "49.9", "4990"}, {b, "49.990", "4999"}, {b, "1e2", "10000"}, {b, json.Number("4.999e1"), "4999"}, {b, "-0", "0"},
		{b, "+7", "700"}, {b, "9999999999.99", "999999999999"}, {b, "-9999999999.99", "-999999999999"},
		{f, "99.99", "9999"}, {f, "-99.99", "-9999"}, {f, "0", "0"}, {z, "999", "999"}, {z, "-128", "-128"},
		{b, "49.999", `"49.999" has more digits after the point than decimal(12,2) keeps (2)`},
		{b, json.Number("49.991"), `49.991 has more digits after the point than decimal(12,2) keeps (2)`},
		{b, "10000000000", `"10000000000" does not fit decimal(12,2): at most 10 digits before the point`},
		{b, "1e10", `does not fit decimal(12,2)`},
		{b, "1e999999", `exponent out of range`},
		{f, "100", `"100" does not fit decimal(4,2): at most 2 digits before the point`},
		{z, "1.5", `more digits after the point than decimal(3,0) keeps (0)`},
		{b, "4,99", `want a decimal such as "49.99" (decimal(12,2)), got the string "4,99"`},
		{b, "0x10", `want a decimal`}, {b, "1/3", `want a decimal`}, {b, "", `want a decimal`}, {b, ".", `want a decimal`},
		{b, true, `want a decimal`}, {b, "\u0013\u0087", `want a decimal`},
	} {
		raw, err := plainIn(tc.s, tc.in)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = unscaled(raw.([]byte)).String()
			if size := fixedSize(tc.s); size > 0 && len(raw.([]byte)) != size {
				t.Errorf("%v: %d bytes for fixed(%d)", tc.in, len(raw.([]byte)), size)
			}
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v: got %q, want %q", tc.in, got, tc.want)
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
