package bus

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/wire"
)

// Type is a registered integration event type T: its Avro schema, the topic
// its events are published to, and how the partition key (normally the
// aggregate id) is taken from a value. Define types once, as package-level
// variables, with Event; the publisher and consumers check them when they
// start.
type Type[T any] struct {
	desc *Descriptor
}

// Descriptor is the part of a Type that does not depend on T: what a
// publisher or consumer needs to handle values of any registered type.
type Descriptor struct {
	topic  string
	schema *codec.Schema
	goType reflect.Type
	key    func(any) string
	err    error
}

// EventOption configures an event type.
type EventOption func(*eventConfig)

type eventConfig struct {
	schemaText string
	schemaFile string
	namespace  string
}

// Schema gives the event's Avro schema as text (an .avsc document). Without
// Schema or SchemaFile the schema is inferred from T (see codec.Infer).
func Schema(avsc string) EventOption { return func(c *eventConfig) { c.schemaText = avsc } }

// SchemaFile reads the event's Avro schema from an .avsc file.
func SchemaFile(path string) EventOption { return func(c *eventConfig) { c.schemaFile = path } }

// Namespace sets the Avro namespace of a schema inferred from T (default:
// none). Ignored when the schema is given.
//
// An inferred record's name is T's Go type name in this namespace, and
// that full name is the event's ce_type, by which consumers find their
// handler: renaming the Go type renames the event, and consumers that know
// the old name skip the new records. To rename a Go type and keep the
// event's name, give the schema (Schema or SchemaFile): its record name is
// the event's name whatever the Go type is called.
func Namespace(ns string) EventOption { return func(c *eventConfig) { c.namespace = ns } }

// Event defines an integration event type. key returns the partition key of
// a value: all events of one aggregate share it, so they land on one
// partition, in order. A definition error (no key function, a bad topic
// name, a schema that does not parse or does not fit T, a nil option) is
// kept and reported by Err and when a publisher or consumer starts with
// the type.
func Event[T any](topic string, key func(*T) string, opts ...EventOption) *Type[T] {
	var zero T
	d := &Descriptor{topic: topic, goType: reflect.TypeOf(zero)}
	if key != nil {
		d.key = func(v any) string { return key(v.(*T)) }
	}
	var cfg eventConfig
	for i, o := range opts {
		if o == nil {
			d.err = fmt.Errorf("bus: event type %v: Event: option %d is nil", d.goType, i+1)
			return &Type[T]{desc: d}
		}
		o(&cfg)
	}
	d.err = d.define(cfg, &zero)
	return &Type[T]{desc: d}
}

func (d *Descriptor) define(cfg eventConfig, zero any) error {
	what := fmt.Sprintf("bus: event type %v", d.goType)
	if d.goType == nil || d.goType.Kind() != reflect.Struct {
		return fmt.Errorf("%s: an event type must be a struct", what)
	}
	if err := wire.ValidTopicName(d.topic); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.key == nil {
		return fmt.Errorf("%s: no key function: pass one that returns the aggregate id", what)
	}
	var err error
	switch {
	case cfg.schemaText != "" && cfg.schemaFile != "":
		return fmt.Errorf("%s: both Schema and SchemaFile given: choose one", what)
	case cfg.schemaFile != "":
		b, rerr := os.ReadFile(cfg.schemaFile)
		if rerr != nil {
			return fmt.Errorf("%s: schema file: %w", what, rerr)
		}
		d.schema, err = codec.Parse(string(b))
	case cfg.schemaText != "":
		d.schema, err = codec.Parse(cfg.schemaText)
	default:
		d.schema, err = codec.Infer(zero, cfg.namespace)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.schema.FullName() == "" || d.schema.IsUnion() {
		return fmt.Errorf("%s: the schema must be a record: its full name is the event's ce_type", what)
	}
	// Encoding the zero value proves that T fits the schema now rather than
	// at the first publish. A zero value may hold nils the caller fills in
	// (a *big.Rat decimal): those are not a misfit.
	c, err := codec.New(nil)
	if err != nil {
		return err
	}
	enc, err := c.Encoder(1, d.schema, d.schema)
	if err == nil {
		_, err = enc.AppendEncode(nil, zero)
	}
	if err != nil && !errors.Is(err, codec.ErrNilValue) {
		return fmt.Errorf("%s: does not fit its schema %s: %w", what, d.schema.FullName(), err)
	}
	return nil
}

// Err reports a definition error, nil for a well-defined type.
func (t *Type[T]) Err() error {
	if t == nil {
		return errors.New("bus: nil event type: define it with bus.Event")
	}
	return t.desc.err
}

// Descriptor returns the type-erased description publishers and consumers use.
func (t *Type[T]) Descriptor() *Descriptor {
	if t == nil {
		return nil
	}
	return t.desc
}

// Topic returns the topic events of this type are published to.
func (d *Descriptor) Topic() string { return d.topic }

// Name returns the Avro full name of the event: its ce_type.
func (d *Descriptor) Name() string { return d.schema.FullName() }

// Schema returns the event's Avro schema: what producers write with and
// what consumers read into.
func (d *Descriptor) Schema() *codec.Schema { return d.schema }

// GoType returns T.
func (d *Descriptor) GoType() reflect.Type { return d.goType }

// Err reports a definition error.
func (d *Descriptor) Err() error { return d.err }

// Key returns the partition key of v, a *T.
func (d *Descriptor) Key(v any) string { return d.key(v) }
