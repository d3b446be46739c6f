package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// field is one node of a decoded value as a page shows it: a record's
// field, a map's entry or an array's element, with its value masked
// unless revealed.
type field struct {
	Name  string // the field's name, the map key, or "[i]" for an element
	Path  string // the field path NeverShow and reveals name (see Config.NeverShow)
	Never bool   // on NeverShow: neither it nor what it holds is ever shown
	// Leaf: a value with no fields; Text is its JSON spelling, and Shown
	// whether this response shows it.
	Leaf     bool
	Text     string
	Shown    bool
	Children []field
}

// decodedValue is a dead letter's value for its page.
type decodedValue struct {
	Fields    []field // a record's fields; one unnamed field for a value that is not one
	Tombstone bool    // the record has no value
	Err       string  // why it did not decode; Hex holds it then
	Hex       string  // the raw value in hex, shown only when Shown
	Shown     bool    // an operator revealed the value in this response
	Schema    int     // the writer schema's id, 0 when unknown
}

// decodeValue reads rec's value through the registry. It fails only when
// the registry cannot be used; a value that does not decode is reported
// in decodedValue.Err.
func (h *Handler) decodeValue(ctx context.Context, rec *kgo.Record, reveal bool) (decodedValue, error) {
	out := decodedValue{Shown: reveal}
	if rec.Value == nil {
		out.Tombstone = true
		return out, nil
	}
	var schemaHeader []byte
	for _, hd := range rec.Headers {
		if hd.Key == codec.ValueSchemaIDHeader {
			schemaHeader = hd.Value
		}
	}
	var v any
	writer, fr, err := h.codec.DecodeWriter(ctx, rec.Value, schemaHeader, nil, &v)
	out.Schema = fr.ID
	if err == nil {
		var js []byte
		if js, err = codec.MarshalJSON(writer, v, codec.JSONOptions{}); err == nil {
			out.Fields, err = h.fields(js, reveal)
		}
	} else if errors.Is(err, schema.ErrUnavailable) || errors.Is(err, schema.ErrUnauthorized) || ctx.Err() != nil {
		return out, err
	}
	if err != nil {
		out.Fields, out.Err, out.Hex = nil, err.Error(), hex.EncodeToString(rec.Value)
	}
	return out, nil
}

// fields parses js, a JSON value, keeping the order of object members.
func (h *Handler) fields(js []byte, reveal bool) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	f, err := h.node(dec, "", "", reveal)
	if err != nil {
		return nil, err
	}
	if !f.Leaf && f.Name == "" && f.Children != nil && isObject(js) {
		return f.Children, nil
	}
	return []field{f}, nil
}

func isObject(js []byte) bool { return len(bytes.TrimSpace(js)) > 0 && bytes.TrimSpace(js)[0] == '{' }

// node reads the next JSON value of dec as the field name at path.
func (h *Handler) node(dec *json.Decoder, name, path string, reveal bool) (field, error) {
	f := field{Name: name, Path: path, Never: h.neverShow[path]}
	tok, err := dec.Token()
	if err != nil {
		return f, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return f, err
				}
				k, _ := kt.(string)
				c, err := h.node(dec, k, joinPath(path, k), reveal && !f.Never)
				if err != nil {
					return f, err
				}
				f.Children = append(f.Children, c)
			}
		case '[':
			for i := 0; dec.More(); i++ {
				// Elements share their array's path: "lines.sku" is every line's sku.
				c, err := h.node(dec, "["+strconv.Itoa(i)+"]", path, reveal && !f.Never)
				if err != nil {
					return f, err
				}
				c.Never = c.Never || f.Never
				f.Children = append(f.Children, c)
			}
		}
		if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) { // the closing delimiter
			return f, err
		}
		if f.Children == nil {
			f.Children = []field{}
		}
	default:
		f.Leaf = true
		if !f.Never {
			f.Text = leafText(t)
			f.Shown = reveal
		}
	}
	if f.Never {
		f.Children, f.Text, f.Shown = nil, "", false
	}
	return f, nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func leafText(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		b, _ := json.Marshal(t)
		return string(b)
	default:
		return fmt.Sprint(t)
	}
}

// shownPaths returns the paths of the leaves f shows, for the ledger's
// record of a reveal.
func shownPaths(fs []field) []string {
	seen := make(map[string]bool)
	var out []string
	var walk func([]field)
	walk = func(fs []field) {
		for _, f := range fs {
			switch {
			case f.Never:
			case f.Leaf:
				p := f.Path
				if p == "" {
					p = "(value)"
				}
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			default:
				walk(f.Children)
			}
		}
	}
	walk(fs)
	return out
}

// headerText is a header's value as text, or hex when it is not.
func headerText(v []byte) string {
	if isText(v) {
		return string(v)
	}
	return "hex:" + hex.EncodeToString(v)
}

func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' {
			return false
		}
	}
	return true
}
