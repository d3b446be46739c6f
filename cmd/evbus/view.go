package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// decoder turns records into JSON through the registry.
type decoder struct {
	codec *codec.Codec
	mode  jsonMode

	mu     sync.Mutex
	engine map[*codec.Schema]avro.Schema
}

func newDecoder(reg *schema.Registry, mode jsonMode) *decoder {
	return &decoder{codec: codec.New(reg), mode: mode, engine: make(map[*codec.Schema]avro.Schema)}
}

// decoded is a record's value read through the registry.
type decoded struct {
	json     any    // in the decoder's mode
	typeName string // ce_type, else the writer schema's full name
	schemaID int
	err      error // why the value could not be decoded
}

// decode reads rec's value. It fails only when the registry cannot be
// used; a value that does not decode is reported in decoded.err.
func (d *decoder) decode(ctx context.Context, rec *kgo.Record) (decoded, error) {
	var out decoded
	var schemaHeader []byte
	for _, h := range rec.Headers {
		switch h.Key {
		case codec.ValueSchemaIDHeader:
			schemaHeader = h.Value
		case bus.HeaderType:
			out.typeName = string(h.Value)
		}
	}
	var v any
	writer, f, err := d.codec.DecodeWriter(ctx, rec.Value, schemaHeader, nil, &v)
	out.schemaID = f.ID
	if err != nil {
		if errors.Is(err, schema.ErrUnavailable) || errors.Is(err, schema.ErrUnauthorized) || ctx.Err() != nil {
			return out, err
		}
		out.err = err
		return out, nil
	}
	if out.typeName == "" {
		out.typeName = writer.FullName()
	}
	d.mu.Lock()
	es, ok := d.engine[writer]
	if !ok {
		if es, err = engineSchema(writer); err == nil {
			d.engine[writer] = es
		}
	}
	d.mu.Unlock()
	if err != nil {
		out.err = fmt.Errorf("writer schema %d: %w", f.ID, err)
		return out, nil
	}
	if out.json, err = d.mode.toJSON(es, v, ""); err != nil {
		out.err = fmt.Errorf("value as JSON: %w", err)
	}
	return out, nil
}

// view is rec as JSON: key, value, headers, partition, offset and schema
// id; with full, its topic and timestamp first. A value that does not
// decode is shown in hex, with the reason.
func (d *decoder) view(ctx context.Context, rec *kgo.Record, full bool) (object, error) {
	dv, err := d.decode(ctx, rec)
	if err != nil {
		return nil, err
	}
	return viewOf(rec, dv, full), nil
}

func viewOf(rec *kgo.Record, dv decoded, full bool) object {
	var o object
	if full {
		o = append(o, field{"topic", rec.Topic}, field{"timestamp", rec.Timestamp.UTC().Format(time.RFC3339Nano)})
	}
	var key any
	if rec.Key != nil {
		key = string(rec.Key)
	}
	headers := make(object, 0, len(rec.Headers))
	for _, h := range rec.Headers {
		headers = append(headers, field{h.Key, string(h.Value)})
	}
	o = append(o, field{"key", key}, field{"value", dv.json})
	if dv.err != nil {
		o = append(o, field{"value_hex", hex.EncodeToString(rec.Value)}, field{"decode_error", dv.err.Error()})
	}
	var id any
	if dv.schemaID > 0 {
		id = dv.schemaID
	}
	return append(o, field{"headers", headers}, field{"partition", rec.Partition}, field{"offset", rec.Offset}, field{"schema_id", id})
}
