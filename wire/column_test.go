package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// The headers column reads back what was written, in the documented form,
// and refuses what it did not write.
func TestHeadersColumnRoundTrip(t *testing.T) {
	hs := []kgo.RecordHeader{
		{Key: wire.HeaderID, Value: []byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")},
		{Key: wire.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{Key: wire.HeaderTraceState, Value: []byte("congo=t61rcWkgMzE")},
		{Key: "empty", Value: nil},
		{Key: "binary", Value: bytes.Repeat([]byte{0, 0xff}, 200)},
	}
	b := wire.AppendHeadersColumn(nil, hs)
	// The documented form, byte for byte, for the first header.
	if want := append([]byte{1, 5}, "ce_id\x24"...); !bytes.HasPrefix(b, want) {
		t.Fatalf("encoded as %x, want prefix %x", b[:8], want)
	}
	got, err := wire.AppendParsedHeadersColumn(nil, b)
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
		if _, err := wire.AppendParsedHeadersColumn(nil, bad); !errors.Is(err, wire.ErrHeadersColumn) {
			t.Errorf("%x: %v, want ErrHeadersColumn", bad, err)
		}
	}
}

// FuzzParseHeadersColumn: a column read from any bytes reads back the same
// after writing it again.
func FuzzParseHeadersColumn(f *testing.F) {
	f.Add(wire.AppendHeadersColumn(nil, []kgo.RecordHeader{{Key: "k", Value: []byte("v")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := wire.AppendParsedHeadersColumn(nil, b)
		if err != nil {
			return
		}
		again, err := wire.AppendParsedHeadersColumn(nil, wire.AppendHeadersColumn(nil, hs))
		if err != nil || len(again) != len(hs) {
			t.Errorf("%x: re-encoded headers do not read back (%v)", b, err)
		}
	})
}
