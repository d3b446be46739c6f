package codec

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// recordToJSON writes a record, which the engine decodes into a map, as
// an object in field order.
func (o JSONOptions) recordToJSON(w *jsonWriter, s *avro.RecordSchema, v any, path string) error {
	fields, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("field %s: record %s decoded as %T", pathName(path), s.FullName(), v)
	}
	w.WriteByte('{')
	for i, f := range s.Fields() {
		w.key(f.Name(), i == 0)
		if err := o.toJSON(w, f.Type(), fields[f.Name()], join(path, f.Name())); err != nil {
			return err
		}
	}
	w.WriteByte('}')
	return nil
}

// recordFromJSON reads an object with a value for each field of s, or its
// default, and no other key.
func (o JSONOptions) recordFromJSON(s *avro.RecordSchema, v any, path string) (any, error) {
	fields, ok := v.(map[string]any)
	if !ok {
		return nil, wantError(path, "an object (record "+s.FullName()+")", v)
	}
	out := make(map[string]any, len(s.Fields()))
	for _, f := range s.Fields() {
		x, err := o.fieldFromJSON(f, fields, join(path, f.Name()))
		if err != nil {
			return nil, err
		}
		out[f.Name()] = x
	}
	for k := range fields {
		if !hasField(s, k) {
			return nil, fmt.Errorf("field %s: not in record %s", join(path, k), s.FullName())
		}
	}
	return out, nil
}

// fieldFromJSON reads field f of the object fields, or takes its default.
func (o JSONOptions) fieldFromJSON(f *avro.Field, fields map[string]any, path string) (any, error) {
	if v, ok := fields[f.Name()]; ok {
		return o.fromJSON(f.Type(), v, path)
	}
	if f.HasDefault() {
		return engineDefault(f.Type(), f.Default(), path)
	}
	return nil, fmt.Errorf("field %s: missing, and the schema gives no default", path)
}

func hasField(s *avro.RecordSchema, name string) bool {
	for _, f := range s.Fields() {
		if f.Name() == name {
			return true
		}
	}
	return false
}
