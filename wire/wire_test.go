package wire_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// HeaderValue finds a header by name wherever it is, the first of two.
func TestHeaderValue(t *testing.T) {
	hs := []kgo.RecordHeader{
		{Key: "traceparent", Value: []byte("00-x")},
		{Key: wire.HeaderID, Value: []byte("id-1")},
		{Key: wire.HeaderID, Value: []byte("id-2")},
		{Key: wire.HeaderSubject},
	}
	if v, ok := wire.HeaderValue(hs, wire.HeaderID); !ok || string(v) != "id-1" {
		t.Errorf("HeaderValue(ce_id) = %q, %v; want id-1, true", v, ok)
	}
	if v, ok := wire.HeaderValue(hs, wire.HeaderSubject); !ok || v != nil {
		t.Errorf("HeaderValue(ce_subject) = %q, %v; want nil, true", v, ok)
	}
	if v, ok := wire.HeaderValue(hs, wire.HeaderType); ok || v != nil {
		t.Errorf("HeaderValue(ce_type) = %q, %v; want nil, false", v, ok)
	}
}
