package outbox

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// TestRecordsKeepTheirHeaders: the records of a batch share memory, and a
// header added to one (trace context) must not land in the next.
func TestRecordsKeepTheirHeaders(t *testing.T) {
	hs := wire.AppendHeadersColumn(nil, []kgo.RecordHeader{{Key: wire.HeaderID, Value: []byte("a")}})
	recs, err := records([]row{{id: 1, headers: hs}, {id: 2, headers: hs}})
	if err != nil || len(recs) != 2 {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	recs[0].Headers = append(recs[0].Headers, kgo.RecordHeader{Key: wire.HeaderTraceParent, Value: []byte("x")})
	if h := recs[1].Headers; len(h) != 1 || h[0].Key != wire.HeaderID || string(h[0].Value) != "a" {
		t.Errorf("the second record's headers became %v", h)
	}
}

// BenchmarkRecords: building the Kafka records of a batch of 1,000 rows
// read from the outbox, each with the headers an Encoder and a trace
// context give it. One op is one row. Run:
//
//	go test ./outbox -run '^$' -bench BenchmarkRecords -benchtime 2000000x -count 5
func BenchmarkRecords(b *testing.B) {
	hs := wire.AppendHeadersColumn(nil, []kgo.RecordHeader{
		{Key: wire.HeaderSpecVersion, Value: []byte(wire.SpecVersion)},
		{Key: wire.HeaderID, Value: []byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")},
		{Key: wire.HeaderSource, Value: []byte("/orders-service")},
		{Key: wire.HeaderType, Value: []byte("com.example.orders.OrderPlaced")},
		{Key: wire.HeaderTime, Value: []byte("2025-07-01T12:00:00.123456789Z")},
		{Key: wire.HeaderContentType, Value: []byte(wire.ContentType)},
		{Key: wire.HeaderSubject, Value: []byte("order-1")},
		{Key: wire.HeaderCorrelationID, Value: []byte("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")},
		{Key: wire.HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
	})
	batch := make([]row, 1000)
	for i := range batch {
		batch[i] = row{id: int64(i), topic: "orders", key: []byte("order-1"), value: make([]byte, 200), headers: hs}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		if _, err := records(batch); err != nil {
			b.Fatal(err)
		}
	}
}
