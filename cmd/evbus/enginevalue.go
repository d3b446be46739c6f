package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/evbus/evbus/codec"
)

// The values the Avro engine decodes generically and encodes from Go maps
// and slices, and the Avro value of a leaf, which the JSON modes spell:
// nil, bool, string, int32 (int, date, time-millis), int64 (long,
// timestamps, time-micros), float32, float64, and []byte (bytes and fixed,
// decimals and durations too).

// The engine decodes a local timestamp into a time.Time and encodes one
// from it through the process's zone, which a daylight saving change makes
// ambiguous for an hour a year. evbus speaks UTC: with it the engine's
// local timestamps are exact, both ways.
func init() { time.Local = time.UTC }

// engineSchema parses s, with its references, for walking its shape.
func engineSchema(s *codec.Schema) (avro.Schema, error) {
	names := &avro.SchemaCache{}
	seen := make(map[*codec.Schema]bool)
	var add func(*codec.Schema) error
	add = func(r *codec.Schema) error {
		if seen[r] {
			return nil
		}
		seen[r] = true
		for _, ref := range r.References() {
			if err := add(ref); err != nil {
				return err
			}
		}
		_, err := avro.ParseWithCache(r.String(), "", names)
		return err
	}
	for _, ref := range s.References() {
		if err := add(ref); err != nil {
			return nil, err
		}
	}
	return avro.ParseWithCache(s.String(), "", names)
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func logicalOf(s avro.Schema) avro.LogicalType {
	if l, ok := deref(s).(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return l.Logical().Type()
	}
	return ""
}

// decimalOf is s's precision and scale, when s is a decimal.
func decimalOf(s avro.Schema) (*avro.DecimalLogicalSchema, bool) {
	l, ok := deref(s).(avro.LogicalTypeSchema)
	if !ok {
		return nil, false
	}
	d, ok := l.Logical().(*avro.DecimalLogicalSchema)
	return d, ok
}

// fixedSize is s's size when s is a fixed, else 0.
func fixedSize(s avro.Schema) int {
	if f, ok := deref(s).(*avro.FixedSchema); ok {
		return f.Size()
	}
	return 0
}

// typeName is how the engine names a union branch in the maps it decodes
// and encodes ({"<name>": value}): logical types included.
func typeName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if l := logicalOf(s); l != "" {
		return string(s.Type()) + "." + string(l)
	}
	return string(s.Type())
}

// fitsBranch reports whether v is what the engine decodes branch t into.
func fitsBranch(t avro.Schema, v any) bool {
	t = deref(t)
	switch v.(type) {
	case string:
		return t.Type() == avro.String
	case int, int32:
		return t.Type() == avro.Int
	case int64:
		return t.Type() == avro.Long
	case float32:
		return t.Type() == avro.Float
	case float64:
		return t.Type() == avro.Double
	case bool:
		return t.Type() == avro.Boolean
	case []byte:
		return t.Type() == avro.Bytes
	case *big.Rat:
		return logicalOf(t) == avro.Decimal
	case time.Time:
		switch logicalOf(t) {
		case avro.Date, avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			return true
		}
	case time.Duration:
		return logicalOf(t) == avro.TimeMillis || logicalOf(t) == avro.TimeMicros
	}
	return false
}

// avroValue is the Avro value of v, a leaf of schema s as the engine
// decoded it.
func avroValue(s avro.Schema, v any) (any, error) {
	l := logicalOf(s)
	switch x := v.(type) {
	case int:
		if deref(s).Type() == avro.Int {
			return int32(x), nil
		}
		return int64(x), nil
	case time.Time:
		switch l {
		case avro.Date:
			return int32(floorDiv(x.Unix(), 86400)), nil
		case avro.TimestampMillis:
			return x.UnixMilli(), nil
		case avro.TimestampMicros:
			return x.UnixMicro(), nil
		case avro.LocalTimestampMillis:
			return x.UnixMilli(), nil
		case avro.LocalTimestampMicros:
			return x.UnixMicro(), nil
		}
	case time.Duration:
		if l == avro.TimeMillis {
			return int32(x / time.Millisecond), nil
		}
		return int64(x / time.Microsecond), nil
	case *big.Rat:
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

// engineValue is the Go value the engine encodes with s for raw, an Avro
// value of the type avroValue returns for s.
func engineValue(s avro.Schema, raw any) (any, error) {
	fixed, isFixed := deref(s).(*avro.FixedSchema)
	if isFixed {
		if b, ok := raw.([]byte); !ok || len(b) != fixed.Size() {
			return nil, fmt.Errorf("want %d bytes (fixed %s), got %d", fixed.Size(), fixed.FullName(), len(b))
		}
	}
	switch logicalOf(s) {
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
	case *avro.ArraySchema:
		items, ok := def.([]any)
		if !ok {
			return nil, fmt.Errorf("field %s: default %T is not an array", pathName(path), def)
		}
		out := make([]any, len(items))
		for i, e := range items {
			var err error
			if out[i], err = engineDefault(s.Items(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
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
