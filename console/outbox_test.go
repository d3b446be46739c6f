package console_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

type orderPlaced struct {
	OrderID string `avro:"order_id"`
}

var orderPlacedType = bus.Event[orderPlaced]("orders", func(e *orderPlaced) string { return e.OrderID }, bus.Namespace("com.example.console"))

// TestOutboxPage: the page shows an outbox's backlog and oldest row on
// real SQLite, then the relay's shard once it published them; without a
// source it says how to give one.
func TestOutboxPage(t *testing.T) {
	var ob *outbox.Outbox[*sql.Tx]
	f := newFixture(t, func(c *console.Config) {
		c.Outbox = console.OutboxSource{Table: "evbus_outbox", HolderUnknown: true,
			Status: func(ctx context.Context) (outbox.Status, error) { return ob.Status(ctx) }}
	})
	if err := bus.CreateTopics(t.Context(), kadm.NewClient(f.cl), bus.TopicSpec{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(t.Context(), f.reg, bus.Source("/orders"), bus.Types(orderPlacedType))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "orders.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Pool().Close()
	if ob, err = outbox.New(db, enc); err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		if err := sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error { return ob.Enqueue(t.Context(), tx, orderPlaced{OrderID: id}) }); err != nil {
			t.Fatal(err)
		}
	}
	r := f.do(t, nil, "GET", "/outbox", nil, bearerViewer)
	if r.code != 200 || !strings.Contains(r.body, `<dd id="backlog">3 unpublished</dd>`) || !strings.Contains(r.body, "No relay has run yet.") ||
		!strings.Contains(between(r.body, `<dd id="oldest">`, "</dd>"), " ago (") {
		t.Errorf("outbox page before a relay ran: %d\n%s", r.code, r.body)
	}

	relay, err := ob.Relay(f.cl, outbox.RelayName("console-test"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := ob.Status(t.Context())
		if err == nil && st.Backlog == 0 && len(st.Relays) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not publish: %+v, %v", st, err)
		}
	}
	r = f.do(t, nil, "GET", "/outbox", nil, bearerViewer)
	row := between(r.body, `<tr data-shard="0">`, "</tr>")
	if r.code != 200 || !strings.Contains(r.body, `<dd id="backlog">0 unpublished</dd>`) || !strings.Contains(r.body, `<table id="relays">`) ||
		!strings.HasPrefix(cells(row), "0|console-test|") || !strings.Contains(cells(row), "|unknown|") || !strings.HasSuffix(cells(row), "|-|0") {
		t.Errorf("outbox page after the relay published: %d, row %q\n%s", r.code, cells(row), r.body)
	}
}

func TestOutboxPageNotConfigured(t *testing.T) {
	f := newFixture(t)
	if r := f.do(t, nil, "GET", "/outbox", nil, bearerViewer); r.code != 200 || !strings.Contains(r.body, `id="outbox-none"`) || !strings.Contains(r.body, "--db") {
		t.Errorf("outbox page without a source: %d\n%s", r.code, r.body)
	}
}
