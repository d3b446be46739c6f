package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// TestMain runs a child process's part when the environment says so
// (the tests kill those with SIGKILL), else the tests, with a throwaway
// PostgreSQL server.
func TestMain(m *testing.M) {
	if js := os.Getenv(childEnv); js != "" {
		var cfg childConfig
		if err := json.Unmarshal([]byte(js), &cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := runChild(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "e2e %s child: %v\n", cfg.Role, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	evbustest.RunWithPostgreSQL(m)
}

// runChild runs cfg's part until the process is killed. What it prints
// on stdout, one line at a time, tells the test how far it got.
func runChild(cfg childConfig) error {
	ctx := context.Background()
	db, err := openDB(ctx, cfg.DB)
	if err != nil {
		return err
	}
	switch cfg.Role {
	case "writer", "open":
		reg, err := schema.New(cfg.Registry)
		if err != nil {
			return err
		}
		enc, err := newEncoder(ctx, reg, stepEvent)
		if err != nil {
			return err
		}
		ob, err := outbox.New(db, enc)
		if err != nil {
			return err
		}
		if cfg.Role == "open" {
			return openTx(ctx, db, ob, cfg)
		}
		_, err = writeKeys(ctx, db, ob, cfg.Keys, 0, cfg.Seq, 5, func(n int) { fmt.Println("committed", n) })
		if err != nil {
			return err
		}
		fmt.Println("done")
		select {}

	case "relay":
		ob, err := outbox.New(db, nil)
		if err != nil {
			return err
		}
		opts := []kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}
		if cfg.KillAfterAcks > 0 {
			opts = append(opts, kgo.WithHooks(&killAfterAcks{n: int64(cfg.KillAfterAcks)}))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		r, err := ob.Relay(cl, outbox.BatchSize(cfg.BatchSize))
		if err != nil {
			return err
		}
		return r.Run(ctx)

	case "consumer":
		reg, err := schema.New(cfg.Registry)
		if err != nil {
			return err
		}
		c, err := newConsumer(cfg.Group, reg, db, cfg.Brokers,
			consumer.Kafka(kgo.ClientID(cfg.ClientID)),
			consumer.CommitInterval(cfg.CommitInterval))
		if err != nil {
			return err
		}
		return c.Run(ctx)
	}
	return fmt.Errorf("unknown role %q", cfg.Role)
}

// openTx begins a transaction that writes a business row and an event
// for each of cfg.Keys (seq cfg.Seq), says "open <first outbox id>
// <rows>", and waits, never committing, to be killed.
func openTx(ctx context.Context, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx], cfg childConfig) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	steps := make([]Step, len(cfg.Keys))
	for i, k := range cfg.Keys {
		steps[i] = Step{Key: k, Seq: int64(cfg.Seq)}
	}
	if err := insertSteps(ctx, tx, ob, steps); err != nil {
		return err
	}
	// The rows this transaction wrote: it sees them, nobody else does.
	var first, n int64
	if err := tx.QueryRow(ctx, "SELECT min(id), count(*) FROM evbus_outbox WHERE xmin::text = (pg_current_xact_id()::text::int8 % 4294967296)::text").Scan(&first, &n); err != nil {
		return err
	}
	if n != int64(len(steps)) {
		return errors.New("the open transaction does not see its own outbox rows")
	}
	fmt.Println("open", first, n)
	select {}
}

// killAfterAcks is a franz-go hook that kills the process (SIGKILL) once
// Kafka has acknowledged n records. franz-go calls
// OnProduceRecordUnbuffered after the broker's response, just before the
// record's promise (kgo's finishRecordPromise), on the same goroutine:
// the relay learns of the acknowledgement only through that promise, and
// marks its batch only once every record's promise ran, so the batch of
// the n-th record is acknowledged (that record at least) and not marked.
// (OnProduceBatchWritten would not do: franz-go runs it on a goroutine of
// its own, racing the promises and so the mark.)
type killAfterAcks struct {
	n     int64
	acked atomic.Int64
}

func (k *killAfterAcks) OnProduceRecordUnbuffered(_ *kgo.Record, err error) {
	if err == nil && k.acked.Add(1) == k.n {
		fmt.Println("acked", k.n)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
