package codec_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"
)

func TestRoundTripAllFeatures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := mustParse(t, allFeatures)

	cases := []struct {
		name string
		in   OrderPlaced
	}{
		{"every optional part set", fullOrder()},
		{"nulls and empty collections", sparseOrder()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, w := e.encode(t, "orders", s, &tc.in)

			// The frame is 0x00 and the id the registry assigned, as an
			// independent client of the registry sees it.
			latest, err := e.sr.SchemaByVersion(ctx, w.Subject, -1)
			if err != nil {
				t.Fatalf("registry: subject %s: %v", w.Subject, err)
			}
			if w.Subject != "orders-com.example.orders.OrderPlaced" {
				t.Errorf("subject %q, want the TopicRecordName subject", w.Subject)
			}
			if latest.ID != w.ID {
				t.Fatalf("Writer id %d, registry has %d", w.ID, latest.ID)
			}
			if b[0] != 0x00 {
				t.Fatalf("magic byte 0x%02x, want 0x00", b[0])
			}
			if got := binary.BigEndian.Uint32(b[1:5]); int(got) != latest.ID {
				t.Fatalf("frame id %d, registry id %d", got, latest.ID)
			}

			// A consumer that has never seen the schema fetches it by id.
			var out OrderPlaced
			if err := e.consumer(t).Decode(ctx, b, nil, s, &out); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			assertOrderEqual(t, out, tc.in)

			// And the producer's own codec (schema cached at
			// registration) reads the same thing.
			var again OrderPlaced
			if err := e.codec.Decode(ctx, b, nil, s, &again); err != nil {
				t.Fatalf("Decode with the producer's codec: %v", err)
			}
			assertOrderEqual(t, again, tc.in)

			// Without a reader schema the value is read as written.
			var generic map[string]any
			if err := e.consumer(t).Decode(ctx, b, nil, nil, &generic); err != nil {
				t.Fatalf("Decode without reader: %v", err)
			}
			if generic["order_id"] != tc.in.OrderID || generic["status"] != tc.in.Status {
				t.Errorf("generic decode: order_id %v status %v", generic["order_id"], generic["status"])
			}
		})
	}
}

// The logical types keep exactly their precision: this is what the
// round trip above relies on when it truncates.
func TestRoundTripTimePrecision(t *testing.T) {
	e := newEnv(t)
	s := mustParse(t, allFeatures)
	in := fullOrder()
	in.PlacedAt = time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC)
	in.CapturedAt = time.Date(1969, 12, 31, 23, 59, 59, 123_456_000, time.UTC) // before the epoch
	in.DeliveryDate = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	b, _ := e.encode(t, "orders", s, &in)

	var out OrderPlaced
	if err := e.consumer(t).Decode(context.Background(), b, nil, s, &out); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.UTC); !out.PlacedAt.Equal(want) {
		t.Errorf("timestamp-millis: %v, want %v", out.PlacedAt, want)
	}
	if !out.CapturedAt.Equal(in.CapturedAt) {
		t.Errorf("timestamp-micros: %v, want %v", out.CapturedAt, in.CapturedAt)
	}
	if !out.DeliveryDate.Equal(in.DeliveryDate) {
		t.Errorf("date: %v, want %v", out.DeliveryDate, in.DeliveryDate)
	}
}

// Encoding appends: the frame goes after what dst holds, and a buffer with
// room is reused.
func TestAppendEncodeAppends(t *testing.T) {
	e := newEnv(t)
	s := mustParse(t, allFeatures)
	w := e.register(t, "orders", s)
	enc, err := e.codec.Encoder(w.ID, w.Schema, s)
	if err != nil {
		t.Fatal(err)
	}
	if enc.ID() != w.ID {
		t.Errorf("Encoder.ID %d, want %d", enc.ID(), w.ID)
	}
	in := fullOrder()
	// One key per map: maps encode in Go's random iteration order.
	in.Attributes = map[string]string{"channel": "web"}
	in.Dimensions = map[string][]float64{"box": {1, 2}}
	alone, err := enc.AppendEncode(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	buf := append(make([]byte, 0, 4096), "key:"...)
	out, err := enc.AppendEncode(buf, in) // a value works as well as a pointer
	if err != nil {
		t.Fatal(err)
	}
	if string(out[:4]) != "key:" || !bytes.Equal(out[4:], alone) {
		t.Fatalf("AppendEncode did not append the same frame")
	}
	if &out[0] != &buf[:1][0] {
		t.Errorf("AppendEncode reallocated a buffer with room")
	}
}
