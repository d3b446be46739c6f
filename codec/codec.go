package codec

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hamba/avro/v2"
)

// Resolver gives a decoder the writer schemas records name. The schema
// package's Registry is one. A schema the registry does not know must be
// reported with an error that wraps ErrUnknownSchema; any other error (the
// registry is unreachable) is passed to the caller as it is, since retrying
// may succeed.
type Resolver interface {
	SchemaByID(ctx context.Context, id int) (*Schema, error)
	SchemaByGUID(ctx context.Context, guid string) (id int, s *Schema, err error)
}

// Codec encodes and decodes framed Avro. It caches writer schemas by id and
// resolution plans by (writer, reader), and is safe for concurrent use.
type Codec struct {
	resolver Resolver
	cfg      config
	api      avro.API  // for encoding
	writers  sync.Pool // *avro.Writer
	classes  []sizeClass

	mu     sync.Mutex // serialises cache writers; readers load the maps lock-free
	byID   atomic.Pointer[map[int]*Schema]
	byGUID atomic.Pointer[map[[16]byte]guidEntry]
	plans  atomic.Pointer[map[planKey]plan]
}

// A sizeClass decodes records of up to limit bytes with engine limits no
// larger than the record: the engine allocates a length before it checks
// that the bytes are there, so a limit sized to the record keeps a short
// hostile record from making it allocate megabytes.
type sizeClass struct {
	limit   int
	readers sync.Pool // *avro.Reader with this class's limits
}

// minClass is the smallest size class: records up to 256 bytes.
const minClass = 256

// plan is how a body is read: the engine schema that reads the writer's
// bytes into the reader's shape, and whether the body must be validated
// first (the engine's skip of a writer collection the reader dropped loops
// over hostile counts without stopping).
type plan struct {
	schema   avro.Schema
	validate bool
}

type guidEntry struct {
	id     int
	schema *Schema
}

// planKey names a resolution: what writer (and union branch of it) is read
// with what reader. Schemas are compared by identity: the writer comes from
// the cache, the reader is parsed once per registered type.
type planKey struct {
	writer *Schema
	branch int
	reader *Schema
}

// maxPlans bounds the plan cache for callers that parse reader schemas anew
// on every call; past it the cache starts over.
const maxPlans = 4096

// New returns a Codec that looks writer schemas up through r. r may be nil
// for a Codec that only encodes. It fails only for an option: nil, or out
// of its range.
func New(r Resolver, opts ...Option) (*Codec, error) {
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("codec: New: option %d is nil", i+1)
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Codec{
		resolver: r,
		cfg:      cfg,
		api: avro.Config{
			MaxByteSliceSize:  cfg.maxBytes,
			MaxSliceAllocSize: cfg.maxArray,
		}.Freeze(),
	}
	c.writers.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(c.api)) }
	for limit := minClass; ; limit *= 2 {
		api := avro.Config{
			MaxByteSliceSize:  min(limit, cfg.maxBytes),
			MaxSliceAllocSize: min(limit, cfg.maxArray),
		}.Freeze()
		c.classes = append(c.classes, sizeClass{limit: limit})
		c.classes[len(c.classes)-1].readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(api)) }
		if limit >= cfg.maxBytes {
			break
		}
	}
	c.byID.Store(&map[int]*Schema{})
	c.byGUID.Store(&map[[16]byte]guidEntry{})
	c.plans.Store(&map[planKey]plan{})
	return c, nil
}

// Encoder frames values of one event type under one registered schema id.
type Encoder struct {
	c      *Codec
	prefix []byte // Confluent prefix, then the union branch index if any
	schema avro.Schema
	id     int
}

// Encoder returns an Encoder for values of the event type value describes,
// framed with schema id id. registered is the schema id names, and the bytes
// always follow it: usually it is value itself (or nil for value); with the
// registry's use-latest mode it is the subject's latest version; when it is
// a union (one schema describing a whole topic) the value is encoded with
// the branch named like value, after the branch index, as Avro's union
// encoding requires.
func (c *Codec) Encoder(id int, registered, value *Schema) (*Encoder, error) {
	if value == nil {
		return nil, fmt.Errorf("%w: nil value schema", ErrInvalidSchema)
	}
	if id <= 0 {
		return nil, fmt.Errorf("codec: schema id %d: must be positive", id)
	}
	if registered == nil {
		registered = value
	}
	prefix, schema := AppendPrefix(nil, id), registered.avro
	if registered.IsUnion() && !value.IsUnion() {
		i := registered.branch(value.FullName())
		if i < 0 {
			return nil, fmt.Errorf("%w: union schema %d has no branch %s", ErrIncompatible, id, value.FullName())
		}
		prefix = binary.AppendVarint(prefix, int64(i))
		schema = schema.(*avro.UnionSchema).Types()[i]
	}
	return &Encoder{c: c, prefix: prefix, schema: schema, id: id}, nil
}

// ID returns the schema id the Encoder frames with.
func (e *Encoder) ID() int { return e.id }

// AppendEncode appends the framed encoding of v to dst and returns the
// extended slice. It allocates nothing when dst has room.
func (e *Encoder) AppendEncode(dst []byte, v any) (out []byte, err error) {
	if isNil(v) {
		return dst, fmt.Errorf("%w: %w", ErrEncode, ErrNilValue)
	}
	w := e.c.writers.Get().(*avro.Writer)
	defer func() {
		if p := recover(); p != nil {
			out, err = dst, encodePanic(v, p)
		}
		w.Reset(nil)
		w.Error = nil
		e.c.writers.Put(w)
	}()
	w.WriteVal(e.schema, v)
	if w.Error != nil {
		return dst, fmt.Errorf("%w: %T: %v", ErrEncode, v, w.Error)
	}
	return append(append(dst, e.prefix...), w.Buffer()...), nil
}

// encodePanic turns a panic of the engine into an error. The engine panics
// on a nil pointer where the schema wants a value (a nil *big.Rat for a
// decimal); anything else is reported as it is.
func encodePanic(v any, p any) error {
	if re, ok := p.(runtime.Error); ok && strings.Contains(re.Error(), "nil pointer") {
		return fmt.Errorf("%w: %T: %w: a field is nil where its schema wants a value", ErrEncode, v, ErrNilValue)
	}
	return fmt.Errorf("%w: %T: %v", ErrEncode, v, p)
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Decode decodes a record value into v, a pointer to a Go value of the
// reader schema's shape. schemaHeader is the value of the schema id header
// ("__value_schema_id" for values) or nil. reader may be nil to read the
// value as written (into *any, a map or a struct of the writer's shape).
//
// When the writer schema is a union (one schema for a whole topic) and the
// reader is not, the branch the record carries is read with reader.
func (c *Codec) Decode(ctx context.Context, value, schemaHeader []byte, reader *Schema, v any) error {
	_, err := c.decode(ctx, value, schemaHeader, reader, v)
	return err
}

// DecodeWriter is Decode that also returns the writer schema and frame, for
// tools that show what they read.
func (c *Codec) DecodeWriter(ctx context.Context, value, schemaHeader []byte, reader *Schema, v any) (*Schema, Frame, error) {
	f, err := c.decode(ctx, value, schemaHeader, reader, v)
	return f.writer, f.Frame, err
}

type decoded struct {
	Frame
	writer *Schema
}

func (c *Codec) decode(ctx context.Context, value, schemaHeader []byte, reader *Schema, v any) (decoded, error) {
	if c.cfg.from&FromHeader == 0 {
		schemaHeader = nil
	} else if c.cfg.from&FromPrefix == 0 && schemaHeader == nil {
		return decoded{}, &DecodeError{Err: fmt.Errorf("%w: no %s header and reading the prefix is off", ErrUnknownSchema, ValueSchemaIDHeader)}
	}
	f, err := ParseFrame(value, schemaHeader)
	if err != nil {
		return decoded{}, &DecodeError{Err: err}
	}
	d := decoded{Frame: f}
	fail := func(err error) (decoded, error) {
		return d, &DecodeError{SchemaID: f.ID, GUID: f.GUIDString(), Err: err}
	}
	if isNil(v) {
		return fail(fmt.Errorf("%w: decode target is nil", ErrUndecodable))
	}
	d.writer, d.ID, err = c.lookup(ctx, f)
	if err != nil {
		return fail(err)
	}
	body, branch := f.Body, -1
	if d.writer.IsUnion() && reader != nil && !reader.IsUnion() {
		i, n := binary.Varint(body)
		if n <= 0 || i < 0 || int(i) >= len(d.writer.Branches()) {
			return fail(fmt.Errorf("%w: union branch index is not valid for schema %d", ErrUndecodable, d.ID))
		}
		body, branch = body[n:], int(i)
	}
	p, err := c.plan(d.writer, branch, reader)
	if err != nil {
		return fail(err)
	}
	if p.validate {
		written := d.writer.avro
		if branch >= 0 {
			written = written.(*avro.UnionSchema).Types()[branch]
		}
		if err := c.validate(written, body); err != nil {
			return fail(err)
		}
	}
	if err := c.read(p.schema, body, v); err != nil {
		return fail(err)
	}
	return d, nil
}

// read decodes body with s into v, with the engine's limits of the
// body's size class.
func (c *Codec) read(s avro.Schema, body []byte, v any) (err error) {
	class := &c.classes[len(c.classes)-1]
	for i := range c.classes {
		if len(body) <= c.classes[i].limit {
			class = &c.classes[i]
			break
		}
	}
	r := class.readers.Get().(*avro.Reader)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrUndecodable, p)
		}
		r.Reset(nil)
		r.Error = nil
		class.readers.Put(r)
	}()
	r.Reset(body)
	r.ReadVal(s, v)
	if r.Error != nil { // io.EOF too: the body ended inside the record
		return fmt.Errorf("%w: %v", ErrUndecodable, r.Error)
	}
	// Bytes left over mean the record was not written with this schema.
	if r.Peek(); r.Error == nil {
		return fmt.Errorf("%w: bytes left over after the record", ErrUndecodable)
	}
	return nil
}

// lookup returns the writer schema a frame names, from the cache or the
// resolver, and its id.
func (c *Codec) lookup(ctx context.Context, f Frame) (*Schema, int, error) {
	if f.HasGUID() {
		if e, ok := (*c.byGUID.Load())[f.GUID]; ok {
			return e.schema, e.id, nil
		}
	} else if s, ok := (*c.byID.Load())[f.ID]; ok {
		return s, f.ID, nil
	}
	if c.resolver == nil {
		return nil, 0, fmt.Errorf("%w: no resolver to look it up", ErrUnknownSchema)
	}
	if f.HasGUID() {
		id, s, err := c.resolver.SchemaByGUID(ctx, f.GUIDString())
		if err != nil {
			return nil, 0, err
		}
		c.mu.Lock()
		store(&c.byGUID, f.GUID, guidEntry{id: id, schema: s})
		c.mu.Unlock()
		return s, id, nil
	}
	if f.ID <= 0 {
		return nil, 0, fmt.Errorf("%w: %d", ErrUnknownSchema, f.ID)
	}
	s, err := c.resolver.SchemaByID(ctx, f.ID)
	if err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	store(&c.byID, f.ID, s)
	c.mu.Unlock()
	return s, f.ID, nil
}

// plan returns how to read what writer (or its union branch) wrote into
// the reader's shape.
func (c *Codec) plan(writer *Schema, branch int, reader *Schema) (plan, error) {
	if reader == nil || reader == writer {
		return plan{schema: writer.avro}, nil
	}
	k := planKey{writer: writer, branch: branch, reader: reader}
	if p, ok := (*c.plans.Load())[k]; ok {
		return p, nil
	}
	w := writer.avro
	if branch >= 0 {
		w = w.(*avro.UnionSchema).Types()[branch]
	}
	var p plan
	if w.Fingerprint() == reader.avro.Fingerprint() && w.Type() == reader.avro.Type() {
		p.schema = reader.avro
	} else {
		if err := Compatible(reader, &Schema{avro: w}); err != nil {
			return plan{}, err
		}
		var err error
		if p.schema, err = avro.NewSchemaCompatibility().Resolve(reader.avro, w); err != nil {
			return plan{}, &IncompatibleError{Reason: err.Error()}
		}
		p.validate = dropsCollection(reader.avro, w, 0)
	}
	c.mu.Lock()
	if len(*c.plans.Load()) >= maxPlans {
		c.plans.Store(&map[planKey]plan{})
	}
	store(&c.plans, k, p)
	c.mu.Unlock()
	return p, nil
}

// store adds k=v to a copy-on-write map; the caller holds c.mu.
func store[K comparable, V any](m *atomic.Pointer[map[K]V], k K, v V) {
	next := maps.Clone(*m.Load())
	next[k] = v
	m.Store(&next)
}
