package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"
)

// JSONOptions says how MarshalJSON and UnmarshalJSON spell Avro values in
// JSON. Both modes write records as objects in field order, arrays, maps
// as objects, enums as their symbol, strings, booleans and numbers as
// themselves (NaN and the infinities as the strings "NaN", "Infinity" and
// "-Infinity"). They differ in unions, bytes and fixed, and logical types.
//
// By default values are spelled as people write them: a union of null and
// one type is null or the value itself, other unions {"<branch>": value};
// a decimal is a string with exactly its scale's digits after the point
// ("49.99"; read from a string or a JSON number by its digits, never
// through a float, and refused when it does not fit); bytes and fixed are
// base64; timestamps are RFC 3339 in UTC ("2026-01-02T15:04:05.123Z", read
// with any offset, refused when finer than the unit); local timestamps the
// same without an offset; a date "2026-01-02"; a time of day
// "15:04:05.123"; a uuid its 8-4-4-4-12 hex string; a duration
// {"months": 1, "days": 2, "milliseconds": 3}.
type JSONOptions struct {
	// AvroJSON selects the Avro specification's JSON encoding, as
	// Confluent's console tools read and print it: every union value but
	// null is {"<branch>": value} (a named type's full name); bytes and
	// fixed, decimals and durations too, are strings whose code points 0
	// to 255 are the bytes; logical types are their underlying numbers (a
	// date the days since 1970-01-01, a timestamp-millis the milliseconds
	// since the epoch).
	AvroJSON bool
}

// MarshalJSON returns v, a value of schema s as Decode stores it in an
// *any (with a nil reader schema), as JSON spelled as o says.
//
// A value that has no JSON spelling in o's mode (a timestamp outside the
// years 0000 to 9999, a time of day past midnight) is an error naming the
// field; the AvroJSON mode spells every value.
func MarshalJSON(s *Schema, v any, o JSONOptions) ([]byte, error) {
	if s == nil {
		return nil, errors.New("codec: MarshalJSON: nil schema")
	}
	w := newJSONWriter()
	if err := o.toJSON(w, s.avro, v, ""); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// UnmarshalJSON reads data, one JSON value of schema s spelled as o says,
// into the value an Encoder of s encodes, or says which field does not fit
// and why. A missing record field takes the schema's default.
func UnmarshalJSON(s *Schema, data []byte, o JSONOptions) (any, error) {
	if s == nil {
		return nil, errors.New("codec: UnmarshalJSON: nil schema")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return o.fromJSON(s.avro, v, "")
}

// toJSON writes v, which the engine decoded with s, to w.
func (o JSONOptions) toJSON(w *jsonWriter, s avro.Schema, v any, path string) error {
	switch s := deref(s).(type) {
	case *avro.RecordSchema:
		return o.recordToJSON(w, s, v, path)
	case *avro.UnionSchema:
		return o.unionToJSON(w, s, v, path)
	case *avro.ArraySchema:
		return o.arrayToJSON(w, s, v, path)
	case *avro.MapSchema:
		return o.mapToJSON(w, s, v, path)
	case *avro.EnumSchema:
		return w.value(v)
	default:
		return o.leafToJSON(w, s, v, path)
	}
}

// fromJSON turns v, a JSON value decoded with UseNumber, into the Go value
// the engine encodes with s.
func (o JSONOptions) fromJSON(s avro.Schema, v any, path string) (any, error) {
	switch s := deref(s).(type) {
	case *avro.RecordSchema:
		return o.recordFromJSON(s, v, path)
	case *avro.UnionSchema:
		return o.unionFromJSON(s, v, path)
	case *avro.ArraySchema:
		return o.arrayFromJSON(s, v, path)
	case *avro.MapSchema:
		return o.mapFromJSON(s, v, path)
	case *avro.EnumSchema:
		return enumFromJSON(s, v, path)
	default:
		return o.leafFromJSON(s, v, path)
	}
}

// leafToJSON writes v, a value of a primitive or logical type s as the
// engine decoded it.
func (o JSONOptions) leafToJSON(w *jsonWriter, s avro.Schema, v any, path string) error {
	raw, err := avroValue(s, v)
	if err == nil {
		if o.AvroJSON {
			raw = avroOut(raw)
		} else {
			raw, err = plainOut(s, raw)
		}
	}
	if err != nil {
		return fieldError(path, err)
	}
	return w.value(raw)
}

// leafFromJSON reads v as a value of a primitive or logical type s.
func (o JSONOptions) leafFromJSON(s avro.Schema, v any, path string) (any, error) {
	var raw any
	var err error
	if o.AvroJSON {
		raw, err = avroIn(s, v)
	} else {
		raw, err = plainIn(s, v)
	}
	if err == nil {
		raw, err = engineValue(s, raw)
	}
	if err != nil {
		return nil, fieldError(path, err)
	}
	return raw, nil
}

// fieldError says err is about the field at path.
func fieldError(path string, err error) error {
	return fmt.Errorf("field %s: %w", pathName(path), err)
}

// wantError says what the field at path wants and what v is instead.
func wantError(path, want string, v any) error {
	return fmt.Errorf("field %s: want %s, got %s", pathName(path), want, jsonKind(v))
}

func pathName(path string) string {
	if path == "" {
		return "(the record)"
	}
	return path
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// jsonKind names what v, a JSON value decoded with UseNumber, is.
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

// jsonWriter writes compact JSON, without the escapes of <, > and & that
// only HTML needs.
type jsonWriter struct {
	bytes.Buffer
	enc *json.Encoder
}

func newJSONWriter() *jsonWriter {
	w := new(jsonWriter)
	w.enc = json.NewEncoder(&w.Buffer)
	w.enc.SetEscapeHTML(false)
	return w
}

// value writes v as encoding/json does.
func (w *jsonWriter) value(v any) error {
	if err := w.enc.Encode(v); err != nil {
		return err
	}
	w.Truncate(w.Len() - 1) // Encode's newline
	return nil
}

// key writes an object member's key and colon, after a comma unless it is
// the first.
func (w *jsonWriter) key(k string, first bool) {
	if !first {
		w.WriteByte(',')
	}
	_ = w.value(k) // a string always encodes
	w.WriteByte(':')
}
