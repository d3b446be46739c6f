package consumer_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// A ledger applies each payment exactly once, though Kafka delivers one
// of them twice: the balance and the processed row are written in one
// transaction.
func ExampleHandleTx() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stack, err := devstack.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stack.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		log.Fatal(err)
	}
	err = bus.CreateTopics(ctx, kadm.NewClient(cl),
		bus.TopicSpec{Name: "payments", Partitions: 1, DeadLetterGroups: []string{"ledger"}})
	if err != nil {
		log.Fatal(err)
	}

	// The service's database (PostgreSQL: sqldb.Pgx(pool)).
	dir, err := os.MkdirTemp("", "ledger")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ledger.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Pool().Close()
	processed, err := consumer.NewProcessed(db) // table evbus_processed
	if err != nil {
		log.Fatal(err)
	}
	if err := processed.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE balances (account TEXT PRIMARY KEY, cents INTEGER NOT NULL)"); err != nil {
		log.Fatal(err)
	}

	c, err := consumer.New("ledger", reg,
		consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)),
		consumer.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	consumer.HandleTx(c, paymentReceived, processed, func(ctx context.Context, tx *sql.Tx, p *Payment, m bus.Meta) error {
		_, err := db.In(tx).Exec(ctx, `INSERT INTO balances (account, cents) VALUES (?1, ?2)
			ON CONFLICT (account) DO UPDATE SET cents = cents + excluded.cents`, p.Account, p.Cents)
		return err
	}, consumer.Batch(100))
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	// The same record twice, as a producer retrying after a lost
	// acknowledgement would send it.
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/payments-service"), bus.Types(paymentReceived))
	if err != nil {
		log.Fatal(err)
	}
	rec, err := enc.Record(ctx, &Payment{Account: "acct-1", Cents: 250})
	if err != nil {
		log.Fatal(err)
	}
	again := &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value, Headers: rec.Headers}
	if err := cl.ProduceSync(ctx, rec, again).FirstErr(); err != nil {
		log.Fatal(err)
	}

	for st := c.Stats(); st.Handled+st.Duplicates < 2; st = c.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Close(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-runErr; err != nil {
		log.Fatal(err)
	}
	var cents int64
	if err := sqldb.QueryRow(ctx, db, "SELECT cents FROM balances WHERE account = 'acct-1'", nil, &cents); err != nil {
		log.Fatal(err)
	}
	st := c.Stats()
	fmt.Println("balance", cents, "handled", st.Handled, "duplicates", st.Duplicates)
	// Output:
	// balance 250 handled 1 duplicates 1
}
