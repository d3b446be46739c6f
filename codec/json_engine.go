package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"time"

	"github.com/hamba/avro/v2"
)

// The Go values the engine decodes into an any and encodes from maps and
// slices, and the Avro value of a leaf, which the JSON modes spell: nil,
// bool, string, int32 (int, date, time-millis), int64 (long, timestamps,
// time-micros), float32, float64, and []byte (bytes and fixed, decimals
// and durations too). Only this file knows the engine's Go types.

func logicalType(s avro.Schema) avro.LogicalType {
	if l := logicalOf(deref(s)); l != nil {
		return l.Type()
	}
	return ""
}

// decimalOf is s's precision and scale, when s is a decimal.
func decimalOf(s avro.Schema) (*avro.DecimalLogicalSchema, bool) {
	d, ok := logicalOf(deref(s)).(*avro.DecimalLogicalSchema)
	return d, ok
}

// fixedSize is s's size when s is a fixed, else 0.
func fixedSize(s avro.Schema) int {
	if f, ok := deref(s).(*avro.FixedSchema); ok {
		return f.Size()
	}
	return 0
}

// avroValue is the Avro value of v, a leaf of schema s as the engine
// decoded it.
func avroValue(s avro.Schema, v any) (any, error) {
	switch x := v.(type) {
	case int:
		if deref(s).Type() == avro.Int {
			return int32(x), nil
		}
		return int64(x), nil
	case time.Time:
		return timeValue(logicalType(s), x), nil
	case time.Duration:
		if logicalType(s) == avro.TimeMillis {
			return int32(x / time.Millisecond), nil
		}
		return int64(x / time.Microsecond), nil
	case *big.Rat:
		return decimalValue(s, x)
	case avro.LogicalDuration:
		b := make([]byte, 12)
		binary.LittleEndian.PutUint32(b, x.Months)
		binary.LittleEndian.PutUint32(b[4:], x.Days)
		binary.LittleEndian.PutUint32(b[8:], x.Milliseconds)
		return b, nil
	}
	if rv := reflect.ValueOf(v); deref(s).Type() == avro.Fixed && rv.Kind() == reflect.Array {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b, nil
	}
	return v, nil
}

// timeValue is t, a value of the date or timestamp type l, in l's unit.
// The engine decodes a local timestamp into the time whose reading in
// time.Local is the timestamp's reading in UTC: it is read back so, as the
// engine encodes it.
func timeValue(l avro.LogicalType, t time.Time) any {
	if l == avro.LocalTimestampMillis || l == avro.LocalTimestampMicros {
		t = t.Local()
		t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	switch l {
	case avro.Date:
		return int32(floorDiv(t.Unix(), 86400))
	case avro.TimestampMillis, avro.LocalTimestampMillis:
		return t.UnixMilli()
	}
	return t.UnixMicro()
}

// decimalValue is x as the unscaled two's complement bytes of decimal s.
func decimalValue(s avro.Schema, x *big.Rat) ([]byte, error) {
	d, _ := decimalOf(s)
	n := new(big.Rat).Mul(x, new(big.Rat).SetInt(pow10(d.Scale())))
	if !n.IsInt() {
		return nil, fmt.Errorf("decimal %s has more digits than scale %d", x.RatString(), d.Scale())
	}
	b, ok := twosComplement(n.Num(), fixedSize(s))
	if !ok {
		return nil, fmt.Errorf("decimal %s does not fit fixed(%d)", x.RatString(), fixedSize(s))
	}
	return b, nil
}

// engineValue is the Go value the engine encodes with s for raw, an Avro
// value of the type avroValue returns for s.
func engineValue(s avro.Schema, raw any) (any, error) {
	fixed, isFixed := deref(s).(*avro.FixedSchema)
	if isFixed {
		if b, ok := raw.([]byte); !ok || len(b) != fixed.Size() {
			return nil, fmt.Errorf("want %d bytes (fixed %s), got %d", fixed.Size(), fixed.FullName(), len(b))
		}
	}
	switch logicalType(s) {
	case avro.Decimal:
		if b, ok := raw.([]byte); ok {
			d, _ := decimalOf(s)
			return new(big.Rat).SetFrac(unscaled(b), pow10(d.Scale())), nil
		}
	case avro.Duration:
		if b, ok := raw.([]byte); ok && len(b) == 12 {
			return avro.LogicalDuration{
				Months:       binary.LittleEndian.Uint32(b),
				Days:         binary.LittleEndian.Uint32(b[4:]),
				Milliseconds: binary.LittleEndian.Uint32(b[8:]),
			}, nil
		}
	case avro.TimeMillis:
		// The engine encodes a time of day from a time.Duration.
		if ms, ok := raw.(int32); ok {
			return time.Duration(ms) * time.Millisecond, nil
		}
	case avro.TimeMicros:
		if us, ok := raw.(int64); ok {
			if us > math.MaxInt64/1000 || us < math.MinInt64/1000 {
				return nil, fmt.Errorf("time-micros %d is out of range", us)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	if isFixed {
		b := raw.([]byte)
		arr := reflect.New(reflect.ArrayOf(len(b), reflect.TypeFor[byte]())).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	}
	return raw, nil
}

// engineDefault is the Go value the engine encodes with s for def, a
// field's default as the engine parsed it: a union's is a value of its
// first branch.
func engineDefault(s avro.Schema, def any, path string) (any, error) {
	switch s := deref(s).(type) {
	case *avro.UnionSchema:
		first := s.Types()[0]
		if deref(first).Type() == avro.Null {
			return map[string]any{}, nil
		}
		x, err := engineDefault(first, def, path)
		return map[string]any{typeName(first): x}, err
	case *avro.RecordSchema:
		return recordDefault(s, def, path)
	case *avro.ArraySchema:
		items, ok := def.([]any)
		if !ok {
			return nil, fmt.Errorf("field %s: default %T is not an array", pathName(path), def)
		}
		out := make([]any, len(items))
		for i, e := range items {
			var err error
			if out[i], err = engineDefault(s.Items(), e, index(path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.MapSchema:
		entries, ok := def.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %s: default %T is not a map", pathName(path), def)
		}
		out := make(map[string]any, len(entries))
		for k, e := range entries {
			var err error
			if out[k], err = engineDefault(s.Values(), e, join(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.EnumSchema:
		return def, nil
	}
	// The engine parses defaults into what it decodes: int for an int,
	// an array for a fixed.
	raw, err := avroValue(s, def)
	if err == nil {
		raw, err = engineValue(s, raw)
	}
	if err != nil {
		return nil, fmt.Errorf("field %s: default: %w", pathName(path), err)
	}
	return raw, nil
}

func recordDefault(s *avro.RecordSchema, def any, path string) (any, error) {
	fields, ok := def.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("field %s: default %T is not a record", pathName(path), def)
	}
	out := make(map[string]any, len(s.Fields()))
	for _, f := range s.Fields() {
		var err error
		if out[f.Name()], err = engineDefault(f.Type(), fields[f.Name()], join(path, f.Name())); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}

// unscaled reads b as a two's complement big-endian integer.
func unscaled(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

// twosComplement is n as a two's complement big-endian integer: the
// fewest bytes, or exactly size bytes when size > 0 (false when n needs
// more).
func twosComplement(n *big.Int, size int) ([]byte, bool) {
	k := (n.BitLen() + 8) / 8 // the sign bit included
	if n.Sign() < 0 {
		k = (new(big.Int).Not(n).BitLen() + 8) / 8 // -n-1: -128 fits one byte
	}
	if size > 0 {
		if k > size {
			return nil, false
		}
		k = size
	}
	b := make([]byte, k)
	if n.Sign() >= 0 {
		n.FillBytes(b)
		return b, true
	}
	new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*k)), n).FillBytes(b)
	return b, true
}
