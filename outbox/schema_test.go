package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
)

// catalog describes a database's tables, columns and indexes.
func catalog(t *testing.T, q sqldb.Querier, query string) string {
	t.Helper()
	rows, err := q.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		b.WriteString(s + "\n")
	}
	return b.String()
}

// pgCatalog lists a PostgreSQL database's columns and indexes, outside
// the system schemas.
const pgCatalog = `SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || is_identity || ' ' || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`

// TestMigrationFilesAreMigrate: the SQL files teams run themselves make
// the same schema as Migrate, and Migrate can run again.
func TestMigrationFilesAreMigrate(t *testing.T) {
	k := startKafka(t)
	sqliteCatalog := `SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1`
	check := func(t *testing.T, file, query string, byFile, byMigrate sqldb.Querier, migrate func() error) {
		ddl, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := byFile.Exec(context.Background(), string(ddl)); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for range 2 {
			if err := migrate(); err != nil {
				t.Fatal(err)
			}
		}
		if a, b := catalog(t, byFile, query), catalog(t, byMigrate, query); a != b || a == "" {
			t.Errorf("%s makes\n%s\nMigrate makes\n%s", file, a, b)
		}
	}
	t.Run("postgres", func(t *testing.T) {
		a, b := pgxDB(t, evbustest.PostgresDatabase(t)), pgxDB(t, evbustest.PostgresDatabase(t))
		ob, err := outbox.New(b, k.enc)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "migrations/postgres.sql", pgCatalog, a, b, func() error { return ob.Migrate(context.Background()) })
	})
	t.Run("sqlite", func(t *testing.T) {
		a, b := sqliteDB(t), sqliteDB(t)
		ob, err := outbox.New(b, k.enc)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "migrations/sqlite.sql", sqliteCatalog, a, b, func() error { return ob.Migrate(context.Background()) })
	})
}

// TestOtherTableName: a schema-qualified table name works end to end.
func TestOtherTableName(t *testing.T) {
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	if _, err := db.Exec(context.Background(), "CREATE SCHEMA events"); err != nil {
		t.Fatal(err)
	}
	ob := newOutbox(t, db, k.enc, outbox.Table("events.orders_outbox"), outbox.Shards(3))
	for i := range 30 {
		enqueue(t, db, ob, OrderEvent{OrderID: key(i % 7), Seq: int64(i)})
	}
	runRelay(t, ob, k.cl)
	got := consume(t, k.stack.Brokers(), atLeast(30))
	if distinct(got) != 30 {
		t.Fatalf("%d published, want 30", distinct(got))
	}
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	s, err := ob.Status(context.Background())
	if err != nil || len(s.Relays) != 3 {
		t.Fatalf("status %+v, %v: want three shards", s, err)
	}
}

func TestBadInput(t *testing.T) {
	k := startKafka(t)
	db := sqliteDB(t)
	for _, c := range []struct {
		opts []outbox.Option
		want string
	}{
		{[]outbox.Option{outbox.Table("outbox; DROP TABLE x")}, "not a valid table name"},
		{[]outbox.Option{outbox.Table(strings.Repeat("a", 51))}, "_published_at"},
		{[]outbox.Option{outbox.Shards(0)}, "Shards(0)"},
		{[]outbox.Option{outbox.Retention(0)}, "Retention(0s)"},
		{[]outbox.Option{outbox.Telemetry(nil)}, "outbox: Telemetry(nil): pass one from tracing.New, or leave the option out (tracing.Default())"},
		{[]outbox.Option{outbox.Logger(nil)}, "outbox: Logger(nil): pass a *slog.Logger"},
		{[]outbox.Option{outbox.Shards(2), nil}, "outbox: New: option 2 is nil"},
	} {
		_, err := outbox.New(db, k.enc, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New: %v, want an error with %q", err, c.want)
		}
	}
	if _, err := outbox.New(db, k.enc, outbox.Table("x y")); !errors.Is(err, sqldb.ErrInvalidIdentifier) {
		t.Errorf("bad table name: %v, want sqldb.ErrInvalidIdentifier", err)
	}
	if _, err := outbox.New[any](nil, k.enc); err == nil {
		t.Error("New(nil) accepted")
	}
	ob := newOutbox(t, db, k.enc)
	unsafe, err := kgo.NewClient(kgo.SeedBrokers(k.stack.Brokers()...), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer unsafe.Close()
	if _, err := ob.Relay(unsafe); err == nil || !strings.Contains(err.Error(), "idempotent") {
		t.Errorf("Relay with a non-idempotent client: %v", err)
	}
	for _, c := range []struct {
		opts []outbox.RelayOption
		want string
	}{
		{[]outbox.RelayOption{outbox.BatchSize(0)}, "outbox: BatchSize(0): "},
		{[]outbox.RelayOption{outbox.PollInterval(0)}, "outbox: PollInterval(0s): "},
		{[]outbox.RelayOption{outbox.AckTimeout(-1)}, "outbox: AckTimeout(-1ns): "},
		{[]outbox.RelayOption{outbox.BatchSize(10), nil}, "outbox: Relay: option 2 is nil"},
	} {
		if _, err := ob.Relay(k.cl, c.opts...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Relay: %v, want an error with %q", err, c.want)
		}
	}
}

// TestRetention: published rows move to the published rows' table and
// stay there for the retention, then are deleted; with DeleteOnPublish
// they are deleted at once. Kept rows copied back (the recipe in
// docs/design/outbox.md) are published again, with their ce_id.
func TestRetention(t *testing.T) {
	k := startKafka(t)
	count := func(db *sqldb.SQLDB, table string) (n int64) {
		if err := sqldb.QueryRow(context.Background(), db, "SELECT count(*) FROM "+table, nil, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	kept := sqliteDB(t)
	ob := newOutbox(t, kept, k.enc, outbox.Retention(time.Hour))
	enqueue(t, kept, ob, OrderEvent{OrderID: "r", Seq: 1})
	runRelay(t, ob, k.cl, outbox.PollInterval(10*time.Millisecond))
	waitFor(t, "publication", func() bool { return backlog(t, ob) == 0 })
	if n, p := count(kept, "evbus_outbox"), count(kept, "evbus_outbox_published"); n != 0 || p != 1 {
		t.Errorf("%d rows unpublished and %d kept, want none and the published one", n, p)
	}
	if _, err := kept.Exec(context.Background(), `INSERT INTO evbus_outbox (shard, topic, key, value, headers, created_at)
		SELECT shard, topic, key, value, headers, created_at FROM evbus_outbox_published ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	again := consume(t, k.stack.Brokers(), atLeast(2))
	if len(again) != 2 || distinct(again) != 1 {
		t.Errorf("%d published with %d distinct ce_id, want the row twice with one", len(again), distinct(again))
	}
	waitFor(t, "the copy to be kept", func() bool { return count(kept, "evbus_outbox_published") == 2 })

	short := sqliteDB(t)
	ob = newOutbox(t, short, k.enc, outbox.Retention(40*time.Millisecond))
	enqueue(t, short, ob, OrderEvent{OrderID: "r", Seq: 2})
	runRelay(t, ob, k.cl, outbox.PollInterval(10*time.Millisecond))
	waitFor(t, "the row to expire", func() bool {
		return backlog(t, ob) == 0 && count(short, "evbus_outbox_published") == 0
	})

	gone := sqliteDB(t)
	ob = newOutbox(t, gone, k.enc, outbox.DeleteOnPublish())
	enqueue(t, gone, ob, OrderEvent{OrderID: "r", Seq: 3})
	runRelay(t, ob, k.cl)
	waitFor(t, "the row to be deleted", func() bool { return backlog(t, ob) == 0 })
	if p := count(gone, "evbus_outbox_published"); p != 0 {
		t.Errorf("%d rows kept with DeleteOnPublish", p)
	}
	if got := consume(t, k.stack.Brokers(), atLeast(4)); distinct(got) != 3 {
		t.Errorf("%d published, want 3", distinct(got))
	}
}

// TestRelayOnlyOutbox: an outbox made without an encoder relays what
// another enqueued, and reports Status, but cannot enqueue.
func TestRelayOnlyOutbox(t *testing.T) {
	k := startKafka(t)
	db := sqliteDB(t)
	writer := newOutbox(t, db, k.enc)
	enqueue(t, db, writer, OrderEvent{OrderID: "o-1", Seq: 1}, OrderEvent{OrderID: "o-1", Seq: 2})
	relayOnly, err := outbox.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error { return relayOnly.Enqueue(t.Context(), tx, OrderEvent{OrderID: "o-2"}) })
	if err == nil || !strings.Contains(err.Error(), "Encoder") {
		t.Fatalf("Enqueue without an encoder: %v, want an error naming the encoder", err)
	}
	if st, err := relayOnly.Status(t.Context()); err != nil || st.Backlog != 2 {
		t.Fatalf("Status: backlog %d (%v), want 2", st.Backlog, err)
	}
	runRelay(t, relayOnly, k.cl)
	got := consume(t, k.stack.Brokers(), func(p []published) bool { return len(p) >= 2 })
	if got[0].seq != 1 || got[1].seq != 2 {
		t.Fatalf("published seqs %d, %d; want 1, 2", got[0].seq, got[1].seq)
	}
}

// TestQueue: the outbox rows go with the business statement in one pgx
// batch; they are published once committed, in order, and not at all when
// the transaction rolls back.
func TestQueue(t *testing.T) {
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc)
	ctx := t.Context()
	if _, err := db.Exec(ctx, "CREATE TABLE orders (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	write := func(id string, seqs ...int64) error {
		return sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
			var b pgx.Batch
			b.Queue("INSERT INTO orders (id) VALUES ($1)", id)
			evs := make([]any, len(seqs))
			for i, s := range seqs {
				evs[i] = OrderEvent{OrderID: "o-1", Seq: s}
			}
			if err := outbox.Queue(ctx, ob, &b, evs...); err != nil {
				return err
			}
			return tx.SendBatch(ctx, &b).Close()
		})
	}
	if err := write("a", 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := write("a", 3); err == nil { // duplicate order id: the batch fails, nothing of it stays
		t.Fatal("a failing batch committed")
	}
	if err := write("b", 4); err != nil {
		t.Fatal(err)
	}
	err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		var b pgx.Batch
		return outbox.Queue(ctx, ob, &b, Unregistered{X: "x"})
	})
	if !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("Queue of an unregistered type: %v, want bus.ErrUnknownType", err)
	}
	runRelay(t, ob, k.cl)
	got := consume(t, k.stack.Brokers(), func(p []published) bool { return len(p) >= 3 })
	if len(got) != 3 || got[0].seq != 1 || got[1].seq != 2 || got[2].seq != 4 {
		t.Fatalf("published %v, want seqs 1, 2, 4", got)
	}
}

// TestMarkReadsOnlyItsBatch: the outbox table's one index is its primary
// key (shard, id). On a table PostgreSQL has no statistics for (a new
// one), the statement that ends a batch must still find the batch's rows
// through that key, not read the whole shard and filter it by the ids,
// which made the relay twice as slow.
func TestMarkReadsOnlyItsBatch(t *testing.T) {
	ctx := context.Background()
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc, outbox.DeleteOnPublish())
	if _, err := db.Exec(ctx, "ALTER TABLE evbus_outbox SET (autovacuum_enabled = false)"); err != nil {
		t.Fatal(err)
	}
	const rows, batch = 20_000, 1000
	fill(t, db, ob, rows)
	ids := make([]int64, 0, batch)
	for id := int64(rows / 2); len(ids) < batch; id++ {
		ids = append(ids, id)
	}
	query, args := outbox.DeleteBatch(ob, 0, ids)
	err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, outbox.RelaySession); err != nil {
			return err
		}
		var plan string
		if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+query, args...).Scan(&plan); err != nil {
			return err
		}
		var scans []struct {
			Plan struct {
				Plans []map[string]any
			}
		}
		if err := json.Unmarshal([]byte(plan), &scans); err != nil || len(scans) != 1 || len(scans[0].Plan.Plans) != 1 {
			return fmt.Errorf("plan %s: %v", plan, err)
		}
		scan := scans[0].Plan.Plans[0]
		if scan["Index Name"] != "evbus_outbox_pkey" || scan["Actual Rows"] != float64(batch) || scan["Rows Removed by Filter"] != nil && scan["Rows Removed by Filter"] != 0.0 {
			t.Errorf("the batch's delete read %v rows and filtered out %v through index %v, want %d rows read through evbus_outbox_pkey and none filtered out:\n%s",
				scan["Actual Rows"], scan["Rows Removed by Filter"], scan["Index Name"], batch, plan)
		}
		return errors.New("rolled back") // the plan is all that was wanted
	})
	if err == nil || err.Error() != "rolled back" {
		t.Fatal(err)
	}
}

// TestUpgradeKeepsEveryRow: Migrate upgrades the tables of an evbus from
// before the published rows' table (testdata/before-published-table-*.sql),
// where published rows stayed in the outbox table: the published rows
// move to the published rows' table with their time, the unpublished ones
// stay and are published, ids go on, and the tables are those a new
// database gets.
func TestUpgradeKeepsEveryRow(t *testing.T) {
	k := startKafka(t)
	t.Run("postgres", func(t *testing.T) {
		db, fresh := pgxDB(t, evbustest.PostgresDatabase(t)), pgxDB(t, evbustest.PostgresDatabase(t))
		for _, q := range []sqldb.Querier{db, fresh} {
			if _, err := q.Exec(context.Background(), "CREATE SCHEMA events"); err != nil {
				t.Fatal(err)
			}
		}
		upgrade(t, k, db, fresh, "testdata/before-published-table-postgres.sql", "events.orders_outbox", pgCatalog)
	})
	t.Run("sqlite", func(t *testing.T) {
		upgrade(t, k, sqliteDB(t), sqliteDB(t), "testdata/before-published-table-sqlite.sql", "evbus_outbox",
			`SELECT m.name || '.' || p.name || ' ' || p.type || ' ' || p."notnull" || ' ' || p.pk || ' ' || coalesce(p.dflt_value, '') FROM sqlite_master AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' UNION ALL SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY 1`)
	})
}

func upgrade[Tx any](t *testing.T, k kafka, db, fresh sqldb.DB[Tx], file, table, catalogQuery string) {
	ctx := context.Background()
	prefix := t.Name() + "/"
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The earlier Outbox.DDL's names for table.
	base := table[strings.LastIndexByte(table, '.')+1:]
	ddl := strings.NewReplacer("evbus_outbox_pending", base+"_pending", "evbus_outbox_published", base+"_published",
		"evbus_outbox", table).Replace(string(old))
	if err := sqldb.Migrate(ctx, db, ddl); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(db, k.enc, outbox.Table(table))
	if err != nil {
		t.Fatal(err)
	}
	// Rows 1-3 published and marked by the earlier relay, 4 and 5 not.
	for i := 1; i <= 5; i++ {
		enqueue(t, db, ob, OrderEvent{OrderID: prefix + "a", Seq: int64(i)})
	}
	marked := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if _, err := db.Exec(ctx, fmt.Sprintf("UPDATE %s SET published_at = %s, attempts = 1 WHERE id <= 3", table, db.Dialect().Arg(1)), db.Dialect().Time(marked)); err != nil {
		t.Fatal(err)
	}

	if err := ob.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(ctx); err != nil { // and again: nothing left to upgrade
		t.Fatal(err)
	}
	if n := backlog(t, ob); n != 2 {
		t.Errorf("backlog %d after the upgrade, want rows 4 and 5", n)
	}
	var n int64
	var at sqldb.Time
	if err := sqldb.QueryRow(ctx, db, fmt.Sprintf("SELECT count(*), min(published_at) FROM %s_published WHERE id <= 3", table), nil, &n, &at); err != nil {
		t.Fatal(err)
	}
	if n != 3 || !at.Time.Equal(marked) {
		t.Errorf("%d published rows kept, published at %v; want rows 1-3 at %v", n, at.Time, marked)
	}
	ofFresh, err := outbox.New(fresh, k.enc, outbox.Table(table))
	if err != nil {
		t.Fatal(err)
	}
	if err := ofFresh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := catalog(t, db, catalogQuery), catalog(t, fresh, catalogQuery); got != want {
		t.Errorf("upgraded tables\n%s\nwant those of a new database\n%s", got, want)
	}

	enqueue(t, db, ob, OrderEvent{OrderID: prefix + "a", Seq: 6})
	runRelay(t, ob, k.cl)
	mine := withPrefix(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(withPrefix(ps, prefix)) >= 3 }), prefix)
	if dups := checkOrder(t, mine, map[string][]int64{prefix + "a": {4, 5, 6}}); dups != 0 || len(mine) != 3 {
		t.Errorf("%d events published after the upgrade, %d repeated; want 4, 5 and 6 once", len(mine), dups)
	}
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	if err := sqldb.QueryRow(ctx, db, fmt.Sprintf("SELECT count(*) FROM %s_published WHERE id > 5", table), nil, &n); err != nil || n != 1 {
		t.Errorf("%d rows after 5 kept as published (%v), want the new one: ids go on after the upgrade", n, err)
	}
}
