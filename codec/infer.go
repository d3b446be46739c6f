package codec

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Infer derives an Avro record schema from a Go struct, so an event type can
// be registered without an .avsc file. Field names come from `avro:"name"`
// tags (the Go field name without one; "-" skips a field), record names from
// the Go type names, in namespace.
//
// Go types map to Avro as follows: string to string, bool to boolean, int32
// (and smaller ints) to int, int64 and int to long, float32 to float,
// float64 to double, []byte to bytes, [N]byte to fixed, time.Time to
// timestamp-millis, *big.Rat to decimal (bytes), a pointer to a union with
// null (default null), a slice to an array, a map with string keys to a map,
// a struct to a nested record. An `avsc` tag refines a field's type:
// `avsc:"timestamp-micros"`, `avsc:"date"`, `avsc:"uuid"`,
// `avsc:"decimal(12,2)"` (required for *big.Rat), `avsc:"enum(NEW,PAID)"`
// for a string holding enum symbols.
func Infer(v any, namespace string) (*Schema, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: infer: %T is not a struct", ErrInvalidSchema, v)
	}
	in := inferrer{namespace: namespace, named: make(map[reflect.Type]string)}
	node, err := in.record(t)
	if err != nil {
		return nil, fmt.Errorf("%w: infer %s: %v", ErrInvalidSchema, t, err)
	}
	text, err := json.Marshal(node)
	if err != nil {
		return nil, fmt.Errorf("%w: infer %s: %v", ErrInvalidSchema, t, err)
	}
	return Parse(string(text))
}

var (
	timeType = reflect.TypeOf(time.Time{})
	ratType  = reflect.TypeOf(&big.Rat{})
	decimalT = regexp.MustCompile(`^decimal\((\d+),\s*(\d+)\)$`)
	enumT    = regexp.MustCompile(`^enum\(([^)]*)\)$`)
)

type inferrer struct {
	namespace string
	named     map[reflect.Type]string // records already defined, by Go type
}

type field struct {
	Name    string `json:"name"`
	Type    any    `json:"type"`
	Default any    `json:"default,omitempty"`
	null    bool
}

// MarshalJSON writes "default": null for nullable fields, which omitempty
// cannot express.
func (f field) MarshalJSON() ([]byte, error) {
	type plain field
	b, err := json.Marshal(plain(f))
	if err != nil || !f.null {
		return b, err
	}
	return append(b[:len(b)-1], []byte(`,"default":null}`)...), nil
}

func (in *inferrer) record(t reflect.Type) (any, error) {
	if name, ok := in.named[t]; ok {
		return name, nil
	}
	if t.Name() == "" {
		return nil, fmt.Errorf("anonymous struct: give it a type name, it becomes the record name")
	}
	full := t.Name()
	if in.namespace != "" {
		full = in.namespace + "." + t.Name()
	}
	in.named[t] = full
	var fields []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name := sf.Name
		if tag, ok := sf.Tag.Lookup("avro"); ok {
			if tag == "-" {
				continue
			}
			name = tag
		}
		typ, err := in.typeOf(sf.Type, sf.Tag.Get("avsc"))
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", sf.Name, err)
		}
		fields = append(fields, field{Name: name, Type: typ, null: sf.Type.Kind() == reflect.Pointer && sf.Type != ratType})
	}
	node := map[string]any{"type": "record", "name": t.Name(), "fields": fields}
	if in.namespace != "" {
		node["namespace"] = in.namespace
	}
	return node, nil
}

func (in *inferrer) typeOf(t reflect.Type, refine string) (any, error) {
	if refine != "" {
		return in.refined(t, refine)
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "long", "logicalType": "timestamp-millis"}, nil
	case t == ratType:
		return nil, fmt.Errorf(`*big.Rat needs its precision and scale: add avsc:"decimal(P,S)"`)
	}
	switch t.Kind() {
	case reflect.String:
		return "string", nil
	case reflect.Bool:
		return "boolean", nil
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return "int", nil
	case reflect.Int, reflect.Int64:
		return "long", nil
	case reflect.Float32:
		return "float", nil
	case reflect.Float64:
		return "double", nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes", nil
		}
		items, err := in.typeOf(t.Elem(), "")
		return map[string]any{"type": "array", "items": items}, err
	case reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 {
			return nil, fmt.Errorf("%s: only byte arrays map to Avro (fixed)", t)
		}
		return in.define(t, in.fixedName(t), map[string]any{"type": "fixed", "name": in.fixedName(t), "size": t.Len()}), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s: Avro maps have string keys", t)
		}
		values, err := in.typeOf(t.Elem(), "")
		return map[string]any{"type": "map", "values": values}, err
	case reflect.Pointer:
		elem, err := in.typeOf(t.Elem(), "")
		return []any{"null", elem}, err
	case reflect.Struct:
		return in.record(t)
	}
	return nil, fmt.Errorf("%s has no Avro type", t)
}

func (in *inferrer) fixedName(t reflect.Type) string {
	if t.Name() != "" {
		return t.Name()
	}
	return "Fixed" + strconv.Itoa(t.Len())
}

// define returns node the first time a named Go type is met and its name
// after that: Avro defines a name once per schema.
func (in *inferrer) define(t reflect.Type, name string, node any) any {
	if _, ok := in.named[t]; ok {
		return name
	}
	in.named[t] = name
	return node
}

// refined maps a field with an avsc tag.
func (in *inferrer) refined(t reflect.Type, refine string) (any, error) {
	nullable := t.Kind() == reflect.Pointer && t != ratType
	base := t
	if nullable {
		base = t.Elem()
	}
	var typ any
	switch {
	case refine == "timestamp-millis" || refine == "timestamp-micros":
		if base != timeType {
			return nil, fmt.Errorf("%s wants time.Time, not %s", refine, t)
		}
		typ = map[string]any{"type": "long", "logicalType": refine}
	case refine == "date":
		if base != timeType {
			return nil, fmt.Errorf("date wants time.Time, not %s", t)
		}
		typ = map[string]any{"type": "int", "logicalType": "date"}
	case refine == "uuid":
		if base.Kind() != reflect.String {
			return nil, fmt.Errorf("uuid wants a string, not %s", t)
		}
		typ = map[string]any{"type": "string", "logicalType": "uuid"}
	case decimalT.MatchString(refine):
		if t != ratType {
			return nil, fmt.Errorf("decimal wants *big.Rat, not %s", t)
		}
		m := decimalT.FindStringSubmatch(refine)
		p, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		if p < 1 || s > p {
			return nil, fmt.Errorf("%s: want 1 <= scale <= precision", refine)
		}
		typ = map[string]any{"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s}
	case enumT.MatchString(refine):
		if base.Kind() != reflect.String {
			return nil, fmt.Errorf("enum wants a string, not %s", t)
		}
		var symbols []string
		for _, s := range strings.Split(enumT.FindStringSubmatch(refine)[1], ",") {
			symbols = append(symbols, strings.TrimSpace(s))
		}
		name := base.Name()
		if name == "" || name == "string" {
			return nil, fmt.Errorf("enum needs a named string type (type Status string): its name becomes the enum's")
		}
		typ = in.define(base, name, map[string]any{"type": "enum", "name": name, "symbols": symbols})
	default:
		return nil, fmt.Errorf("avsc tag %q: want timestamp-millis, timestamp-micros, date, uuid, decimal(P,S) or enum(A,B)", refine)
	}
	if nullable {
		return []any{"null", typ}, nil
	}
	return typ, nil
}
