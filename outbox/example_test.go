package outbox_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// An order is saved and its event enqueued in one transaction; a relay,
// started once per replica, publishes it after the commit.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost/orders")
	if err != nil {
		log.Fatal(err)
	}
	reg, err := schema.New("http://localhost:8081")
	if err != nil {
		log.Fatal(err)
	}
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/orders-service"), bus.Types(orderEvent))
	if err != nil {
		log.Fatal(err)
	}
	db := sqldb.Pgx(pool)
	ob, err := outbox.New(db, enc)
	if err != nil {
		log.Fatal(err)
	}
	if err := ob.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers("localhost:9092"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	relay, err := ob.Relay(cl)
	if err != nil {
		log.Fatal(err)
	}
	go relay.Run(ctx)

	err = sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE orders SET state = 'placed' WHERE id = $1", "o-1"); err != nil {
			return err
		}
		return ob.Enqueue(ctx, tx, OrderEvent{OrderID: "o-1", Seq: 1})
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Exec saves the order and enqueues its event in one statement: the
// business statement's parameters come first, the events after.
func ExampleOutbox_Exec() {
	ctx := context.Background()
	var db *sqldb.PgxDB           // from sqldb.Pgx, as in the package example
	var ob *outbox.Outbox[pgx.Tx] // from outbox.New(db, enc)
	err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		return ob.Exec(ctx, tx, "INSERT INTO orders (id, state) VALUES ($1, 'placed')", []any{"o-1"},
			OrderEvent{OrderID: "o-1", Seq: 1})
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Status tells an operator whether the outbox drains.
func ExampleOutbox_Status() {
	var ob *outbox.Outbox[pgx.Tx] // from outbox.New
	s, err := ob.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d unpublished, oldest %v old", s.Backlog, s.Age)
	for _, r := range s.Relays {
		log.Printf("shard %d: %s (active %v), last error %q", r.Shard, r.Holder, r.Active, r.LastError)
	}
}
