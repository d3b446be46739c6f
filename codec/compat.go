package codec

import (
	"fmt"
	"slices"

	"github.com/hamba/avro/v2"
)

// Compatible reports whether data written with writer can be read with
// reader under the Avro schema resolution rules. The error is an
// *IncompatibleError that names the first field that breaks the rules.
//
// The registry compatibility levels are built on it: BACKWARD checks
// Compatible(new, old), FORWARD checks Compatible(old, new), FULL both.
func Compatible(reader, writer *Schema) error {
	if reader == nil || writer == nil {
		return fmt.Errorf("%w: nil schema", ErrInvalidSchema)
	}
	// A checker per call: the engine caches verdicts by canonical form,
	// which leaves out defaults, so a shared cache would mix up schemas that
	// differ only in a default.
	compat := avro.NewSchemaCompatibility()
	if err := compat.Compatible(reader.avro, writer.avro); err != nil {
		path, reason := locate(compat, reader.avro, writer.avro, "")
		return &IncompatibleError{Path: path, Reason: reason}
	}
	if path, reason, bad := logicalMismatch(reader.avro, writer.avro, "", 0); bad {
		return &IncompatibleError{Path: path, Reason: reason}
	}
	return nil
}

// logicalMismatch finds where reader and writer, compatible in their
// underlying types, disagree on a logical type in a way that changes values:
// decimals match only with the same precision and scale (the Avro spec), and
// a timestamp or time read in another unit is off by a factor of 1000. The
// engine resolves only the underlying types, so this walk adds the rest.
func logicalMismatch(reader, writer avro.Schema, path string, depth int) (string, string, bool) {
	reader, writer = deref(reader), deref(writer)
	if depth > maxDepth {
		return "", "", false
	}
	if wu, ok := writer.(*avro.UnionSchema); ok {
		for _, w := range wu.Types() {
			if p, r, bad := logicalMismatch(reader, w, path, depth+1); bad {
				return p, r, true
			}
		}
		return "", "", false
	}
	if ru, ok := reader.(*avro.UnionSchema); ok {
		// The branch the engine picks is the first of the writer's kind.
		for _, r := range ru.Types() {
			if deref(r).Type() == writer.Type() {
				return logicalMismatch(r, writer, path, depth+1)
			}
		}
		return "", "", false
	}
	switch r := reader.(type) {
	case *avro.RecordSchema:
		if w, ok := writer.(*avro.RecordSchema); ok {
			for _, rf := range r.Fields() {
				if wf := writerField(w, rf); wf != nil {
					if p, rs, bad := logicalMismatch(rf.Type(), wf.Type(), join(path, rf.Name()), depth+1); bad {
						return p, rs, true
					}
				}
			}
		}
		return "", "", false
	case *avro.ArraySchema:
		if w, ok := writer.(*avro.ArraySchema); ok {
			return logicalMismatch(r.Items(), w.Items(), path+"[]", depth+1)
		}
		return "", "", false
	case *avro.MapSchema:
		if w, ok := writer.(*avro.MapSchema); ok {
			return logicalMismatch(r.Values(), w.Values(), path+"{}", depth+1)
		}
		return "", "", false
	}
	rl, wl := logicalOf(reader), logicalOf(writer)
	if rl == nil || wl == nil {
		return "", "", false
	}
	rd, rok := rl.(*avro.DecimalLogicalSchema)
	wd, wok := wl.(*avro.DecimalLogicalSchema)
	switch {
	case rok && wok && (rd.Precision() != wd.Precision() || rd.Scale() != wd.Scale()):
		return path, fmt.Sprintf("reader decimal(%d,%d) cannot read writer decimal(%d,%d): decimals match only with the same precision and scale",
			rd.Precision(), rd.Scale(), wd.Precision(), wd.Scale()), true
	case unitOf(rl.Type()) != "" && unitOf(wl.Type()) != "" && rl.Type() != wl.Type():
		return path, fmt.Sprintf("reader %s cannot read writer %s: the values would change meaning (unit or time zone)", rl.Type(), wl.Type()), true
	}
	return "", "", false
}

func logicalOf(s avro.Schema) avro.LogicalSchema {
	if l, ok := s.(avro.LogicalTypeSchema); ok {
		return l.Logical()
	}
	return nil
}

// unitOf groups the logical types that count time in a unit: a reader of
// one unit cannot read another of the same group.
func unitOf(t avro.LogicalType) string {
	switch t {
	case avro.TimestampMillis, avro.TimestampMicros, avro.LocalTimestampMillis, avro.LocalTimestampMicros, avro.TimeMillis, avro.TimeMicros:
		return string(t)
	}
	return ""
}

// locate walks reader and writer side by side to the deepest place where
// they stop being compatible, so the error names a field and not just a type.
func locate(compat *avro.SchemaCompatibility, reader, writer avro.Schema, path string) (string, string) {
	reader, writer = deref(reader), deref(writer)
	if wu, ok := writer.(*avro.UnionSchema); ok {
		for _, w := range wu.Types() {
			if compat.Compatible(reader, w) != nil {
				return locate(compat, reader, w, path)
			}
		}
	}
	switch r := reader.(type) {
	case *avro.RecordSchema:
		w, ok := writer.(*avro.RecordSchema)
		if !ok {
			break
		}
		for _, rf := range r.Fields() {
			wf := writerField(w, rf)
			fieldPath := join(path, rf.Name())
			if wf == nil {
				if rf.HasDefault() {
					continue
				}
				return fieldPath, fmt.Sprintf("the reader (%s) expects it, the writer (%s) does not have it, and it has no default", r.FullName(), w.FullName())
			}
			if compat.Compatible(rf.Type(), wf.Type()) != nil {
				return locate(compat, rf.Type(), wf.Type(), fieldPath)
			}
		}
	case *avro.ArraySchema:
		if w, ok := writer.(*avro.ArraySchema); ok {
			return locate(compat, r.Items(), w.Items(), path+"[]")
		}
	case *avro.MapSchema:
		if w, ok := writer.(*avro.MapSchema); ok {
			return locate(compat, r.Values(), w.Values(), path+"{}")
		}
	}
	err := compat.Compatible(reader, writer)
	if err == nil {
		// Compatible here but not above: the records' names differ.
		return path, fmt.Sprintf("reader %s cannot read writer %s", describe(reader), describe(writer))
	}
	return path, fmt.Sprintf("reader %s cannot read writer %s: %v", describe(reader), describe(writer), err)
}

func writerField(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, wf := range w.Fields() {
		if wf.Name() == rf.Name() || slices.Contains(rf.Aliases(), wf.Name()) {
			return wf
		}
	}
	return nil
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func describe(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return fmt.Sprintf("%s %s", s.Type(), n.FullName())
	}
	return string(s.Type())
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
