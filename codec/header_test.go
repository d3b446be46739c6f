package codec_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/evbus/evbus/codec"
)

const itemSchema = `{"type":"record","name":"Item","namespace":"com.example.h","fields":[
  {"name":"sku","type":"string"},
  {"name":"qty","type":"long"},
  {"name":"tags","type":{"type":"array","items":"string"}}
]}`

// itemInFrame reads a Confluent frame of an Item as one record: the five
// prefix bytes as a fixed, then the Item itself.
const itemInFrame = `{"type":"record","name":"FramedItem","namespace":"com.example.h","fields":[
  {"name":"prefix","type":{"type":"fixed","name":"Prefix","size":5}},
  {"name":"item","type":` + itemSchema + `}
]}`

type Item struct {
	SKU  string   `avro:"sku"`
	Qty  int64    `avro:"qty"`
	Tags []string `avro:"tags"`
}

type FramedItem struct {
	Prefix [5]byte `avro:"prefix"`
	Item   Item    `avro:"item"`
}

func TestHeaderMode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, itemSchema)
	in := Item{SKU: "sku-1", Qty: 7, Tags: []string{"a", "b"}}
	framed, w := e.encode(t, "items", s, &in)
	body := framed[5:]

	// The registry's GUID for the schema, from an independent client.
	ss, err := e.sr.SchemaByVersion(ctx, w.Subject, -1)
	if err != nil {
		t.Fatal(err)
	}
	if ss.GUID == "" {
		t.Fatal("the registry gave no GUID")
	}
	guid, err := codec.ParseGUID(ss.GUID)
	if err != nil {
		t.Fatalf("ParseGUID(%q): %v", ss.GUID, err)
	}

	headers := []struct {
		name   string
		header []byte
	}{
		{"id header", codec.AppendPrefix(nil, w.ID)},
		{"guid header", codec.AppendGUIDHeader(nil, guid)},
	}
	for _, h := range headers {
		t.Run(h.name, func(t *testing.T) {
			c := e.consumer(t)
			var out Item
			gotWriter, f, err := c.DecodeWriter(ctx, body, h.header, s, &out)
			if err != nil {
				t.Fatalf("Decode(body, %x): %v", h.header, err)
			}
			assertDeepEqual(t, out, in)
			if f.ID != w.ID {
				t.Errorf("frame id %d, want %d", f.ID, w.ID)
			}
			if !bytes.Equal(f.Body, body) {
				t.Errorf("frame body %x, want the whole value %x", f.Body, body)
			}
			if gotWriter == nil || gotWriter.Canonical() != s.Canonical() {
				t.Errorf("writer schema %v, want %v", gotWriter, s)
			}
			if h.header[0] == 0x01 {
				if !f.HasGUID() || f.GUIDString() != ss.GUID {
					t.Errorf("frame GUID %q, want %q", f.GUIDString(), ss.GUID)
				}
			} else if f.HasGUID() {
				t.Errorf("frame has GUID %q for an id header", f.GUIDString())
			}
			// Twice: the second time from the codec's cache.
			var again Item
			if err := c.Decode(ctx, body, h.header, s, &again); err != nil {
				t.Fatal(err)
			}
			assertDeepEqual(t, again, in)
		})
	}

	// A header wins over a prefix: the whole value is the body, prefix
	// included. The record registered as frameID reads the prefix bytes
	// as a fixed, so which schema was used shows in the result.
	fs := mustParse(t, itemInFrame)
	fw := e.register(t, "items", fs)
	t.Run("header wins over prefix", func(t *testing.T) {
		var out FramedItem
		if err := e.consumer(t).Decode(ctx, framed, codec.AppendPrefix(nil, fw.ID), fs, &out); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !bytes.Equal(out.Prefix[:], framed[:5]) {
			t.Errorf("prefix read as %x, want %x", out.Prefix, framed[:5])
		}
		assertDeepEqual(t, out.Item, in)
	})

	t.Run("FromPrefix ignores headers", func(t *testing.T) {
		c := e.consumer(t, codec.ReadSchemaIDFrom(codec.FromPrefix))
		for _, h := range [][]byte{codec.AppendPrefix(nil, fw.ID), {0x07, 0x07}, {}} {
			var out Item
			if err := c.Decode(ctx, framed, h, s, &out); err != nil {
				t.Fatalf("Decode(header %x): %v", h, err)
			}
			assertDeepEqual(t, out, in)
		}
		// A body without prefix is not a frame, whatever the header says.
		var out Item
		if err := c.Decode(ctx, body, codec.AppendPrefix(nil, w.ID), s, &out); err == nil {
			t.Fatal("FromPrefix decoded a value without prefix")
		}
	})

	t.Run("FromHeader rejects a value without header", func(t *testing.T) {
		c := e.consumer(t, codec.ReadSchemaIDFrom(codec.FromHeader))
		var out Item
		err := c.Decode(ctx, framed, nil, s, &out)
		var de *codec.DecodeError
		if !errors.As(err, &de) || !errors.Is(err, codec.ErrUnknownSchema) {
			t.Fatalf("Decode without header: %v, want a *DecodeError wrapping ErrUnknownSchema", err)
		}
		if err := c.Decode(ctx, body, codec.AppendPrefix(nil, w.ID), s, &out); err != nil {
			t.Fatalf("Decode with header: %v", err)
		}
		assertDeepEqual(t, out, in)
	})
}

func TestGUIDText(t *testing.T) {
	const text = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
	g, err := codec.ParseGUID(text)
	if err != nil {
		t.Fatal(err)
	}
	want := [16]byte{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89}
	if g != want {
		t.Fatalf("ParseGUID = %x, want %x", g, want)
	}
	h := codec.AppendGUIDHeader([]byte("x"), g)
	if len(h) != 18 || h[0] != 'x' || h[1] != 0x01 || !bytes.Equal(h[2:], want[:]) {
		t.Fatalf("AppendGUIDHeader = %x", h)
	}
	f, err := codec.ParseFrame([]byte("body"), h[1:])
	if err != nil {
		t.Fatal(err)
	}
	if f.GUIDString() != text || f.ID != 0 || string(f.Body) != "body" {
		t.Fatalf("ParseFrame = %+v (%s)", f, f.GUIDString())
	}
	for _, bad := range []string{"", text[:35], "0a1b2c3d-4e5f-6789-abcd_ef0123456789", "0a1b2c3d-4e5f-6789-abcd-ef012345678g", "0a1b2c3d4e5f6789abcdef0123456789"} {
		if _, err := codec.ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) succeeded", bad)
		}
	}
}
