package outbox_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
)

// TestTableNamesAreQuoted: SQL keywords and schema-qualified names work as
// outbox tables on both dialects, from New to a published event and
// Status, and so do the migration statements written for them.
func TestTableNamesAreQuoted(t *testing.T) {
	k := startKafka(t)
	t.Run("postgres", func(t *testing.T) {
		db := pgxDB(t, evbustest.PostgresDatabase(t))
		if _, err := db.Exec(context.Background(), "CREATE SCHEMA myschema"); err != nil {
			t.Fatal(err)
		}
		tableNames(t, k, db, "order", "user", "select", "myschema.outbox", "MySchema.Order")
	})
	t.Run("sqlite", func(t *testing.T) {
		tableNames(t, k, sqliteDB(t), "order", "user", "select", "main.outbox", "main.select_x")
	})
}

func tableNames[Tx any](t *testing.T, k kafka, db sqldb.DB[Tx], names ...string) {
	ctx := context.Background()
	prefix := t.Name() + "/"
	for _, name := range names {
		ob, err := outbox.New(db, k.enc, outbox.Table(name))
		if err != nil {
			t.Fatalf("New, table %s: %v", name, err)
		}
		if err := ob.Migrate(ctx); err != nil {
			t.Fatalf("Migrate, table %s: %v", name, err)
		}
		if err := ob.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again, table %s: %v", name, err)
		}
		enqueue(t, db, ob, OrderEvent{OrderID: prefix + name, Seq: 1})
		runRelay(t, ob, k.cl)
		waitFor(t, "the backlog of "+name+" published", func() bool { return backlog(t, ob) == 0 })
		s, err := ob.Status(ctx)
		if err != nil || len(s.Relays) != 1 || s.Relays[0].LastError != "" {
			t.Errorf("Status, table %s: %+v, %v: want one relay without an error", name, s, err)
		}
	}
	got := withPrefix(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(withPrefix(ps, prefix)) >= len(names) }), prefix)
	want := map[string][]int64{}
	for _, name := range names {
		want[prefix+name] = []int64{1}
	}
	if dups := checkOrder(t, got, want); dups != 0 {
		t.Errorf("%d events published twice", dups)
	}
}

// A refused table name's error states the rule.
func TestRefusedTableNameStatesTheRule(t *testing.T) {
	k := startKafka(t)
	for _, name := range []string{`order"; DROP TABLE x; --`, "a.b.c", "1outbox", "out box"} {
		_, err := outbox.New(sqliteDB(t), k.enc, outbox.Table(name))
		if !errors.Is(err, sqldb.ErrInvalidIdentifier) || !strings.Contains(err.Error(), sqldb.IdentifierRule) {
			t.Errorf("table %q: %v, want ErrInvalidIdentifier stating the rule", name, err)
		}
	}
}
