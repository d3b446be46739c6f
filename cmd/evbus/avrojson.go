package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/evbus/evbus/codec"
)

// The Avro JSON encoding (the Avro specification's, as Confluent's console
// tools read and print it) of values the engine decodes generically, and
// back: records are objects, a union value is null or {"<branch>": value},
// bytes and fixed are strings of code points 0 to 255, logical types are
// their underlying numbers.

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
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return l.Logical().Type()
	}
	return ""
}

// branchName is a union branch's name in Avro JSON: the full name of a
// named type, else the type's name.
func branchName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

// object is a JSON object that keeps its keys in order.
type object []field

type field struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// codePoints is the Avro JSON form of bytes.
func codePoints(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// toJSON turns v, decoded generically with s, into its Avro JSON form.
func toJSON(s avro.Schema, v any) (any, error) {
	s = deref(s)
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s decoded as %T", s.FullName(), v)
		}
		out := make(object, 0, len(s.Fields()))
		for _, f := range s.Fields() {
			fv, err := toJSON(f.Type(), m[f.Name()])
			if err != nil {
				return nil, err
			}
			out = append(out, field{f.Name(), fv})
		}
		return out, nil
	case *avro.UnionSchema:
		if v == nil {
			return nil, nil
		}
		// The engine reads a union into {"<name>": value} unless every
		// branch is a primitive type, then into the value itself.
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, inner := range m {
				for _, t := range s.Types() {
					if typeName(t) == name {
						return wrapBranch(t, inner)
					}
				}
			}
		}
		for _, t := range s.Types() {
			if deref(t).Type() != avro.Null && fitsBranch(t, v) {
				return wrapBranch(t, v)
			}
		}
		return nil, fmt.Errorf("union value %T fits none of its branches", v)
	case *avro.ArraySchema:
		items := reflect.ValueOf(v)
		if items.Kind() != reflect.Slice {
			return nil, fmt.Errorf("array decoded as %T", v)
		}
		out := make([]any, items.Len())
		for i := range out {
			var err error
			if out[i], err = toJSON(s.Items(), items.Index(i).Interface()); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("map decoded as %T", v)
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			var err error
			if out[k], err = toJSON(s.Values(), e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.FixedSchema:
		switch x := v.(type) {
		case *big.Rat:
			return decimalBytes(x, s.Logical(), s.Size())
		case avro.LogicalDuration:
			var b [12]byte
			for i, n := range []uint32{x.Months, x.Days, x.Milliseconds} {
				b[i*4], b[i*4+1], b[i*4+2], b[i*4+3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
			}
			return codePoints(b[:]), nil
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Array {
			return nil, fmt.Errorf("fixed decoded as %T", v)
		}
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return codePoints(b), nil
	}
	switch x := v.(type) {
	case []byte:
		return codePoints(x), nil
	case *big.Rat:
		l, _ := s.(avro.LogicalTypeSchema)
		return decimalBytes(x, l.Logical(), 0)
	case time.Time:
		switch logicalOf(s) {
		case avro.Date:
			return int64(math.Floor(float64(x.Unix()) / 86400)), nil
		case avro.TimestampMicros, avro.LocalTimestampMicros:
			return x.UnixMicro(), nil
		}
		return x.UnixMilli(), nil
	case time.Duration:
		if logicalOf(s) == avro.TimeMicros {
			return x.Microseconds(), nil
		}
		return x.Milliseconds(), nil
	case float32:
		return jsonFloat(float64(x)), nil
	case float64:
		return jsonFloat(x), nil
	}
	return v, nil
}

// jsonFloat keeps NaN and the infinities printable: JSON has no number
// for them.
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}

// typeName is how the engine names a union branch when it decodes into
// {"<name>": value}: logical types included.
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

func wrapBranch(t avro.Schema, v any) (any, error) {
	if deref(t).Type() == avro.Null {
		return nil, nil
	}
	inner, err := toJSON(t, v)
	if err != nil {
		return nil, err
	}
	return object{{branchName(t), inner}}, nil
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
		return logicalOf(t) == avro.Date || logicalOf(t) == avro.TimestampMillis || logicalOf(t) == avro.TimestampMicros
	case time.Duration:
		return logicalOf(t) == avro.TimeMillis || logicalOf(t) == avro.TimeMicros
	}
	return false
}

// decimalBytes is the two's complement big-endian unscaled value of r,
// padded to size when size > 0 (fixed).
func decimalBytes(r *big.Rat, l avro.LogicalSchema, size int) (any, error) {
	d, ok := l.(*avro.DecimalLogicalSchema)
	if !ok {
		return nil, fmt.Errorf("decimal without its logical schema")
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale())), nil)))
	n := new(big.Int).Quo(scaled.Num(), scaled.Denom())
	var b []byte
	if n.Sign() >= 0 {
		b = n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
	} else {
		// Two's complement: 2^(8k) + n for the smallest k that fits.
		k := (n.BitLen() + 8) / 8
		b = new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*k)), n).Bytes()
		for len(b) < k {
			b = append([]byte{0xff}, b...)
		}
	}
	for size > 0 && len(b) < size {
		pad := byte(0)
		if n.Sign() < 0 {
			pad = 0xff
		}
		b = append([]byte{pad}, b...)
	}
	return codePoints(b), nil
}

// ratOf reads b, a two's complement big-endian unscaled decimal, as the
// number it stands for.
func ratOf(b []byte, l avro.LogicalSchema) *big.Rat {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	scale := 0
	if d, ok := l.(*avro.DecimalLogicalSchema); ok {
		scale = d.Scale()
	}
	return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
}

// fromJSON turns v, a JSON value decoded with UseNumber, into the Go
// value the engine encodes with s, or says which field does not fit.
func fromJSON(s avro.Schema, v any, path string) (any, error) {
	s = deref(s)
	bad := func(want string) error {
		return fmt.Errorf("field %s: want %s, got %s", pathName(path), want, jsonKind(v))
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, bad("an object (record " + s.FullName() + ")")
		}
		out := make(map[string]any, len(s.Fields()))
		known := make(map[string]bool, len(s.Fields()))
		for _, f := range s.Fields() {
			known[f.Name()] = true
			fv, ok := m[f.Name()]
			p := join(path, f.Name())
			if !ok {
				if !f.HasDefault() {
					return nil, fmt.Errorf("field %s: missing, and the schema gives no default", p)
				}
				var err error
				if out[f.Name()], err = fromDefault(f.Type(), f.Default(), p); err != nil {
					return nil, err
				}
				continue
			}
			var err error
			if out[f.Name()], err = fromJSON(f.Type(), fv, p); err != nil {
				return nil, err
			}
		}
		for k := range m {
			if !known[k] {
				return nil, fmt.Errorf("field %s: not in record %s", join(path, k), s.FullName())
			}
		}
		return out, nil
	case *avro.UnionSchema:
		if v == nil {
			if _, i := s.Types().Get(string(avro.Null)); i >= 0 {
				return map[string]any{}, nil
			}
			return nil, bad("a value: the union has no null")
		}
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, inner := range m {
				for _, t := range s.Types() {
					if branchName(t) == name || typeName(t) == name {
						x, err := fromJSON(t, inner, path)
						if err != nil {
							return nil, err
						}
						return map[string]any{typeName(t): x}, nil
					}
				}
			}
		}
		// A bare value is accepted where only one branch is not null.
		var only avro.Schema
		for _, t := range s.Types() {
			if deref(t).Type() != avro.Null {
				if only != nil {
					return nil, bad(`null or {"<branch>": value} with a branch of the union, e.g. {"` + branchName(only) + `": ...}`)
				}
				only = t
			}
		}
		x, err := fromJSON(only, v, path)
		if err != nil {
			return nil, err
		}
		return map[string]any{typeName(only): x}, nil
	case *avro.ArraySchema:
		a, ok := v.([]any)
		if !ok {
			return nil, bad("an array")
		}
		out := make([]any, len(a))
		for i, e := range a {
			var err error
			if out[i], err = fromJSON(s.Items(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, bad("an object (map)")
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			var err error
			if out[k], err = fromJSON(s.Values(), e, join(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.EnumSchema:
		str, ok := v.(string)
		if !ok {
			return nil, bad("a string, one of " + strings.Join(s.Symbols(), ", "))
		}
		for _, sym := range s.Symbols() {
			if sym == str {
				return str, nil
			}
		}
		return nil, fmt.Errorf("field %s: %q is not one of %s", pathName(path), str, strings.Join(s.Symbols(), ", "))
	case *avro.FixedSchema:
		b, err := bytesOf(v, bad)
		if err != nil {
			return nil, err
		}
		if len(b) != s.Size() {
			return nil, fmt.Errorf("field %s: want %d bytes (fixed %s), got %d", pathName(path), s.Size(), s.FullName(), len(b))
		}
		if logicalOf(s) == avro.Decimal {
			return ratOf(b, s.Logical()), nil
		}
		arr := reflect.New(reflect.ArrayOf(s.Size(), reflect.TypeFor[byte]())).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr.Interface(), nil
	}
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return nil, bad("null")
		}
		return nil, nil
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return nil, bad("true or false")
		}
		return v, nil
	case avro.String:
		if _, ok := v.(string); !ok {
			return nil, bad("a string")
		}
		return v, nil
	case avro.Bytes:
		b, err := bytesOf(v, bad)
		if err != nil {
			return nil, err
		}
		if l, ok := s.(*avro.PrimitiveSchema); ok && logicalOf(s) == avro.Decimal {
			return ratOf(b, l.Logical()), nil
		}
		return b, nil
	case avro.Int, avro.Long:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad("an integer")
		}
		i, err := n.Int64()
		if err != nil || (s.Type() == avro.Int && (i < math.MinInt32 || i > math.MaxInt32)) {
			return nil, fmt.Errorf("field %s: %s is not a %s", pathName(path), n, s.Type())
		}
		if s.Type() == avro.Int {
			return int32(i), nil
		}
		return i, nil
	case avro.Float, avro.Double:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad("a number")
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("field %s: %s is not a number", pathName(path), n)
		}
		if s.Type() == avro.Float {
			return float32(f), nil
		}
		return f, nil
	}
	return nil, fmt.Errorf("field %s: type %s is not supported", pathName(path), s.Type())
}

// fromDefault converts a field's default (for a union: a value of its
// first branch) like a JSON value.
func fromDefault(s avro.Schema, def any, path string) (any, error) {
	if u, ok := deref(s).(*avro.UnionSchema); ok {
		first := u.Types()[0]
		if def == nil || deref(first).Type() == avro.Null {
			return map[string]any{}, nil
		}
		x, err := fromDefault(first, def, path)
		if err != nil {
			return nil, err
		}
		return map[string]any{typeName(first): x}, nil
	}
	// Round-trip through JSON so that numbers take the form fromJSON reads.
	b, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("field %s: default: %w", pathName(path), err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("field %s: default: %w", pathName(path), err)
	}
	return fromJSON(s, v, path)
}

func bytesOf(v any, bad func(string) error) ([]byte, error) {
	str, ok := v.(string)
	if !ok {
		return nil, bad("a string of code points 0 to 255 (Avro JSON bytes)")
	}
	b := make([]byte, 0, len(str))
	for _, r := range str {
		if r > 255 {
			return nil, bad("a string of code points 0 to 255 (Avro JSON bytes)")
		}
		b = append(b, byte(r))
	}
	return b, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func pathName(path string) string {
	if path == "" {
		return "(the record)"
	}
	return path
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
