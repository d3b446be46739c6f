package consumer

import (
	"context"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// FuzzOpen feeds arbitrary header values (CloudEvents attributes, the
// schema-id header, retry headers on a retry topic) to the step that
// reads a record's headers: it returns an error or metadata, never
// panics. The record's value goes through the codec's own FuzzDecode.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("1.0"), []byte("id"), []byte("com.example.T"), []byte("2025-01-02T03:04:05.123Z"), []byte("2"), []byte("2025-01-02T03:04:05Z"), []byte{0, 0, 0, 0, 1})
	f.Add([]byte{}, []byte{}, []byte{0xff}, []byte("2025-13-40T99:99:99Z"), []byte("-1"), []byte("x"), []byte{1})
	f.Add([]byte("1.0"), []byte(nil), []byte("T"), []byte("2025-02-30T00:00:00.0000000001Z"), []byte("99999999999999999999"), []byte(""), []byte(nil))
	reg, err := schema.New("http://127.0.0.1:1")
	if err != nil {
		f.Fatal(err)
	}
	c, err := New("fuzz", reg, Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.Fatal(err)
	}
	c.retryOf = map[string]stage{"t.fuzz.retry-1": {topic: "t", n: 1}}
	home := newPartition(context.Background(), c, "t", 0)
	retry := newPartition(context.Background(), c, "t.fuzz.retry-1", 0)
	f.Fuzz(func(t *testing.T, spec, id, typ, tm, attempts, due, schemaID []byte) {
		hs := []kgo.RecordHeader{
			{Key: wire.HeaderID, Value: id}, {Key: wire.HeaderType, Value: typ}, {Key: wire.HeaderTime, Value: tm},
			{Key: wire.HeaderSource, Value: id}, {Key: wire.HeaderRetryAttempts, Value: attempts}, {Key: wire.HeaderRetryDue, Value: due},
			{Key: wire.HeaderRetryOriginalOffset, Value: attempts}, {Key: "__value_schema_id", Value: schemaID},
		}
		if spec != nil {
			hs = append(hs, kgo.RecordHeader{Key: wire.HeaderSpecVersion, Value: spec})
		}
		for _, p := range []*partition{home, retry} {
			r := &call{c: c, p: p, rec: &kgo.Record{Topic: p.topic, Key: id, Headers: hs}}
			if err := r.open(); err == nil && spec != nil && (r.meta.ID == "" || r.meta.Source == "" || len(r.ceType) == 0) {
				t.Fatalf("a CloudEvent without its required attributes was opened: %+v", r.meta)
			}
		}
	})
}
