package main

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/wire"
)

// A replay topic written by a transactional producer ends in a
// transaction marker, which no fetch returns as a record: dlt ls still
// reads it to its end and counts the replay.
func TestDeadLetterListReadsPastTransactionMarkers(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	replay := wire.ReplayTopic("orders", "billing") // created with the dead-letter topic
	produceDeadLetter(t, cl, 0)
	tx, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.TransactionalID("foreign-replayer"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: replay, Value: []byte{0, 0, 0, 0, 1}, Headers: []kgo.RecordHeader{
		{Key: wire.HeaderReplayOf, Value: []byte(wire.DeadLetterTopic("orders", "billing") + "/0/0")},
		{Key: wire.HeaderReplayCount, Value: []byte("1")},
	}}
	if err := tx.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(t.Context(), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	out := cli(t, stack, "", "dlt", "ls").ok(t, "dlt ls").out
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if f := strings.Fields(rows[1]); len(rows) != 3 || f[7] != "1" {
		t.Fatalf("dlt ls: want one dead letter replayed once:\n%s", out)
	}
}
