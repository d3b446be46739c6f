package deadletter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// An operator replays a dead letter; the consumer records that the replay
// was handled; the ledger then shows it resolved.
func ExampleLedger() {
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		panic(err)
	}
	defer kafka.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx := context.Background()

	ledger, err := deadletter.OpenLedger(ctx, cl, kadm.NewClient(cl), "billing")
	if err != nil {
		panic(err)
	}
	defer ledger.Close()

	id := "orders.billing.dlt/0/41" // wire.DeadLetterID of the dead letter
	if _, err := ledger.Record(ctx, id, wire.LedgerEntry{
		Kind: wire.ActionReplay, At: time.Now(), Actor: "alice", Reason: "the tax service is back",
	}); err != nil {
		panic(err)
	}
	if _, err := ledger.Record(ctx, id, wire.LedgerEntry{
		Kind: wire.OutcomeHandled, At: time.Now(), Actor: "consumer billing", Record: "orders.billing.replay/0/0",
	}); err != nil {
		panic(err)
	}
	_, err = ledger.Record(ctx, id, wire.LedgerEntry{Kind: wire.ActionDiscard, At: time.Now(), Actor: "bob", Reason: "noise"})
	fmt.Println(err)

	states, err := ledger.States(ctx)
	if err != nil {
		panic(err)
	}
	r := states[id]
	fmt.Println(ledger.Topic(), r.State, r.Seq, r.Replays())
	// Output:
	// deadletter: ledger billing.dlt-ledger: wire: illegal ledger transition: discard a dead letter in state resolved: legal in open, failed-again, parked (dead letter orders.billing.dlt/0/41)
	// billing.dlt-ledger resolved 2 1
}
