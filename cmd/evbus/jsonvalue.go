package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// The CLI's JSON for Avro values (publish reads it, tail and dlt show print
// it) has two modes. Both write records as objects in field order, arrays,
// maps as objects, enums as their symbol, strings, booleans and numbers as
// themselves (NaN and the infinities, which JSON has no number for, as the
// strings "NaN", "Infinity" and "-Infinity"). They differ in unions, in
// bytes and fixed, and in logical types:
//
//   - plainJSON (the default) writes values as people write them: a union
//     of null and one type is null or the value itself, other unions
//     {"<branch>": value}; a decimal a decimal string with exactly its
//     scale's digits; bytes and fixed base64; timestamps RFC 3339 in UTC;
//     see plainjson.go.
//   - avroJSON (--avro-json) is the Avro specification's JSON encoding, as
//     Confluent's console tools read and print it: every union value but
//     null is {"<branch>": value}; bytes and fixed (decimals too) are
//     strings of the code points 0 to 255; logical types are their
//     underlying numbers; see avrojson.go.
//
// Each mode converts only leaves; this file walks the structure, and
// enginevalue.go turns what the engine decodes into the Avro value a leaf
// stands for, and back.

// jsonMode is how the CLI spells Avro values in JSON.
type jsonMode int

const (
	plainJSON jsonMode = iota // values as people write them
	avroJSON                  // the Avro specification's JSON encoding
)

// The --avro-json flag: a jsonMode is a boolean flag.

func (m *jsonMode) String() string   { return strconv.FormatBool(m != nil && *m == avroJSON) }
func (m *jsonMode) IsBoolFlag() bool { return true }

func (m *jsonMode) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*m = plainJSON
	if b {
		*m = avroJSON
	}
	return nil
}

// defineMode adds --avro-json to fs.
func defineMode(fs *flag.FlagSet) *jsonMode {
	m := new(jsonMode)
	fs.Var(m, "avro-json", "speak the Avro specification's JSON encoding, as Confluent's console tools do: unions as {\"<branch>\": value}, bytes and decimals as strings of code points 0 to 255, logical types as their numbers")
	return m
}

// toJSON turns v, which the engine decoded with s, into JSON in mode m.
func (m jsonMode) toJSON(s avro.Schema, v any, path string) (any, error) {
	switch s := deref(s).(type) {
	case *avro.RecordSchema:
		fields, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %s: record %s decoded as %T", pathName(path), s.FullName(), v)
		}
		out := make(object, 0, len(s.Fields()))
		for _, f := range s.Fields() {
			x, err := m.toJSON(f.Type(), fields[f.Name()], join(path, f.Name()))
			if err != nil {
				return nil, err
			}
			out = append(out, field{f.Name(), x})
		}
		return out, nil
	case *avro.UnionSchema:
		t, inner, err := branchOf(s, v)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", pathName(path), err)
		}
		if t == nil {
			return nil, nil
		}
		x, err := m.toJSON(t, inner, path)
		if err != nil || (m == plainJSON && soleBranch(s) != nil) {
			return x, err
		}
		return object{{branchName(t), x}}, nil
	case *avro.ArraySchema:
		items := reflect.ValueOf(v)
		if items.Kind() != reflect.Slice {
			return nil, fmt.Errorf("field %s: array decoded as %T", pathName(path), v)
		}
		out := make([]any, items.Len())
		for i := range out {
			var err error
			if out[i], err = m.toJSON(s.Items(), items.Index(i).Interface(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.MapSchema:
		entries, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %s: map decoded as %T", pathName(path), v)
		}
		out := make(map[string]any, len(entries))
		for k, e := range entries {
			var err error
			if out[k], err = m.toJSON(s.Values(), e, join(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.EnumSchema:
		return v, nil
	default:
		raw, err := avroValue(s, v)
		if err == nil {
			if m == avroJSON {
				raw, err = avroOut(s, raw)
			} else {
				raw, err = plainOut(s, raw)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", pathName(path), err)
		}
		return raw, nil
	}
}

// fromJSON turns v, a JSON value decoded with UseNumber, read in mode m,
// into the Go value the engine encodes with s, or says which field does
// not fit and why. A missing record field takes the schema's default.
func (m jsonMode) fromJSON(s avro.Schema, v any, path string) (any, error) {
	bad := func(want string) error {
		return fmt.Errorf("field %s: want %s, got %s", pathName(path), want, jsonKind(v))
	}
	switch s := deref(s).(type) {
	case *avro.RecordSchema:
		fields, ok := v.(map[string]any)
		if !ok {
			return nil, bad("an object (record " + s.FullName() + ")")
		}
		out := make(map[string]any, len(s.Fields()))
		for _, f := range s.Fields() {
			p := join(path, f.Name())
			fv, ok := fields[f.Name()]
			var err error
			switch {
			case ok:
				out[f.Name()], err = m.fromJSON(f.Type(), fv, p)
			case f.HasDefault():
				out[f.Name()], err = engineDefault(f.Type(), f.Default(), p)
			default:
				err = fmt.Errorf("field %s: missing, and the schema gives no default", p)
			}
			if err != nil {
				return nil, err
			}
		}
		for k := range fields {
			if fieldNamed(s, k) == nil {
				return nil, fmt.Errorf("field %s: not in record %s", join(path, k), s.FullName())
			}
		}
		return out, nil
	case *avro.UnionSchema:
		if v == nil {
			if _, i := s.Types().Get(string(avro.Null)); i < 0 {
				return nil, bad("a value: the union has no null")
			}
			return map[string]any{}, nil
		}
		t, inner := soleBranch(s), v
		if t == nil || m == avroJSON {
			var ok bool
			if t, inner, ok = wrappedBranch(s, v); !ok {
				return nil, bad(`null or {"<branch>": value} with a branch of the union: ` + branchNames(s))
			}
		}
		x, err := m.fromJSON(t, inner, path)
		if err != nil {
			if w, _, ok := wrappedBranch(s, v); ok && w == t && m == plainJSON {
				err = fmt.Errorf(`%w ({"%s": value} is --avro-json's form: write the value itself)`, err, branchName(t))
			}
			return nil, err
		}
		return map[string]any{typeName(t): x}, nil
	case *avro.ArraySchema:
		items, ok := v.([]any)
		if !ok {
			return nil, bad("an array")
		}
		out := make([]any, len(items))
		for i, e := range items {
			var err error
			if out[i], err = m.fromJSON(s.Items(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.MapSchema:
		entries, ok := v.(map[string]any)
		if !ok {
			return nil, bad("an object (map)")
		}
		out := make(map[string]any, len(entries))
		for k, e := range entries {
			var err error
			if out[k], err = m.fromJSON(s.Values(), e, join(path, k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *avro.EnumSchema:
		sym, ok := v.(string)
		if !ok {
			return nil, bad("a string, one of " + strings.Join(s.Symbols(), ", "))
		}
		for _, known := range s.Symbols() {
			if sym == known {
				return sym, nil
			}
		}
		return nil, fmt.Errorf("field %s: %q is not one of %s", pathName(path), sym, strings.Join(s.Symbols(), ", "))
	default:
		var raw any
		var err error
		if m == avroJSON {
			raw, err = avroIn(s, v)
		} else {
			raw, err = plainIn(s, v)
		}
		if err == nil {
			raw, err = engineValue(s, raw)
		}
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", pathName(path), err)
		}
		return raw, nil
	}
}

// soleBranch is the one branch of u that is not null, or nil when u has
// several.
func soleBranch(u *avro.UnionSchema) avro.Schema {
	var sole avro.Schema
	for _, t := range u.Types() {
		if deref(t).Type() != avro.Null {
			if sole != nil {
				return nil
			}
			sole = t
		}
	}
	return sole
}

// wrappedBranch reads v as {"<branch>": value}.
func wrappedBranch(u *avro.UnionSchema, v any) (avro.Schema, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, nil, false
	}
	for name, inner := range m {
		for _, t := range u.Types() {
			if deref(t).Type() != avro.Null && branchName(t) == name {
				return t, inner, true
			}
		}
	}
	return nil, nil, false
}

// branchOf finds the branch of u that v, as the engine decoded it, is a
// value of: nil for null.
func branchOf(u *avro.UnionSchema, v any) (avro.Schema, any, error) {
	if v == nil {
		return nil, nil, nil
	}
	// The engine reads a union into {"<type name>": value} where type
	// names carry their logical type ("long.timestamp-millis").
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for name, inner := range m {
			for _, t := range u.Types() {
				if typeName(t) == name {
					return t, inner, nil
				}
			}
		}
	}
	for _, t := range u.Types() {
		if deref(t).Type() != avro.Null && fitsBranch(t, v) {
			return t, v, nil
		}
	}
	return nil, nil, fmt.Errorf("union value %T fits none of its branches", v)
}

// branchName is a union branch's name in JSON: the full name of a named
// type, else the type's name.
func branchName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

func branchNames(u *avro.UnionSchema) string {
	var names []string
	for _, t := range u.Types() {
		if deref(t).Type() != avro.Null {
			names = append(names, branchName(t))
		}
	}
	return strings.Join(names, ", ")
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
		if err := writeJSON(&b, f.key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSON(&b, f.value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeJSON writes v as compact JSON, without the escapes of <, > and &
// that only HTML needs.
func writeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
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

// primitiveIn reads a leaf both modes spell alike: null, boolean, string,
// int, long, float and double.
func primitiveIn(s avro.Schema, v any) (any, error) {
	want := func(what string) error { return fmt.Errorf("want %s, got %s", what, jsonKind(v)) }
	switch t := deref(s).Type(); t {
	case avro.Null:
		if v != nil {
			return nil, want("null")
		}
		return nil, nil
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return nil, want("true or false")
		}
		return v, nil
	case avro.String:
		if _, ok := v.(string); !ok {
			return nil, want("a string")
		}
		return v, nil
	case avro.Int, avro.Long:
		n, ok := v.(json.Number)
		if !ok {
			return nil, want("an integer")
		}
		i, err := n.Int64()
		if err != nil || (t == avro.Int && (i < math.MinInt32 || i > math.MaxInt32)) {
			return nil, fmt.Errorf("%s is not a %s", n, t)
		}
		if t == avro.Int {
			return int32(i), nil
		}
		return i, nil
	case avro.Float, avro.Double:
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
				return nil, want(`a number, "NaN", "Infinity" or "-Infinity"`)
			}
		default:
			return nil, want("a number")
		}
		if t == avro.Float {
			return float32(f), nil
		}
		return f, nil
	}
	return nil, fmt.Errorf("type %s is not supported", deref(s).Type())
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
