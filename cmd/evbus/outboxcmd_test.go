package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

func TestMain(m *testing.M) { evbustest.RunWithPostgreSQL(m) }

type outboxEvent struct {
	OrderID string `avro:"order_id"`
}

var outboxEventType = bus.Event[outboxEvent]("orders", func(e *outboxEvent) string { return e.OrderID }, bus.Namespace("com.example.cli"))

// TestOutboxStatus: the backlog before a relay ran, then the relay's shard
// once it published everything; on PostgreSQL and on SQLite.
func TestOutboxStatus(t *testing.T) {
	stack := evbustest.Start(t)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), reg, bus.Source("/orders"), bus.Types(outboxEventType))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := bus.CreateTopics(t.Context(), kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}

	t.Run("postgres", func(t *testing.T) {
		url := evbustest.PostgresDatabase(t)
		pool, err := pgxpool.New(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		checkOutboxStatus(t, url, sqldb.DB[pgx.Tx](sqldb.Pgx(pool)), enc, cl)
	})
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "orders.db")
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Pool().Close()
		checkOutboxStatus(t, "sqlite:"+path, sqldb.DB[*sql.Tx](db), enc, cl)
	})
}

// checkOutboxStatus migrates an outbox on db (which dsn names), enqueues
// three events and checks what outbox status says before a relay ran and
// once one published them.
func checkOutboxStatus[Tx any](t *testing.T, dsn string, db sqldb.DB[Tx], enc *bus.Encoder, cl *kgo.Client) {
	t.Helper()
	ob, err := outbox.New(db, enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := sqldb.InTx(t.Context(), db, func(tx Tx) error {
			return ob.Enqueue(t.Context(), tx, outboxEvent{OrderID: string(rune('a' + i))})
		}); err != nil {
			t.Fatal(err)
		}
	}
	r := cliEnv(t, map[string]string{"EVBUS_DB": dsn}, "", "outbox", "status").ok(t, "outbox status")
	if !strings.Contains(r.out, "evbus_outbox: 3 unpublished, oldest") || !strings.Contains(r.out, "no relay has run yet") {
		t.Errorf("before the relay:\n%s", r.out)
	}
	relay, err := ob.Relay(cl, outbox.RelayName("cli-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(guard)
	var st outbox.Status
	for {
		r = cliEnv(t, nil, "", "outbox", "status", "--db", dsn, "--json").ok(t, "outbox status --json")
		st = outbox.Status{}
		if err := json.Unmarshal([]byte(r.out), &st); err != nil {
			t.Fatalf("--json output %q: %v", r.out, err)
		}
		if st.Backlog == 0 && len(st.Relays) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Backlog != 0 || len(st.Relays) != 1 || st.Relays[0].Holder != "cli-test" || !st.Relays[0].Active {
		t.Fatalf("after the relay: %+v", st)
	}
	r = cliEnv(t, nil, "", "outbox", "status", "--db", dsn).ok(t, "outbox status")
	if !strings.Contains(r.out, "0 unpublished") || !strings.Contains(r.out, "cli-test") {
		t.Errorf("after the relay:\n%s", r.out)
	}
}

func TestOutboxStatusBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"outbox", "status"}, 2, "no database"},
		{[]string{"outbox", "status", "--db", "mysql://app:hunter2@db/orders"}, 2, "unknown database URL scheme"},
		{[]string{"outbox", "status", "--db", "postgres://app:hunter2@127.0.0.1:1/orders", "--timeout", "3s"}, 1, "does not answer"},
		{[]string{"outbox", "status", "--db", "postgres://app:hunter2@127.0.0.1:1/orders?sslmode=bogus"}, 2, "not a PostgreSQL URL"},
		{[]string{"outbox", "status", "--db", "sqlite:" + filepath.Join(t.TempDir(), "x.db"), "--table", "outbox;DROP TABLE x"}, 2, "not a valid table name"},
		{[]string{"outbox", "status", "--db", "sqlite:" + filepath.Join(t.TempDir(), "empty.db")}, 1, "was it migrated"},
	} {
		r := cliEnv(t, nil, "", c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.want) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || strings.Contains(r.err, "hunter2") {
			t.Errorf("evbus %s: exit %d, stderr %q; want exit %d, one line with %q, no password", strings.Join(c.args, " "), r.code, r.err, c.code, c.want)
		}
	}
}
