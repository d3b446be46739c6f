package codec

import (
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// The engine reads a union into {"<type name>": value}, its type names
// carrying their logical type ("long.timestamp-millis"), and encodes one
// from the same; null is nil, and an empty map when encoded.

// unionToJSON writes a union value: null, the value itself for a union of
// null and one type in the default mode, else {"<branch>": value}.
func (o JSONOptions) unionToJSON(w *jsonWriter, s *avro.UnionSchema, v any, path string) error {
	t, inner, err := branchOf(s, v)
	if err != nil {
		return fieldError(path, err)
	}
	if t == nil {
		w.WriteString("null")
		return nil
	}
	if !o.AvroJSON && soleBranch(s) != nil {
		return o.toJSON(w, t, inner, path)
	}
	w.WriteByte('{')
	w.key(branchName(t), true)
	if err := o.toJSON(w, t, inner, path); err != nil {
		return err
	}
	w.WriteByte('}')
	return nil
}

func (o JSONOptions) unionFromJSON(s *avro.UnionSchema, v any, path string) (any, error) {
	if v == nil {
		if _, i := s.Types().Get(string(avro.Null)); i < 0 {
			return nil, wantError(path, "a value: the union has no null", v)
		}
		return map[string]any{}, nil
	}
	t, inner, err := o.branchFromJSON(s, v, path)
	if err != nil {
		return nil, err
	}
	x, err := o.fromJSON(t, inner, path)
	if err != nil {
		return nil, o.wrappedHint(s, t, v, err)
	}
	return map[string]any{typeName(t): x}, nil
}

// branchFromJSON finds the branch of s that v spells and the branch's
// value: v itself for a union of null and one type in the default mode,
// else v is {"<branch>": value}.
func (o JSONOptions) branchFromJSON(s *avro.UnionSchema, v any, path string) (avro.Schema, any, error) {
	if t := soleBranch(s); t != nil && !o.AvroJSON {
		return t, v, nil
	}
	if t, inner, ok := wrappedBranch(s, v); ok {
		return t, inner, nil
	}
	return nil, nil, wantError(path, `null or {"<branch>": value} with a branch of the union: `+branchNames(s), v)
}

// wrappedHint adds to err, the failure of v as the value of branch t of
// s, that v is in the AvroJSON mode's form, when it is.
func (o JSONOptions) wrappedHint(s *avro.UnionSchema, t avro.Schema, v any, err error) error {
	if w, _, ok := wrappedBranch(s, v); ok && w == t && !o.AvroJSON {
		return fmt.Errorf(`%w ({"%s": value} is the Avro JSON form: write the value itself)`, err, branchName(t))
	}
	return err
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
		return logicalType(t) == avro.Decimal
	case time.Time:
		switch logicalType(t) {
		case avro.Date, avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros:
			return true
		}
	case time.Duration:
		return logicalType(t) == avro.TimeMillis || logicalType(t) == avro.TimeMicros
	}
	return false
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

// typeName is how the engine names a union branch in the maps it decodes
// and encodes: an unnamed type's logical type included.
func typeName(s avro.Schema) string {
	name := branchName(s)
	if _, named := deref(s).(avro.NamedSchema); !named {
		if l := logicalType(s); l != "" {
			name += "." + string(l)
		}
	}
	return name
}
