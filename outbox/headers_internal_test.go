package outbox

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestHeadersRoundTrip(t *testing.T) {
	hs := []kgo.RecordHeader{
		{Key: "ce_id", Value: []byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")},
		{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: "tracestate", Value: []byte("congo=t61rcWkgMzE")},
		{Key: "empty", Value: nil},
		{Key: "binary", Value: bytes.Repeat([]byte{0, 0xff}, 200)},
	}
	b := appendHeaders(nil, hs)
	// The documented form, byte for byte, for the first header.
	if want := append([]byte{1, 5}, "ce_id\x24"...); !bytes.HasPrefix(b, want) {
		t.Fatalf("encoded as %x, want prefix %x", b[:8], want)
	}
	got, err := parseHeaders(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(hs) {
		t.Fatalf("%d headers back, want %d", len(got), len(hs))
	}
	for i := range hs {
		if got[i].Key != hs[i].Key || !bytes.Equal(got[i].Value, hs[i].Value) {
			t.Errorf("header %d: %q=%q, want %q=%q", i, got[i].Key, got[i].Value, hs[i].Key, hs[i].Value)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1, 5, 'a'}, {1, 1, 'a', 9}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := parseHeaders(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func FuzzParseHeaders(f *testing.F) {
	f.Add(appendHeaders(nil, []kgo.RecordHeader{{Key: "k", Value: []byte("v")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := parseHeaders(b)
		if err != nil {
			return
		}
		again, err := parseHeaders(appendHeaders(nil, hs))
		if err != nil || len(again) != len(hs) {
			t.Errorf("%x: re-encoded headers do not read back (%v)", b, err)
		}
	})
}
