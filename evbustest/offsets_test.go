package evbustest_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
)

// TestRecordsAndCommitted: Records counts what a topic holds over its
// partitions, Committed reads back what a group committed.
func TestRecordsAndCommitted(t *testing.T) {
	s := evbustest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if n := evbustest.Records(t, s, "orders"); n != 0 {
		t.Fatalf("an empty topic holds %d records", n)
	}
	for i, p := range []int32{0, 1, 1} {
		r := &kgo.Record{Topic: "orders", Partition: p, Value: []byte{byte(i)}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if n := evbustest.Records(t, s, "orders"); n != 3 {
		t.Errorf("Records = %d, want 3", n)
	}
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(t.Context(), "billing", offsets); err != nil {
		t.Fatal(err)
	}
	got := evbustest.Committed(t, s, "billing", "orders")
	if len(got) != 1 || got[1] != 2 {
		t.Errorf("Committed = %v, want partition 1 at 2", got)
	}
}
