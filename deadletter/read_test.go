package deadletter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// A dead-letter topic written by a transactional producer (another
// language's consumer, say) ends in a transaction marker, which no
// fetch returns as a record: Read still reaches the end, and shows the
// dead letter alone.
func TestReadEndsAtATransactionMarker(t *testing.T) {
	brokers := startKafka(t)
	cl, adm := clients(t, brokers)
	ctx := context.Background()
	dlt := wire.DeadLetterTopic("orders", "billing")
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, dlt); err != nil {
		t.Fatal(err)
	}
	failed := &kgo.Record{Topic: "orders", Partition: 0, Offset: 7, Value: []byte("v"),
		Headers: []kgo.RecordHeader{{Key: wire.HeaderID, Value: []byte("id-1")}, {Key: wire.HeaderType, Value: []byte("com.example.T")}}}
	rec := wire.DeadLetterRecord(failed, wire.Origin{Topic: "orders", Offset: 7, Timestamp: at}, "billing", wire.KindPermanent, 1, errors.New("no"), at)

	tx, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("foreign-consumer"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	rctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a hang guard
	defer cancel()
	ds, read, err := deadletter.Read(rctx, cl, "billing")
	if err != nil {
		t.Fatalf("Read: %v (a read that waits for the marker as a record never ends)", err)
	}
	if len(ds) != 1 || ds[0].ID != "id-1" || read != 1 {
		t.Fatalf("Read = %+v, %d records read; want the one dead letter", ds, read)
	}
}
