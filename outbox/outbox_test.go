package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

// TestRollbackNothingCommitOnceInOrder: a rolled-back transaction's
// events are never published; committed ones are, once each, in per-key
// order, with every header the encoder gave them.
func TestRollbackNothingCommitOnceInOrder(t *testing.T) {
	eachDB(t, startKafka(t), rollbackAndCommit, rollbackAndCommit)
}

// eachDB runs a test, given once for each kind of transaction, on a fresh
// database of every kind: PostgreSQL through pgx and through
// database/sql, and SQLite.
func eachDB(t *testing.T, k kafka, pg func(*testing.T, kafka, sqldb.DB[pgx.Tx]), std func(*testing.T, kafka, sqldb.DB[*sql.Tx])) {
	t.Run("pgx", func(t *testing.T) { pg(t, k, pgxDB(t, evbustest.PostgresDatabase(t))) })
	t.Run("postgres-stdlib", func(t *testing.T) { std(t, k, stdlibDB(t, evbustest.PostgresDatabase(t))) })
	t.Run("sqlite", func(t *testing.T) { std(t, k, sqliteDB(t)) })
}

func rollbackAndCommit[Tx any](t *testing.T, k kafka, db sqldb.DB[Tx]) {
	ctx := context.Background()
	// Each subtest publishes its own keys to the shared topic.
	prefix := t.Name() + "/"
	ob := newOutbox(t, db, k.enc)
	boom := errors.New("business rule broken")
	if err := sqldb.InTx(ctx, db, func(tx Tx) error {
		if err := ob.Enqueue(ctx, tx, OrderEvent{OrderID: prefix + "rolled-back", Seq: 1}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	// An event that cannot be encoded fails Enqueue, and the transaction
	// with it: the good event before it in the call is not written either.
	err := sqldb.InTx(ctx, db, func(tx Tx) error {
		return ob.Enqueue(ctx, tx, OrderEvent{OrderID: prefix + "rolled-back", Seq: 2}, Unregistered{X: "?"})
	})
	if !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("Enqueue of an unregistered type: %v, want bus.ErrUnknownType", err)
	}

	want := map[string][]int64{}
	cctx := bus.WithCorrelationID(ctx, "conversation-1")
	for i := range 3 {
		var evs []any
		for j := range 2 {
			kk := prefix + key(j)
			evs = append(evs, &OrderEvent{OrderID: kk, Seq: int64(i)})
			want[kk] = append(want[kk], int64(i))
		}
		if err := sqldb.InTx(cctx, db, func(tx Tx) error { return ob.Enqueue(cctx, tx, evs...) }); err != nil {
			t.Fatal(err)
		}
	}
	if n := backlog(t, ob); n != 6 {
		t.Fatalf("backlog %d, want 6", n)
	}
	runRelay(t, ob, k.cl, outbox.RelayName("relay-"+t.Name()))
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })

	mine := withPrefix(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(withPrefix(ps, prefix)) >= 6 }), prefix)
	if dups := checkOrder(t, mine, want); dups != 0 || len(mine) != 6 {
		t.Errorf("%d events published, %d repeated; want 6, none repeated", len(mine), dups)
	}
	for _, h := range []string{wire.HeaderSpecVersion, wire.HeaderID, wire.HeaderSource, wire.HeaderType, wire.HeaderTime, wire.HeaderContentType, wire.HeaderSubject} {
		if v, _ := testkit.Header(mine[0].rec.Headers, h); len(v) == 0 {
			t.Errorf("header %s missing", h)
		}
	}
	if v, _ := testkit.Header(mine[0].rec.Headers, wire.HeaderCorrelationID); v != "conversation-1" {
		t.Errorf("correlation id %q, want the caller's", v)
	}

	s, err := ob.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Relays) != 1 || s.Relays[0].Holder != "relay-"+t.Name() || !s.Relays[0].Active || s.Backlog != 0 || !s.Oldest.IsZero() {
		t.Errorf("status %+v", s)
	}
}

// withPrefix returns the events of ps whose key starts with prefix.
func withPrefix(ps []published, prefix string) []published {
	var mine []published
	for _, p := range ps {
		if strings.HasPrefix(p.key, prefix) {
			mine = append(mine, p)
		}
	}
	return mine
}

// TestExec: the business statement and the outbox rows commit together
// (one statement on PostgreSQL), or not at all when either fails; a call
// writing more rows than one statement takes keeps their order.
func TestExec(t *testing.T) {
	eachDB(t, startKafka(t), execAndEnqueue, execAndEnqueue)
}

func execAndEnqueue[Tx any](t *testing.T, k kafka, db sqldb.DB[Tx]) {
	ctx := context.Background()
	prefix := t.Name() + "/"
	ob := newOutbox(t, db, k.enc)
	if _, err := db.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY, cents bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	insert := fmt.Sprintf("INSERT INTO orders (id, cents) VALUES (%s, %s)", db.Dialect().Arg(1), db.Dialect().Arg(2))
	exec := func(id string, seqs ...int64) error {
		evs := make([]any, len(seqs))
		for i, s := range seqs {
			evs[i] = OrderEvent{OrderID: prefix + "a", Seq: s}
		}
		return sqldb.InTx(ctx, db, func(tx Tx) error { return ob.Exec(ctx, tx, insert, []any{id, int64(len(seqs))}, evs...) })
	}
	// More rows than one statement takes, in one call.
	want := make([]int64, 11000) // 66,000 parameters: over PostgreSQL's limit in one statement
	for i := range want {
		want[i] = int64(i + 1)
	}
	if err := exec("o-1", want...); err != nil {
		t.Fatal(err)
	}
	if err := exec("o-1", 9999); err == nil || !strings.Contains(err.Error(), "exec and enqueue") {
		t.Fatalf("Exec with a duplicate business row: %v, want its error", err)
	}
	err := sqldb.InTx(ctx, db, func(tx Tx) error {
		return ob.Exec(ctx, tx, insert, []any{"o-2", int64(1)}, Unregistered{X: "x"})
	})
	if !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("Exec of an unregistered type: %v, want bus.ErrUnknownType", err)
	}
	// No events: the business statement alone.
	if err := exec("o-3"); err != nil {
		t.Fatal(err)
	}
	if ids := catalog(t, db, "SELECT id FROM orders ORDER BY id"); ids != "o-1\no-3\n" {
		t.Errorf("business rows %q, want o-1 and o-3", ids)
	}
	if n := backlog(t, ob); n != int64(len(want)) {
		t.Fatalf("backlog %d, want %d", n, len(want))
	}
	runRelay(t, ob, k.cl, outbox.RelayName("relay-"+t.Name()))
	mine := withPrefix(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(withPrefix(ps, prefix)) >= len(want) }), prefix)
	if dups := checkOrder(t, mine, map[string][]int64{prefix + "a": want}); dups != 0 {
		t.Errorf("%d events repeated", dups)
	}
}

// TestExecPreparesAFewStatements: on PostgreSQL, Exec runs the statements
// of its first outbox.MaxPrepared shapes prepared on the connection,
// where they stay; the shapes after those run as pgx runs any statement,
// so that a service building business statements anew every time does
// not pile them up on its connections.
func TestExecPreparesAFewStatements(t *testing.T) {
	ctx := t.Context()
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc, outbox.Notify(false)) // one shape per business statement
	if _, err := db.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	shapes := outbox.MaxPrepared + 6
	err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		for i := range shapes {
			id := fmt.Sprint("o-", i)
			query := fmt.Sprintf("INSERT INTO orders (id) VALUES ($1) -- shape %d", i)
			if err := ob.Exec(ctx, tx, query, []any{id}, OrderEvent{OrderID: id}); err != nil {
				return err
			}
		}
		var prepared, rows int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'stmt\\_%' AND statement LIKE '%shape%'").Scan(&prepared); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM evbus_outbox").Scan(&rows); err != nil {
			return err
		}
		if prepared != outbox.MaxPrepared || rows != shapes {
			t.Errorf("%d statements prepared and %d rows, want %d and %d", prepared, rows, outbox.MaxPrepared, shapes)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCommitOrderTrap: PostgreSQL assigns ids at insert, not at commit.
// A transaction with a smaller id that commits after a larger one is
// published all the same (the relay keeps no cursor to pass it by), and
// two transactions writing one key take turns, so that key's ids follow
// commit order.
func TestCommitOrderTrap(t *testing.T) {
	// t2 takes the statement of one row, or the one that locks several
	// keys: each must lock before its rows get their ids.
	t.Run("one-event", func(t *testing.T) {
		commitOrderTrap(t, []any{OrderEvent{OrderID: "a", Seq: 2}}, map[string][]int64{"a": {1, 2}, "b": {1}}, "aba")
	})
	t.Run("several-keys", func(t *testing.T) {
		commitOrderTrap(t, []any{OrderEvent{OrderID: "a", Seq: 2}, OrderEvent{OrderID: "d", Seq: 1}}, map[string][]int64{"a": {1, 2}, "b": {1}, "d": {1}}, "abad")
	})
}

// commitOrderTrap runs t1 (a/1, left open), t2 (t2events, which write a
// and so wait for t1) and t3 (b/1, committed at once), then commits t1;
// want is what must be published, in order per key, and keys the keys
// of the rows in id order.
func commitOrderTrap(t *testing.T, t2events []any, want map[string][]int64, keys string) {
	ctx := context.Background()
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc)
	runRelay(t, ob, k.cl, outbox.PollInterval(50*time.Millisecond))

	// t1 takes the smaller id for key a, and stays open.
	t1, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Rollback(ctx, t1)
	if err := ob.Enqueue(ctx, t1, OrderEvent{OrderID: "a", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// t2 writes the same key: it waits for t1.
	t2done := make(chan error, 1)
	go func() {
		t2done <- sqldb.InTx(ctx, db, func(tx pgx.Tx) error { return ob.Enqueue(ctx, tx, t2events...) })
	}()
	waitFor(t, "t2 to wait for t1's lock", func() bool {
		var n int64
		if err := sqldb.QueryRow(ctx, db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()", nil, &n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	// t3 takes a larger id for key b and commits first; the relay
	// publishes it while t1 is still open.
	enqueue(t, db, ob, OrderEvent{OrderID: "b", Seq: 1})
	if early := consume(t, k.stack.Brokers(), atLeast(1)); len(early) != 1 || early[0].key != "b" {
		t.Fatalf("published while t1 is open: %+v, want b/1 only", early)
	}
	select {
	case err := <-t2done:
		t.Fatalf("t2 committed before t1 (%v)", err)
	default:
	}
	// Now the smaller id commits last of t1 and t3.
	if err := db.Commit(ctx, t1); err != nil {
		t.Fatal(err)
	}
	if err := <-t2done; err != nil {
		t.Fatal(err)
	}
	got := consume(t, k.stack.Brokers(), atLeast(len(t2events)+2))
	if dups := checkOrder(t, got, want); dups != 0 {
		t.Errorf("%d events repeated", dups)
	}
	// t1's a/1 has the smallest id and was published after b/1's larger
	// one; t2's rows got their ids after t1 committed, so after b/1's,
	// although t2 sent its statement before t3.
	if got := catalog(t, db, "SELECT string_agg(convert_from(key, 'UTF8'), '' ORDER BY id) FROM (SELECT id, key FROM evbus_outbox UNION ALL SELECT id, key FROM evbus_outbox_published) AS r"); got != keys+"\n" {
		t.Errorf("keys in id order %q, want %q", got, keys+"\n")
	}
}

// TestNotifyWakesIdleRelay: a relay that waits for a wake-up and would
// not look again for an hour publishes a committed row: the commit's
// notification woke it. (The relay listens before it takes a shard.)
func TestNotifyWakesIdleRelay(t *testing.T) {
	ctx := t.Context()
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc)
	runRelay(t, ob, k.cl, outbox.PollInterval(time.Hour))
	waitFor(t, "the relay to be idle", func() bool {
		s, err := ob.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Relays) == 1 && s.Relays[0].Idle
	})
	enqueue(t, db, ob, OrderEvent{OrderID: "a", Seq: 1})
	if got := consume(t, k.stack.Brokers(), atLeast(1)); len(got) != 1 || got[0].key != "a" {
		t.Fatalf("published %+v, want a/1", got)
	}
}
