package codec

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hamba/avro/v2"
)

// maxDepth bounds how deep a recursive schema may nest in one record.
const maxDepth = 256

// A shape is a writer schema compiled for validation: a tree of plain
// structs, so the walk is a switch on an int instead of interface type
// switches and method calls.
type shape struct {
	kind  shapeKind
	n     int64    // fixed size; enum symbol count
	items []*shape // record fields, union branches, array items, map values
	names []string // record field names, for errors
}

type shapeKind uint8

const (
	kNull shapeKind = iota
	kBoolean
	kVarint // int, long
	kFloat
	kDouble
	kBytes // bytes, string
	kFixed
	kEnum
	kRecord
	kUnion
	kArray
	kMap
)

// shapes caches compiled shapes by engine schema; schemas are immutable
// and few (one per writer id and union branch).
var shapes sync.Map // avro.Schema -> *shape

func shapeOf(s avro.Schema) (*shape, error) {
	if sh, ok := shapes.Load(s); ok {
		return sh.(*shape), nil
	}
	sh, err := compile(s, make(map[string]*shape))
	if err != nil {
		return nil, err
	}
	shapes.Store(s, sh)
	return sh, nil
}

// compile builds the shape of s; named records are compiled once, so a
// recursive schema becomes a cyclic shape.
func compile(s avro.Schema, named map[string]*shape) (*shape, error) {
	switch s := s.(type) {
	case *avro.RefSchema:
		return compile(s.Schema(), named)
	case *avro.NullSchema:
		return &shape{kind: kNull}, nil
	case *avro.PrimitiveSchema:
		switch s.Type() {
		case avro.Boolean:
			return &shape{kind: kBoolean}, nil
		case avro.Int, avro.Long:
			return &shape{kind: kVarint}, nil
		case avro.Float:
			return &shape{kind: kFloat}, nil
		case avro.Double:
			return &shape{kind: kDouble}, nil
		case avro.Bytes, avro.String:
			return &shape{kind: kBytes}, nil
		}
	case *avro.FixedSchema:
		return &shape{kind: kFixed, n: int64(s.Size())}, nil
	case *avro.EnumSchema:
		return &shape{kind: kEnum, n: int64(len(s.Symbols()))}, nil
	case *avro.RecordSchema:
		if sh, ok := named[s.FullName()]; ok {
			return sh, nil
		}
		sh := &shape{kind: kRecord}
		named[s.FullName()] = sh
		for _, f := range s.Fields() {
			fs, err := compile(f.Type(), named)
			if err != nil {
				return nil, err
			}
			sh.items = append(sh.items, fs)
			sh.names = append(sh.names, f.Name())
		}
		return sh, nil
	case *avro.UnionSchema:
		sh := &shape{kind: kUnion}
		for _, t := range s.Types() {
			ts, err := compile(t, named)
			if err != nil {
				return nil, err
			}
			sh.items = append(sh.items, ts)
		}
		return sh, nil
	case *avro.ArraySchema:
		is, err := compile(s.Items(), named)
		return &shape{kind: kArray, items: []*shape{is}}, err
	case *avro.MapSchema:
		vs, err := compile(s.Values(), named)
		return &shape{kind: kMap, items: []*shape{vs}}, err
	}
	return nil, fmt.Errorf("unsupported schema type %s", s.Type())
}

// dropsCollection reports whether reading writer's data as reader skips a
// writer array or map somewhere (a field the reader dropped, or a union
// branch it cannot tell): those skips need a validated body. It errs on the
// side of yes.
func dropsCollection(reader, writer avro.Schema, depth int) bool {
	reader, writer = deref(reader), deref(writer)
	if depth > maxDepth {
		return true
	}
	switch w := writer.(type) {
	case *avro.RecordSchema:
		r, ok := reader.(*avro.RecordSchema)
		if !ok {
			return holdsCollection(w, 0)
		}
		for _, wf := range w.Fields() {
			rf := readerField(r, wf)
			if rf == nil {
				if holdsCollection(wf.Type(), 0) {
					return true
				}
				continue
			}
			if dropsCollection(rf.Type(), wf.Type(), depth+1) {
				return true
			}
		}
		return false
	case *avro.ArraySchema:
		r, ok := reader.(*avro.ArraySchema)
		return !ok || dropsCollection(r.Items(), w.Items(), depth+1)
	case *avro.MapSchema:
		r, ok := reader.(*avro.MapSchema)
		return !ok || dropsCollection(r.Values(), w.Values(), depth+1)
	case *avro.UnionSchema:
		return holdsCollection(w, 0)
	}
	if ru, ok := reader.(*avro.UnionSchema); ok {
		return holdsCollection(ru, 0)
	}
	return false
}

// holdsCollection reports whether s has an array or map anywhere.
func holdsCollection(s avro.Schema, depth int) bool {
	if depth > maxDepth {
		return true
	}
	switch s := deref(s).(type) {
	case *avro.ArraySchema, *avro.MapSchema:
		return true
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if holdsCollection(f.Type(), depth+1) {
				return true
			}
		}
	case *avro.UnionSchema:
		for _, t := range s.Types() {
			if holdsCollection(t, depth+1) {
				return true
			}
		}
	}
	return false
}

// readerField finds the reader's field for a writer field, by name or by
// one of the reader field's aliases.
func readerField(r *avro.RecordSchema, wf *avro.Field) *avro.Field {
	for _, rf := range r.Fields() {
		if rf.Name() == wf.Name() || slices.Contains(rf.Aliases(), wf.Name()) {
			return rf
		}
	}
	return nil
}

// validator walks a body along its writer's shape before the engine
// decodes it, without allocating. It bounds what the bytes may claim: a
// length longer than the bytes left, a block count beyond the limits, a
// block whose byte size disagrees with its items, a union or enum index out
// of range all fail here, so the engine never allocates what a hostile
// length asks for nor loops over a count the body cannot hold.
type validator struct {
	b        []byte
	maxBytes int64
	maxArray int64
}

// validate checks that body is one well-formed value of s and nothing else.
func (c *Codec) validate(s avro.Schema, body []byte) error {
	sh, err := shapeOf(s)
	if err == nil {
		v := validator{b: body, maxBytes: int64(c.cfg.maxBytes), maxArray: int64(c.cfg.maxArray)}
		if err = v.value(sh, 0); err == nil && len(v.b) != 0 {
			err = fmt.Errorf("%d bytes left over after the record", len(v.b))
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return nil
}

func (v *validator) value(sh *shape, depth int) error {
	switch sh.kind {
	case kNull:
		return nil
	case kBoolean:
		if len(v.b) == 0 || v.b[0] > 1 {
			return fmt.Errorf("boolean: want 0 or 1")
		}
		v.b = v.b[1:]
		return nil
	case kVarint:
		_, err := v.long()
		return err
	case kFloat:
		return v.skip(4)
	case kDouble:
		return v.skip(8)
	case kBytes:
		return v.bytes()
	case kFixed:
		return v.skip(sh.n)
	case kEnum:
		i, err := v.long()
		if err == nil && (i < 0 || i >= sh.n) {
			err = fmt.Errorf("enum index %d out of range", i)
		}
		return err
	}
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch sh.kind {
	case kRecord:
		for i, f := range sh.items {
			if err := v.value(f, depth+1); err != nil {
				return fmt.Errorf("%s: %w", sh.names[i], err)
			}
		}
		return nil
	case kUnion:
		i, err := v.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(sh.items)) {
			return fmt.Errorf("union index %d out of range", i)
		}
		return v.value(sh.items[i], depth+1)
	case kArray, kMap:
		return v.blocks(sh, depth)
	}
	return fmt.Errorf("unknown shape %d", sh.kind)
}

// blocks walks the blocks of an array or map, each a count (negative: then
// a byte size follows) and that many items, until a zero count.
func (v *validator) blocks(sh *shape, depth int) error {
	total := int64(0)
	for {
		n, err := v.long()
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		size := int64(-1)
		if n < 0 {
			if n == -n { // the most negative long has no positive count
				return fmt.Errorf("block count %d", n)
			}
			n = -n
			if size, err = v.length(); err != nil {
				return err
			}
		}
		total += n
		if total > v.maxArray || total < 0 {
			return fmt.Errorf("more than %d items (codec.MaxArrayLen)", v.maxArray)
		}
		left := len(v.b)
		for ; n > 0; n-- {
			if sh.kind == kMap {
				if err := v.bytes(); err != nil {
					return err
				}
			}
			if err := v.value(sh.items[0], depth+1); err != nil {
				return err
			}
		}
		// A reader that skips the block jumps by its size: the items must
		// fill it exactly, or the skip lands somewhere else.
		if size >= 0 && int64(left-len(v.b)) != size {
			return fmt.Errorf("block says %d bytes, its items take %d", size, left-len(v.b))
		}
	}
}

func (v *validator) bytes() error {
	n, err := v.length()
	if err != nil {
		return err
	}
	if n > v.maxBytes {
		return fmt.Errorf("length %d is over %d (codec.MaxBytesLen)", n, v.maxBytes)
	}
	v.b = v.b[n:]
	return nil
}

// length reads a length that must fit in the bytes left.
func (v *validator) length() (int64, error) {
	n, err := v.long()
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(v.b)) {
		return 0, fmt.Errorf("length %d with %d bytes left", n, len(v.b))
	}
	return n, nil
}

// long reads a zig-zag varint, as Avro writes int and long.
func (v *validator) long() (int64, error) {
	var u uint64
	for i := 0; i < len(v.b) && i < 10; i++ {
		c := v.b[i]
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			v.b = v.b[i+1:]
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, fmt.Errorf("truncated or overlong varint")
}

func (v *validator) skip(n int64) error {
	if n > int64(len(v.b)) {
		return fmt.Errorf("%d bytes wanted, %d left", n, len(v.b))
	}
	v.b = v.b[n:]
	return nil
}
