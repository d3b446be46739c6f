package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// decoder turns records into JSON through the registry.
type decoder struct {
	codec *codec.Codec
	mode  jsonMode
}

func newDecoder(reg *schema.Registry, mode jsonMode) (*decoder, error) {
	c, err := codec.New(reg)
	if err != nil {
		return nil, err
	}
	return &decoder{codec: c, mode: mode}, nil
}

// decoded is a record's value read through the registry.
type decoded struct {
	json      any    // in the decoder's mode
	typeName  string // ce_type, else the writer schema's full name
	schemaID  int
	tombstone bool  // the record has no value at all
	err       error // why the value could not be decoded
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
		case wire.HeaderType:
			out.typeName = string(h.Value)
		}
	}
	if rec.Value == nil {
		out.tombstone = true
		return out, nil
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
	js, err := codec.MarshalJSON(writer, v, codec.JSONOptions(d.mode))
	if err != nil {
		out.err = fmt.Errorf("value as JSON: %w", err)
		return out, nil
	}
	out.json = json.RawMessage(js)
	return out, nil
}

// view is rec as JSON: key, value, headers, partition, offset and schema
// id; with full, its topic and timestamp first. A tombstone (no value at
// all) has "value": null and "tombstone": true; a value that does not
// decode, an empty one too, is shown in hex, with the reason. The key and
// header values are strings when they are text, else {"base64": "..."},
// and null when they are null.
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
	headers := make(object, 0, len(rec.Headers))
	for _, h := range rec.Headers {
		headers = append(headers, field{h.Key, bytesView(h.Value)})
	}
	o = append(o, field{"key", bytesView(rec.Key)}, field{"value", dv.json})
	if dv.tombstone {
		o = append(o, field{"tombstone", true})
	}
	if dv.err != nil {
		o = append(o, field{"value_hex", hex.EncodeToString(rec.Value)}, field{"decode_error", dv.err.Error()})
	}
	var id any
	if dv.schemaID > 0 {
		id = dv.schemaID
	}
	return append(o, field{"headers", headers}, field{"partition", rec.Partition}, field{"offset", rec.Offset}, field{"schema_id", id})
}

// bytesView is b as JSON: null when nil, a string when it is text (UTF-8
// without control characters but tab and line ends), else
// {"base64": "..."}, so that no byte is lost or replaced.
func bytesView(b []byte) any {
	if b == nil {
		return nil
	}
	if isText(b) {
		return string(b)
	}
	return object{{"base64", base64.StdEncoding.EncodeToString(b)}}
}

// bytesText is b for a line of text: itself quoted when it is text, else
// base64: and its base64.
func bytesText(b []byte) string {
	if isText(b) {
		return strconv.Quote(string(b))
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}

func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}

// object is a JSON object that keeps its keys in order.
type object []field

type field struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := writeJSON(&b, f.key); err != nil {
			return nil, err
		}
		b.WriteByte(':')
		if err := writeJSON(&b, f.value); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeJSON writes v as compact JSON, without the escapes of <, > and &
// that only HTML needs.
func writeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}
