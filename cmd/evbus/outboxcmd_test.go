package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
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
	enc, cl := outboxStack(t)

	t.Run("postgres", func(t *testing.T) {
		url := evbustest.PostgresDatabase(t)
		pool, err := pgxpool.New(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		checkOutboxStatus(t, url, sqldb.DB[pgx.Tx](sqldb.Pgx(pool)), enc, cl, true)
	})
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "orders.db")
		db, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Pool().Close()
		checkOutboxStatus(t, "sqlite:"+path, sqldb.DB[*sql.Tx](db), enc, cl, false)
	})
}

// outboxStack starts the embedded stack with the orders topic, and
// returns an encoder of outboxEventType and a client made with opts.
func outboxStack(t *testing.T, opts ...kgo.Opt) (*bus.Encoder, *kgo.Client) {
	stack := evbustest.Start(t)
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), reg, bus.Source("/orders"), bus.Types(outboxEventType))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(stack.Brokers()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := bus.CreateTopics(t.Context(), kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	return enc, cl
}

// outboxStatusJSON is what outbox status --json prints.
type outboxStatusJSON struct {
	Table            string     `json:"table"`
	Backlog          int64      `json:"backlog"`
	Oldest           *time.Time `json:"oldest"`
	OldestAgeSeconds float64    `json:"oldest_age_seconds"`
	Relays           []struct {
		Shard       int        `json:"shard"`
		Holder      string     `json:"holder"`
		Since       time.Time  `json:"since"`
		Active      *bool      `json:"active"`
		Idle        bool       `json:"idle"`
		LastError   string     `json:"last_error"`
		LastErrorAt *time.Time `json:"last_error_at"`
		Stuck       []struct {
			ID     int64  `json:"id"`
			Topic  string `json:"topic"`
			Key    string `json:"key"`
			Reason string `json:"reason"`
		} `json:"stuck"`
	} `json:"relays"`
}

// readStatusJSON runs outbox status --json on dsn and decodes what it printed,
// strictly: every name is one of outboxStatusJSON's snake_case names.
func readStatusJSON(t *testing.T, dsn string) outboxStatusJSON {
	t.Helper()
	r := cliEnv(t, nil, "", "outbox", "status", "--db", dsn, "--json").ok(t, "outbox status --json")
	var st outboxStatusJSON
	dec := json.NewDecoder(strings.NewReader(r.out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("--json output %q: %v", r.out, err)
	}
	return st
}

// checkOutboxStatus migrates an outbox on db (which dsn names), enqueues
// three events and checks what outbox status says before a relay ran,
// once one published them, and once it stopped: active or not where the
// database knows (knowsActive), "unknown" where it does not.
func checkOutboxStatus[Tx any](t *testing.T, dsn string, db sqldb.DB[Tx], enc *bus.Encoder, cl *kgo.Client, knowsActive bool) {
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
	if st := readStatusJSON(t, dsn); st.Table != "evbus_outbox" || st.Backlog != 3 || st.Oldest == nil || st.OldestAgeSeconds <= 0 || st.OldestAgeSeconds > guard.Seconds() || st.Relays == nil {
		t.Errorf("--json before the relay: %+v", st)
	}
	relay, err := ob.Relay(cl, outbox.RelayName("cli-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("relay: %v", err)
			}
			stopped = true
		}
	}
	defer stop()
	deadline := time.Now().Add(guard)
	var st outboxStatusJSON
	for {
		st = readStatusJSON(t, dsn)
		if st.Backlog == 0 && len(st.Relays) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Backlog != 0 || st.Oldest != nil || len(st.Relays) != 1 || st.Relays[0].Holder != "cli-test" || st.Relays[0].LastErrorAt != nil ||
		(knowsActive && (st.Relays[0].Active == nil || !*st.Relays[0].Active)) || (!knowsActive && st.Relays[0].Active != nil) {
		t.Fatalf("after the relay: %+v", st)
	}
	r = cliEnv(t, nil, "", "outbox", "status", "--db", dsn).ok(t, "outbox status")
	if !strings.Contains(r.out, "0 unpublished") || !strings.Contains(r.out, "cli-test") {
		t.Errorf("after the relay:\n%s", r.out)
	}

	// The relay's process is gone: PostgreSQL knows its lock went with it;
	// SQLite cannot know and must not say it is active.
	stop()
	r = cliEnv(t, nil, "", "outbox", "status", "--db", dsn).ok(t, "outbox status after the relay stopped")
	active := activeColumn(t, r.out)
	st = readStatusJSON(t, dsn)
	if knowsActive && (active != "false" || st.Relays[0].Active == nil || *st.Relays[0].Active) {
		t.Errorf("a stopped relay on PostgreSQL: ACTIVE %q, --json %v\n%s", active, st.Relays[0].Active, r.out)
	}
	if !knowsActive && (active != "unknown" || st.Relays[0].Active != nil || !strings.Contains(r.out, "ACTIVE is unknown on SQLite")) {
		t.Errorf("a stopped relay on SQLite: ACTIVE %q, --json %v\n%s", active, st.Relays[0].Active, r.out)
	}
}

// activeColumn returns the ACTIVE cell of the one relay row of outbox
// status's table.
func activeColumn(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "SHARD") && i+1 < len(lines) {
			if f := strings.Fields(lines[i+1]); len(f) >= 4 {
				return f[3]
			}
		}
	}
	t.Fatalf("no relay row in:\n%s", out)
	return ""
}

// TestOutboxStatusBadInput: one line for each mistake; a missing SQLite
// file is an error that creates nothing.
func TestOutboxStatusBadInput(t *testing.T) {
	dir := t.TempDir()
	empty, missing := filepath.Join(dir, "empty.db"), filepath.Join(dir, "missing.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"outbox", "status"}, 2, "no database"},
		{[]string{"outbox", "status", "--db", "mysql://app:hunter2@db/orders"}, 2, "unknown database URL scheme"},
		{[]string{"outbox", "status", "--db", "postgres://app:hunter2@127.0.0.1:1/orders", "--timeout", "3s"}, 1, "does not answer"},
		{[]string{"outbox", "status", "--db", "postgres://app:hunter2@127.0.0.1:1/orders?sslmode=bogus"}, 2, "not a PostgreSQL URL"},
		{[]string{"outbox", "status", "--db", "sqlite:" + empty, "--table", "outbox;DROP TABLE x"}, 2, "not a valid table name"},
		{[]string{"outbox", "status", "--db", "sqlite:" + empty}, 1, "was it migrated"},
		{[]string{"outbox", "status", "--db", "sqlite:" + missing}, 1, "no SQLite database at " + missing},
		{[]string{"outbox", "status", "--db", missing + "?_pragma=foreign_keys(1)"}, 1, "no SQLite database at " + missing},
	} {
		r := cliEnv(t, nil, "", c.args...)
		if r.code != c.code || !strings.Contains(r.err, c.want) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 || strings.Contains(r.err, "hunter2") {
			t.Errorf("evbus %s: exit %d, stderr %q; want exit %d, one line with %q, no password", strings.Join(c.args, " "), r.code, r.err, c.code, c.want)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("outbox status created files: %v (%v), want only empty.db", entries, err)
	}
}

// TestOutboxStatusStuck: a row the relay's client refuses for its size
// shows, with its key and the reason, in the text and in --json.
func TestOutboxStatusStuck(t *testing.T) {
	const limit = 256 << 10
	enc, cl := outboxStack(t, kgo.ProducerBatchMaxBytes(limit))
	path := filepath.Join(t.TempDir(), "orders.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Pool().Close()
	// Written by a service whose events may be larger than this relay's
	// client takes.
	writer, err := outbox.New(db, enc)
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error {
		return writer.Enqueue(t.Context(), tx, outboxEvent{OrderID: "big-" + strings.Repeat("x", 300_000)})
	}); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(db, nil, outbox.MaxEventBytes(limit))
	if err != nil {
		t.Fatal(err)
	}
	relay, err := ob.Relay(cl, outbox.RelayName("cli-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(guard); ; time.Sleep(50 * time.Millisecond) {
		st, err := ob.Status(t.Context())
		if err == nil && len(st.Relays) == 1 && len(st.Relays[0].Stuck) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not find the row stuck: %+v, %v", st, err)
		}
	}

	dsn := "sqlite:" + path
	r := cliEnv(t, map[string]string{"EVBUS_DB": dsn}, "", "outbox", "status").ok(t, "outbox status")
	if !strings.Contains(r.out, "is stuck") || !strings.Contains(r.out, `"big-xxx`) || !strings.Contains(r.out, "MESSAGE_TOO_LARGE") {
		t.Errorf("outbox status does not show the stuck row, its key and why:\n%.600s", r.out)
	}
	st := readStatusJSON(t, dsn)
	if len(st.Relays) != 1 || len(st.Relays[0].Stuck) != 1 {
		t.Fatalf("--json: %+v, want one relay with one stuck row", st)
	}
	if x := st.Relays[0].Stuck[0]; x.Topic != "orders" || !strings.HasPrefix(x.Key, "big-xxx") || !strings.Contains(x.Reason, "MESSAGE_TOO_LARGE") {
		t.Errorf("--json stuck row: topic %q, key %.20q, reason %q", x.Topic, x.Key, x.Reason)
	}
}
