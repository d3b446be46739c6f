package codec

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// arrayToJSON writes an array, which the engine decodes into a slice.
func (o JSONOptions) arrayToJSON(w *jsonWriter, s *avro.ArraySchema, v any, path string) error {
	items := reflect.ValueOf(v)
	if items.Kind() != reflect.Slice {
		return fmt.Errorf("field %s: array decoded as %T", pathName(path), v)
	}
	w.WriteByte('[')
	for i := range items.Len() {
		if i > 0 {
			w.WriteByte(',')
		}
		if err := o.toJSON(w, s.Items(), items.Index(i).Interface(), index(path, i)); err != nil {
			return err
		}
	}
	w.WriteByte(']')
	return nil
}

func (o JSONOptions) arrayFromJSON(s *avro.ArraySchema, v any, path string) (any, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, wantError(path, "an array", v)
	}
	out := make([]any, len(items))
	for i, e := range items {
		var err error
		if out[i], err = o.fromJSON(s.Items(), e, index(path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mapToJSON writes a map as an object, its keys sorted.
func (o JSONOptions) mapToJSON(w *jsonWriter, s *avro.MapSchema, v any, path string) error {
	entries, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("field %s: map decoded as %T", pathName(path), v)
	}
	w.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(entries)) {
		w.key(k, i == 0)
		if err := o.toJSON(w, s.Values(), entries[k], join(path, k)); err != nil {
			return err
		}
	}
	w.WriteByte('}')
	return nil
}

func (o JSONOptions) mapFromJSON(s *avro.MapSchema, v any, path string) (any, error) {
	entries, ok := v.(map[string]any)
	if !ok {
		return nil, wantError(path, "an object (map)", v)
	}
	out := make(map[string]any, len(entries))
	for k, e := range entries {
		var err error
		if out[k], err = o.fromJSON(s.Values(), e, join(path, k)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// enumFromJSON reads one of s's symbols. Both modes spell an enum alike.
func enumFromJSON(s *avro.EnumSchema, v any, path string) (any, error) {
	symbols := strings.Join(s.Symbols(), ", ")
	sym, ok := v.(string)
	if !ok {
		return nil, wantError(path, "a string, one of "+symbols, v)
	}
	if !slices.Contains(s.Symbols(), sym) {
		return nil, fmt.Errorf("field %s: %q is not one of %s", pathName(path), sym, symbols)
	}
	return sym, nil
}
