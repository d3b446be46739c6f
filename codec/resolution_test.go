package codec_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// Two versions of one event, as two services compiled them.
const (
	shippedV1 = `{"type":"record","name":"OrderShipped","namespace":"com.example.orders","fields":[
	  {"name":"order_id","type":"string"},
	  {"name":"parcels","type":"int"},
	  {"name":"carrierName","type":"string","default":"unknown"}
	]}`
	// v2: parcels int -> long, carrierName renamed to carrier (alias),
	// tracking added with a default.
	shippedV2 = `{"type":"record","name":"OrderShipped","namespace":"com.example.orders","fields":[
	  {"name":"order_id","type":"string"},
	  {"name":"parcels","type":"long"},
	  {"name":"carrier","type":"string","aliases":["carrierName"],"default":"unknown"},
	  {"name":"tracking","type":["null","string"],"default":null}
	]}`
)

type ShippedV1 struct {
	OrderID     string `avro:"order_id"`
	Parcels     int32  `avro:"parcels"`
	CarrierName string `avro:"carrierName"`
}

type ShippedV2 struct {
	OrderID  string  `avro:"order_id"`
	Parcels  int64   `avro:"parcels"`
	Carrier  string  `avro:"carrier"`
	Tracking *string `avro:"tracking"`
}

func TestResolutionAcrossVersions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s1, s2 := mustParse(t, shippedV1), mustParse(t, shippedV2)

	// The v1 producer registers first, then v2 (BACKWARD compatible).
	b1, w1 := e.encode(t, "shipments", s1, &ShippedV1{OrderID: "o-1", Parcels: 3, CarrierName: "DHL"})
	v2in := ShippedV2{OrderID: "o-2", Parcels: 1 << 20, Carrier: "UPS", Tracking: ptr("1Z999")}
	b2, w2 := e.encode(t, "shipments", s2, &v2in)
	if w1.ID == w2.ID || w1.Subject != w2.Subject {
		t.Fatalf("v1 %+v and v2 %+v: want two versions of one subject", w1, w2)
	}

	t.Run("v2 reads v1", func(t *testing.T) {
		var out ShippedV2
		if err := e.consumer(t).Decode(ctx, b1, nil, s2, &out); err != nil {
			t.Fatal(err)
		}
		// int widened to long, carrierName read as carrier, tracking defaulted.
		assertDeepEqual(t, out, ShippedV2{OrderID: "o-1", Parcels: 3, Carrier: "DHL"})
	})
	t.Run("v1 reads v2", func(t *testing.T) {
		// parcels is a long in v2: v1 reads int and cannot narrow it.
		var out ShippedV1
		err := e.consumer(t).Decode(ctx, b2, nil, s1, &out)
		var ie *codec.IncompatibleError
		if !errors.Is(err, codec.ErrIncompatible) || !errors.As(err, &ie) || ie.Path != "parcels" {
			t.Fatalf("v1 reading v2: %v, want ErrIncompatible at parcels", err)
		}
		var de *codec.DecodeError
		if !errors.As(err, &de) || de.SchemaID != w2.ID {
			t.Errorf("error %v: want a *DecodeError naming schema %d", err, w2.ID)
		}
	})

	// A v1 that is forward compatible with v2: v1 ignores the added field
	// and defaults the renamed one.
	t.Run("v1 reads v2 where the change is forward compatible", func(t *testing.T) {
		v1fwd := mustParse(t, `{"type":"record","name":"OrderShipped","namespace":"com.example.orders","fields":[
		  {"name":"order_id","type":"string"},
		  {"name":"parcels","type":"long"},
		  {"name":"carrierName","type":"string","default":"unknown"}
		]}`)
		type V1Fwd struct {
			OrderID     string `avro:"order_id"`
			Parcels     int64  `avro:"parcels"`
			CarrierName string `avro:"carrierName"`
		}
		var out V1Fwd
		if err := e.consumer(t).Decode(ctx, b2, nil, v1fwd, &out); err != nil {
			t.Fatal(err)
		}
		assertDeepEqual(t, out, V1Fwd{OrderID: "o-2", Parcels: 1 << 20, CarrierName: "unknown"})
	})

	t.Run("each reads its own", func(t *testing.T) {
		c := e.consumer(t)
		var o1 ShippedV1
		var o2 ShippedV2
		if err := c.Decode(ctx, b1, nil, s1, &o1); err != nil {
			t.Fatal(err)
		}
		if err := c.Decode(ctx, b2, nil, s2, &o2); err != nil {
			t.Fatal(err)
		}
		assertDeepEqual(t, o1, ShippedV1{OrderID: "o-1", Parcels: 3, CarrierName: "DHL"})
		assertDeepEqual(t, o2, v2in)
	})

	// The same writer and reader, many records: the resolution is planned
	// once and reused, and records do not leak into each other.
	t.Run("repeated", func(t *testing.T) {
		c := e.consumer(t)
		for i := range 50 {
			var out ShippedV2
			b := b1
			want := ShippedV2{OrderID: "o-1", Parcels: 3, Carrier: "DHL"}
			if i%2 == 1 {
				b, want = b2, v2in
			}
			if err := c.Decode(ctx, b, nil, s2, &out); err != nil {
				t.Fatal(err)
			}
			assertDeepEqual(t, out, want)
		}
	})
}

// One schema per topic: the TopicName subject holds a union that
// references each event type, registered with schema references.
const (
	placedRef = `{"type":"record","name":"Placed","namespace":"com.example.cart","fields":[
	  {"name":"cart_id","type":"string"},
	  {"name":"items","type":"int"}
	]}`
	cancelledRef = `{"type":"record","name":"Cancelled","namespace":"com.example.cart","fields":[
	  {"name":"cart_id","type":"string"},
	  {"name":"reason","type":["null","string"],"default":null}
	]}`
	cartUnion = `["com.example.cart.Placed", "com.example.cart.Cancelled"]`
)

type Placed struct {
	CartID string `avro:"cart_id"`
	Items  int32  `avro:"items"`
}

type Cancelled struct {
	CartID string  `avro:"cart_id"`
	Reason *string `avro:"reason"`
}

func TestUnionPerTopic(t *testing.T) {
	e := newEnv(t, schema.SubjectStrategy(schema.TopicName))
	ctx := context.Background()
	placed, cancelled := mustParse(t, placedRef), mustParse(t, cancelledRef)
	union := mustParse(t, cartUnion, placed, cancelled)

	w := e.register(t, "carts", union)
	if w.Subject != "carts-value" {
		t.Fatalf("subject %q, want carts-value", w.Subject)
	}
	// The registry holds the union with its references.
	ss, err := e.sr.SchemaByVersion(ctx, "carts-value", -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.References) != 2 || ss.References[0].Name != "com.example.cart.Placed" || ss.References[1].Name != "com.example.cart.Cancelled" {
		t.Fatalf("registered references %+v", ss.References)
	}

	encode := func(s *codec.Schema, v any) []byte {
		t.Helper()
		enc, err := e.codec.Encoder(w.ID, w.Schema, s)
		if err != nil {
			t.Fatal(err)
		}
		b, err := enc.AppendEncode(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pIn, cIn := Placed{CartID: "c-1", Items: 4}, Cancelled{CartID: "c-2", Reason: ptr("changed mind")}
	pb, cb := encode(placed, &pIn), encode(cancelled, &cIn)

	// Prefix with the union's id, then the branch index (zig-zag varint).
	for _, f := range []struct {
		name   string
		b      []byte
		branch int64
	}{{"placed", pb, 0}, {"cancelled", cb, 1}} {
		if f.b[0] != 0 || int(binary.BigEndian.Uint32(f.b[1:5])) != w.ID {
			t.Errorf("%s: prefix %x, want union id %d", f.name, f.b[:5], w.ID)
		}
		if i, n := binary.Varint(f.b[5:]); n != 1 || i != f.branch {
			t.Errorf("%s: branch index %d, want %d", f.name, i, f.branch)
		}
	}

	c := e.consumer(t) // fetches the union and its references
	var pOut Placed
	if err := c.Decode(ctx, pb, nil, placed, &pOut); err != nil {
		t.Fatalf("decode placed: %v", err)
	}
	assertDeepEqual(t, pOut, pIn)
	var cOut Cancelled
	if err := c.Decode(ctx, cb, nil, cancelled, &cOut); err != nil {
		t.Fatalf("decode cancelled: %v", err)
	}
	assertDeepEqual(t, cOut, cIn)

	// A record of the other branch does not read as this type.
	if err := c.Decode(ctx, cb, nil, placed, &pOut); !errors.Is(err, codec.ErrIncompatible) {
		t.Errorf("Cancelled read as Placed: %v, want ErrIncompatible", err)
	}
	// Read with the union itself, into a generic value.
	var generic any
	if err := c.Decode(ctx, pb, nil, nil, &generic); err != nil {
		t.Fatalf("decode as written: %v", err)
	}
	// A branch index the union does not have.
	bad := append(append([]byte(nil), pb[:5]...), 0x04, 0x02, 'x', 0x02)
	if err := c.Decode(ctx, bad, nil, placed, &pOut); !errors.Is(err, codec.ErrUndecodable) {
		t.Errorf("branch 2 of 2: %v, want ErrUndecodable", err)
	}
	// An event that is no branch of the union cannot be encoded with it.
	other := mustParse(t, `{"type":"record","name":"Other","namespace":"com.example.cart","fields":[]}`)
	if _, err := e.codec.Encoder(w.ID, w.Schema, other); !errors.Is(err, codec.ErrIncompatible) {
		t.Errorf("Encoder for a non-branch: %v, want ErrIncompatible", err)
	}
}
