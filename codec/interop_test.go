package codec_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/evbus/evbus/codec"
)

// registrySchemaText fetches the text of schema id from the registry's
// REST API with nothing but net/http, as a client in another language
// would.
func registrySchemaText(t testing.TB, url string, id int) string {
	t.Helper()
	resp, err := http.Get(url + "/schemas/ids/" + strconv.Itoa(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /schemas/ids/%d: %s", id, resp.Status)
	}
	var body struct {
		Schema string `json:"schema"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Schema
}

// goavroFor returns a goavro codec for the schema id of a frame, as a
// stock Confluent-style consumer builds it.
func goavroFor(t testing.TB, url string, frame []byte) (*goavro.Codec, []byte) {
	t.Helper()
	if len(frame) < 5 || frame[0] != 0 {
		t.Fatalf("not a Confluent frame: %x", frame)
	}
	id := int(binary.BigEndian.Uint32(frame[1:5]))
	gc, err := goavro.NewCodec(registrySchemaText(t, url, id))
	if err != nil {
		t.Fatalf("goavro.NewCodec(schema %d): %v", id, err)
	}
	return gc, frame[5:]
}

func TestInteropGoavro(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, allFeatures)
	w := e.register(t, "orders", s)

	for _, tc := range []struct {
		name string
		in   OrderPlaced
	}{{"full", fullOrder()}, {"sparse", sparseOrder()}} {
		t.Run("evbus writes, goavro reads/"+tc.name, func(t *testing.T) {
			b, _ := e.encode(t, "orders", s, &tc.in)
			gc, body := goavroFor(t, e.url, b)
			native, rest, err := gc.NativeFromBinary(body)
			if err != nil {
				t.Fatalf("goavro: %v", err)
			}
			if len(rest) != 0 {
				t.Fatalf("goavro left %d bytes", len(rest))
			}
			got, err := orderFromNative(native)
			if err != nil {
				t.Fatalf("goavro native %v: %v", native, err)
			}
			assertOrderEqual(t, got, tc.in)
		})

		t.Run("goavro writes, evbus reads/"+tc.name, func(t *testing.T) {
			gc, err := goavro.NewCodec(registrySchemaText(t, e.url, w.ID))
			if err != nil {
				t.Fatal(err)
			}
			// A Confluent-style producer: magic byte, id, then goavro's body.
			frame, err := gc.BinaryFromNative(codec.AppendPrefix(nil, w.ID), orderToNative(tc.in))
			if err != nil {
				t.Fatalf("goavro: %v", err)
			}
			var out OrderPlaced
			if err := e.consumer(t).Decode(ctx, frame, nil, s, &out); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertOrderEqual(t, out, tc.in)

		})
	}

	// Schema evolution across implementations: goavro writes v1, evbus
	// reads it as v2.
	t.Run("goavro writes v1, evbus reads v2", func(t *testing.T) {
		s1, s2 := mustParse(t, shippedV1), mustParse(t, shippedV2)
		w1 := e.register(t, "shipments", s1)
		gc, err := goavro.NewCodec(registrySchemaText(t, e.url, w1.ID))
		if err != nil {
			t.Fatal(err)
		}
		frame, err := gc.BinaryFromNative(codec.AppendPrefix(nil, w1.ID), map[string]any{"order_id": "o-9", "parcels": int32(2), "carrierName": "DPD"})
		if err != nil {
			t.Fatal(err)
		}
		var out ShippedV2
		if err := e.consumer(t).Decode(ctx, frame, nil, s2, &out); err != nil {
			t.Fatal(err)
		}
		assertDeepEqual(t, out, ShippedV2{OrderID: "o-9", Parcels: 2, Carrier: "DPD"})
	})
}

func orderToNative(o OrderPlaced) map[string]any {
	union := func(name string, v any, isNil bool) any {
		if isNil {
			return nil
		}
		return goavro.Union(name, v)
	}
	lines := make([]any, len(o.Lines))
	for i, l := range o.Lines {
		lines[i] = map[string]any{"sku": l.SKU, "qty": l.Qty, "unit_price": l.UnitPrice}
	}
	attrs := make(map[string]any, len(o.Attributes))
	for k, v := range o.Attributes {
		attrs[k] = v
	}
	dims := make(map[string]any, len(o.Dimensions))
	for k, v := range o.Dimensions {
		items := make([]any, len(v))
		for i, f := range v {
			items[i] = f
		}
		dims[k] = items
	}
	var email, coupon, shipping any
	if o.Customer.Email != nil {
		email = *o.Customer.Email
	}
	if o.Coupon != nil {
		coupon = *o.Coupon
	}
	if o.Shipping != nil {
		shipping = map[string]any{"street": o.Shipping.Street, "zip": o.Shipping.Zip}
	}
	return map[string]any{
		"order_id": o.OrderID,
		"customer": map[string]any{
			"id":      o.Customer.ID,
			"email":   union("string", email, email == nil),
			"address": map[string]any{"street": o.Customer.Address.Street, "zip": o.Customer.Address.Zip},
		},
		"status":        o.Status,
		"lines":         lines,
		"attributes":    attrs,
		"dimensions":    dims,
		"coupon":        union("string", coupon, coupon == nil),
		"shipping":      union("com.example.orders.Address", shipping, shipping == nil),
		"checksum":      o.Checksum[:],
		"total":         o.Total,
		"placed_at":     o.PlacedAt,
		"captured_at":   o.CapturedAt,
		"delivery_date": o.DeliveryDate,
		"gift":          o.Gift,
		"weight_kg":     o.WeightKg,
		"sequence":      o.Sequence,
		"note":          o.Note,
	}
}

// orderFromNative converts goavro's generic form back to an OrderPlaced,
// checking every type on the way.
func orderFromNative(native any) (o OrderPlaced, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("unexpected native shape: %v", p)
		}
	}()
	m := native.(map[string]any)
	address := func(v any) Address {
		a := v.(map[string]any)
		return Address{Street: a["street"].(string), Zip: a["zip"].(string)}
	}
	optString := func(v any) *string {
		if v == nil {
			return nil
		}
		return ptr(v.(map[string]any)["string"].(string))
	}
	c := m["customer"].(map[string]any)
	o.OrderID = m["order_id"].(string)
	o.Customer = Customer{ID: c["id"].(string), Email: optString(c["email"]), Address: address(c["address"])}
	o.Status = m["status"].(string)
	o.Lines = []OrderLine{}
	for _, l := range m["lines"].([]any) {
		lm := l.(map[string]any)
		o.Lines = append(o.Lines, OrderLine{SKU: lm["sku"].(string), Qty: lm["qty"].(int32), UnitPrice: lm["unit_price"].(*big.Rat)})
	}
	o.Attributes = map[string]string{}
	for k, v := range m["attributes"].(map[string]any) {
		o.Attributes[k] = v.(string)
	}
	o.Dimensions = map[string][]float64{}
	for k, v := range m["dimensions"].(map[string]any) {
		fs := []float64{}
		for _, f := range v.([]any) {
			fs = append(fs, f.(float64))
		}
		o.Dimensions[k] = fs
	}
	o.Coupon = optString(m["coupon"])
	if sh := m["shipping"]; sh != nil {
		a := address(sh.(map[string]any)["com.example.orders.Address"])
		o.Shipping = &a
	}
	copy(o.Checksum[:], m["checksum"].([]byte))
	o.Total = m["total"].(*big.Rat)
	o.PlacedAt = m["placed_at"].(time.Time)
	o.CapturedAt = m["captured_at"].(time.Time)
	o.DeliveryDate = m["delivery_date"].(time.Time)
	o.Gift = m["gift"].(bool)
	o.WeightKg = m["weight_kg"].(float32)
	o.Sequence = m["sequence"].(int64)
	o.Note = m["note"].([]byte)
	return o, nil
}
