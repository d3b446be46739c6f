package codec

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/hamba/avro/v2"
)

// The leaves both modes spell alike (null, boolean, string, int, long,
// float and double), and the AvroJSON mode's leaves: bytes and fixed,
// decimals and durations too, as strings whose code points 0 to 255 are
// the bytes; logical types as their underlying numbers.

// avroOut spells raw, the Avro value of a leaf, in the AvroJSON mode.
func avroOut(raw any) any {
	if b, ok := raw.([]byte); ok {
		return codePoints(b)
	}
	return numberOut(raw)
}

// avroIn reads v, a leaf of schema s in the AvroJSON mode, as its Avro
// value.
func avroIn(s avro.Schema, v any) (any, error) {
	switch deref(s).Type() {
	case avro.Bytes, avro.Fixed:
		if str, ok := v.(string); ok {
			if b, ok := codePointBytes(str); ok {
				return b, nil
			}
		}
		return nil, fmt.Errorf("want a string of code points 0 to 255 (Avro JSON bytes), got %s", jsonKind(v))
	}
	return primitiveIn(s, v)
}

func codePoints(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func codePointBytes(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// primitiveIn reads a leaf both modes spell alike.
func primitiveIn(s avro.Schema, v any) (any, error) {
	switch t := deref(s).Type(); t {
	case avro.Null:
		if v != nil {
			return nil, want("null", v)
		}
		return nil, nil
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return nil, want("true or false", v)
		}
		return v, nil
	case avro.String:
		if _, ok := v.(string); !ok {
			return nil, want("a string", v)
		}
		return v, nil
	case avro.Int, avro.Long:
		return integerIn(t, v)
	case avro.Float, avro.Double:
		return floatIn(t, v)
	}
	return nil, fmt.Errorf("type %s is not supported", deref(s).Type())
}

// want says what a leaf wants and what v is instead.
func want(what string, v any) error { return fmt.Errorf("want %s, got %s", what, jsonKind(v)) }

// integerIn reads an int (as an int32) or a long (an int64).
func integerIn(t avro.Type, v any) (any, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, want("an integer", v)
	}
	i, err := n.Int64()
	if err != nil || (t == avro.Int && (i < math.MinInt32 || i > math.MaxInt32)) {
		return nil, fmt.Errorf("%s is not a %s", n, t)
	}
	if t == avro.Int {
		return int32(i), nil
	}
	return i, nil
}

// floatIn reads a float (as a float32) or a double (a float64): a number,
// or one of the strings numberOut writes for NaN and the infinities.
func floatIn(t avro.Type, v any) (any, error) {
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(x.String(), 64); err != nil || (t == avro.Float && math.Abs(f) > math.MaxFloat32) {
			return nil, fmt.Errorf("%s is not a %s", x, t)
		}
	case string:
		var ok bool
		if f, ok = nonFinite[x]; !ok {
			return nil, want(`a number, "NaN", "Infinity" or "-Infinity"`, v)
		}
	default:
		return nil, want("a number", v)
	}
	if t == avro.Float {
		return float32(f), nil
	}
	return f, nil
}

var nonFinite = map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}

// numberOut spells raw, when it is a float or a double, as its shortest
// decimal (a float's as a float's, 0.1 and not 0.10000000149011612),
// else returns it as it is.
func numberOut(raw any) any {
	var f float64
	bits := 64
	switch x := raw.(type) {
	case float32:
		f, bits = float64(x), 32
	case float64:
		f = x
	default:
		return raw
	}
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return json.Number(strconv.FormatFloat(f, format, -1, bits))
}
