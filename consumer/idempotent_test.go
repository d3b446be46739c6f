package consumer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
	"github.com/evbus/evbus/wire"
)

// The databases the idempotent handlers are tested on.
const (
	pgxDB    = "pgx"             // PostgreSQL through a pgx pool
	stdlibDB = "postgres-stdlib" // PostgreSQL through database/sql and pgx's stdlib driver
	sqliteDB = "sqlite"          // SQLite through modernc.org/sqlite
)

var allDBs = []string{pgxDB, stdlibDB, sqliteDB}

// effectFunc is a transactional handler written once for every database:
// q runs statements in the handler's transaction.
type effectFunc func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error

// tdb is a test database with a migrated processed-message table and an
// effects table the handlers write to.
type tdb struct {
	kind string
	url  string // PostgreSQL URL or SQLite path
	q    sqldb.Querier
	d    sqldb.Dialect
	// migrate is Migrate of the database's Processed.
	migrate func(ctx context.Context) error
	handle  func(c *consumer.Consumer, fn effectFunc, opts ...consumer.HandlerOption)
	// handleBatch registers fn with HandleBatchTx.
	handleBatch func(c *consumer.Consumer, fn func(ctx context.Context, q sqldb.Querier, evs []*Order, ms []bus.Meta) error, opts ...consumer.HandlerOption)
	clean       func(ctx context.Context, olderThan time.Duration) (int64, error)
	ddl         string
	table       string // the processed-message table, quoted
}

// openDB returns a new database of kind with the processed-message and
// effects tables.
func openDB(t testing.TB, kind string) *tdb {
	t.Helper()
	db := emptyDB(t, kind)
	if err := db.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := createEffects(context.Background(), db.q, db.d); err != nil {
		t.Fatal(err)
	}
	return db
}

// emptyDB returns a new database of kind, without tables.
func emptyDB(t testing.TB, kind string, opts ...consumer.ProcessedOption) *tdb {
	t.Helper()
	url := filepath.Join(t.TempDir(), "svc.db")
	if kind != sqliteDB {
		url = evbustest.PostgresDatabase(t)
	}
	db, closeDB, err := dialDB(context.Background(), kind, url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeDB)
	return db
}

// dialDB opens the database of kind at url (a PostgreSQL URL or an SQLite
// path).
func dialDB(ctx context.Context, kind, url string, opts ...consumer.ProcessedOption) (db *tdb, closeDB func(), err error) {
	switch kind {
	case pgxDB:
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		return makeTDB(kind, url, sqldb.Pgx(pool), pool.Close, opts...)
	case stdlibDB:
		sdb, err := sql.Open("pgx", url)
		if err != nil {
			return nil, nil, err
		}
		return makeTDB(kind, url, sqldb.SQL(sdb, sqldb.Postgres), func() { sdb.Close() }, opts...)
	case sqliteDB:
		sdb, err := sqlite.Open(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		return makeTDB(kind, url, sdb, func() { sdb.Pool().Close() }, opts...)
	}
	return nil, nil, fmt.Errorf("unknown database %q", kind)
}

// makeTDB returns db as a tdb, and closeDB; it closes db when it fails.
func makeTDB[Tx any](kind, url string, db sqldb.DB[Tx], closeDB func(), opts ...consumer.ProcessedOption) (*tdb, func(), error) {
	p, err := consumer.NewProcessed(db, opts...)
	if err != nil {
		closeDB()
		return nil, nil, err
	}
	table, err := sqldb.QuoteTable(db.Dialect(), p.Table())
	if err != nil {
		closeDB()
		return nil, nil, err
	}
	return &tdb{
		kind: kind, url: url, q: db, d: db.Dialect(), clean: p.Cleanup, ddl: p.MigrationSQL(), table: table.String(),
		migrate: p.Migrate,
		handle: func(c *consumer.Consumer, fn effectFunc, opts ...consumer.HandlerOption) {
			consumer.HandleTx(c, orderPlaced, p, func(ctx context.Context, tx Tx, ev *Order, m bus.Meta) error {
				return fn(ctx, db.In(tx), ev, m)
			}, opts...)
		},
		handleBatch: func(c *consumer.Consumer, fn func(ctx context.Context, q sqldb.Querier, evs []*Order, ms []bus.Meta) error, opts ...consumer.HandlerOption) {
			consumer.HandleBatchTx(c, orderPlaced, p, func(ctx context.Context, tx Tx, evs []*Order, ms []bus.Meta) error {
				return fn(ctx, db.In(tx), evs, ms)
			}, opts...)
		},
	}, closeDB, nil
}

// createEffects creates the table the test handlers write their effects
// to: one row per handler run that was committed. written_at (PostgreSQL)
// is when the row was written, by the database's clock.
func createEffects(ctx context.Context, q sqldb.Querier, d sqldb.Dialect) error {
	written := ""
	if d.Name() == "postgres" {
		written = ", written_at timestamptz NOT NULL DEFAULT clock_timestamp()"
	}
	_, err := q.Exec(ctx, "CREATE TABLE effects ("+d.IdentityColumn("n")+
		", grp TEXT NOT NULL, message_id TEXT NOT NULL, order_id TEXT NOT NULL, seq BIGINT NOT NULL, part INTEGER NOT NULL, off BIGINT NOT NULL"+written+")")
	return err
}

// effect is the handler that writes one effect row for group, with the
// message id as the processed table stores it (any id is text there).
func effect(d sqldb.Dialect, group string) effectFunc {
	a := d.Arg
	stmt := "INSERT INTO effects (grp, message_id, order_id, seq, part, off) VALUES (" +
		a(1) + ", " + a(2) + ", " + a(3) + ", " + a(4) + ", " + a(5) + ", " + a(6) + ")"
	return func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
		_, err := q.Exec(ctx, stmt, group, consumer.ProcessedID(m.ID), ev.OrderID, ev.Seq, m.Partition, m.Offset)
		return err
	}
}

// count runs a count query.
func (db *tdb) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int64
	if err := sqldb.QueryRow(context.Background(), db.q, query, args, &n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return int(n)
}

// effects returns the effect rows of group and how many distinct
// messages they are of.
func (db *tdb) effects(t testing.TB, group string) (rows, distinct int) {
	t.Helper()
	var n, d int64
	if err := sqldb.QueryRow(context.Background(), db.q,
		"SELECT count(*), count(DISTINCT message_id) FROM effects WHERE grp = "+db.d.Arg(1), []any{group}, &n, &d); err != nil {
		t.Fatal(err)
	}
	return int(n), int(d)
}

func (db *tdb) processed(t testing.TB, group string) int {
	t.Helper()
	return db.count(t, "SELECT count(*) FROM "+db.table+" WHERE consumer_group = "+db.d.Arg(1), group)
}

// eachDB runs f on each of the databases named.
func eachDB(t *testing.T, kinds []string, f func(t *testing.T, db *tdb)) {
	for _, k := range kinds {
		t.Run(k, func(t *testing.T) { f(t, openDB(t, k)) })
	}
}

// encoder builds the records the publisher would send.
func (e *env) encoder() *bus.Encoder {
	e.t.Helper()
	enc, err := bus.NewEncoder(context.Background(), e.reg, bus.Source("/test"), bus.Types(orderPlaced))
	if err != nil {
		e.t.Fatal(err)
	}
	return enc
}

// produce sends copies of recs as they are, headers and all.
func (e *env) produce(topic string, recs ...*kgo.Record) {
	e.t.Helper()
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
	}
	if err := e.cl.ProduceSync(context.Background(), out...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

func settledCount(c *consumer.Consumer) uint64 {
	s := c.Stats()
	n := s.Handled + s.Duplicates + s.Skipped + s.RetryTopic
	for _, v := range s.DeadLettered {
		n += v
	}
	return n
}

// TestIdempotentDuplicateDelivery publishes every event twice with the
// same ce_id: each effect is applied once, the second deliveries are
// duplicates, one transaction per record and in batches.
func TestIdempotentDuplicateDelivery(t *testing.T) {
	eachDB(t, allDBs, func(t *testing.T, db *tdb) {
		e := start(t)
		e.topics(3, "orders")
		enc := e.encoder()
		const events = 30
		var recs []*kgo.Record
		for i := range events {
			r, err := enc.Record(context.Background(), &Order{OrderID: fmt.Sprintf("order-%02d", i%7), Seq: int64(i)})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		e.produce("orders", recs...)
		e.produce("orders", recs...) // the same records again: a producer retrying, say
		for _, mode := range []struct {
			group string
			opts  []consumer.HandlerOption
		}{{"per-record", nil}, {"batched", []consumer.HandlerOption{consumer.Batch(100)}}} {
			rec := evbustest.NewRecorder()
			c := e.consumer(mode.group, rec.Option())
			db.handle(c, effect(db.d, mode.group), mode.opts...)
			run(t, c)
			waitFor(t, "every record settled", func() bool { return settledCount(c) == 2*events })
			if n, d := db.effects(t, mode.group); n != events || d != events {
				t.Errorf("%s: %d effects of %d events, want %d of %d", mode.group, n, d, events, events)
			}
			if n := db.processed(t, mode.group); n != events {
				t.Errorf("%s: %d processed rows, want %d", mode.group, n, events)
			}
			st := c.Stats()
			dups := 0
			for _, o := range rec.Outcomes() {
				if o.Result == consumer.Duplicate {
					dups++
				}
			}
			if st.Handled != events || st.Duplicates != events || dups != events {
				t.Errorf("%s: handled %d, duplicates %d (recorder saw %d), want %d each", mode.group, st.Handled, st.Duplicates, dups, events)
			}
		}
	})
}

// TestIdempotentDeadLetterReplay fails an event for good, replays it from
// the dead-letter topic (it is handled), then replays it again: the effect
// is applied once.
func TestIdempotentDeadLetterReplay(t *testing.T) {
	eachDB(t, allDBs, func(t *testing.T, db *tdb) {
		e := start(t)
		const group = "replay"
		dlt := wire.DeadLetterTopic("orders", group)
		e.topics(1, "orders", dlt)
		var runs atomic.Int32
		c := e.consumer(group)
		eff := effect(db.d, group)
		db.handle(c, func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
			if err := eff(ctx, q, ev, m); err != nil {
				return err
			}
			if runs.Add(1) == 1 {
				return consumer.Permanent(errors.New("the account is frozen")) // until an operator fixes it
			}
			return nil
		})
		run(t, c)
		e.publish(&Order{OrderID: "order-1", Seq: 1})
		evbustest.ExpectDeadLettered(t, e.stack, "orders", group, nil)
		if n, _ := db.effects(t, group); n != 0 {
			t.Fatalf("%d effects of a dead-lettered event, want 0", n)
		}
		if n := db.processed(t, group); n != 0 {
			t.Fatalf("%d processed rows for a dead-lettered event, want 0", n)
		}
		dl := e.read(dlt, 1)[0]
		e.produce("orders", dl)
		waitFor(t, "the replayed record handled", func() bool { return c.Stats().Handled == 1 })
		e.produce("orders", dl) // replayed once more, by mistake
		waitFor(t, "the second replay skipped", func() bool { return c.Stats().Duplicates == 1 })
		if n, d := db.effects(t, group); n != 1 || d != 1 {
			t.Errorf("%d effects (%d events), want 1", n, d)
		}
		if got := runs.Load(); got != 2 {
			t.Errorf("handler ran %d times, want 2 (the failure, the first replay)", got)
		}
	})
}

// TestIdempotentHandlerError fails a handler after it wrote its effect
// (an error, a panic): its retry finds neither the effect nor the
// processed row, and applies the effect once.
func TestIdempotentHandlerError(t *testing.T) {
	eachDB(t, allDBs, func(t *testing.T, db *tdb) {
		e := start(t)
		const group = "errors"
		e.topics(1, "orders", wire.DeadLetterTopic("orders", group))
		c := e.consumer(group)
		eff := effect(db.d, group)
		var mu sync.Mutex
		left := map[string]string{} // message id -> what the retry found
		db.handle(c, func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
			if consumer.Attempt(ctx) == 2 {
				// Outside the transaction: what the failed run left behind.
				effects := db.count(t, "SELECT count(*) FROM effects WHERE message_id = "+db.d.Arg(1), m.ID)
				rows := db.count(t, "SELECT count(*) FROM evbus_processed WHERE message_id = "+db.d.Arg(1), m.ID)
				mu.Lock()
				left[m.ID] = fmt.Sprintf("%d effects, %d processed rows", effects, rows)
				mu.Unlock()
			}
			if err := eff(ctx, q, ev, m); err != nil {
				return err
			}
			switch {
			case ev.Note == "never":
				return consumer.Permanent(errors.New("refused"))
			case consumer.Attempt(ctx) > 1:
				return nil
			case ev.Note == "panic":
				panic("the handler's bug")
			}
			return errors.New("a conflict, say")
		})
		run(t, c)
		e.publish(&Order{OrderID: "o-1", Note: "error"}, &Order{OrderID: "o-2", Note: "panic"}, &Order{OrderID: "o-3", Note: "never"})
		waitFor(t, "every record settled", func() bool { return settledCount(c) == 3 })
		mu.Lock()
		for id, found := range left {
			if found != "0 effects, 0 processed rows" {
				t.Errorf("%s: the retry found %s of the failed run, want none", id, found)
			}
		}
		if len(left) != 2 {
			t.Errorf("%d retries checked, want 2", len(left))
		}
		mu.Unlock()
		st := c.Stats()
		if st.Handled != 2 || st.Retried != 2 || st.DeadLettered[wire.KindPermanent] != 1 {
			t.Errorf("stats %+v: want 2 handled after 2 retries, 1 dead-lettered", st)
		}
		if n, d := db.effects(t, group); n != 2 || d != 2 {
			t.Errorf("%d effects of %d events, want 2 of 2 (none of the dead-lettered one)", n, d)
		}
		if n := db.processed(t, group); n != 2 {
			t.Errorf("%d processed rows, want 2", n)
		}
	})
}

// TestIdempotentBatchOneBad handles 100 records in batches, one of which
// always fails: the 99 others are committed once, the bad one is retried
// and dead-lettered, the records of its key after it wait for it, and a
// restart from the first offset applies nothing twice.
func TestIdempotentBatchOneBad(t *testing.T) {
	eachDB(t, []string{pgxDB, sqliteDB}, func(t *testing.T, db *tdb) {
		e := start(t)
		const group = "batch"
		e.topics(1, "orders", wire.DeadLetterTopic("orders", group))
		const keys, perKey = 10, 10
		e.publish(orders(keys, perKey)...)
		bad := func(ev *Order) bool { return ev.OrderID == "order-003" && ev.Seq == 4 }

		var mu sync.Mutex
		txs := map[string]bool{}
		consume := func() (*consumer.Consumer, *evbustest.Recorder) {
			rec := evbustest.NewRecorder()
			c := e.consumer(group, rec.Option())
			eff := effect(db.d, group)
			db.handle(c, func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
				mu.Lock()
				txs[fmt.Sprintf("%p", q)] = true
				mu.Unlock()
				if err := eff(ctx, q, ev, m); err != nil {
					return err
				}
				if bad(ev) {
					return errors.New("this one never works")
				}
				return nil
			}, consumer.Batch(200), consumer.Retry(consumer.Backoff{MaxAttempts: 3}))
			return c, rec
		}
		c, rec := consume()
		errc := run(t, c)
		waitFor(t, "every record settled", func() bool { return settledCount(c) == keys*perKey })
		if n, d := db.effects(t, group); n != 99 || d != 99 {
			t.Errorf("%d effects of %d events, want 99 of 99", n, d)
		}
		d := evbustest.ExpectDeadLettered(t, e.stack, "orders", group, nil)
		if d.Kind != wire.KindRetriesExhausted || d.Attempts != 3 {
			t.Errorf("dead letter %s after %d attempts, want retries-exhausted after 3", d.Kind, d.Attempts)
		}
		// The records of the bad one's key, in order: those after it
		// waited for it.
		var k3 []string
		for _, o := range rec.Outcomes() {
			if ev, ok := o.Value.(*Order); ok && ev.OrderID == "order-003" {
				k3 = append(k3, fmt.Sprintf("%d:%s", ev.Seq, o.Result))
			} else if o.Result == consumer.DeadLettered {
				k3 = append(k3, fmt.Sprintf("%s:%s", o.Meta.Key, o.Result))
			}
		}
		want := "[0:handled 1:handled 2:handled 3:handled order-003:dead-lettered 5:handled 6:handled 7:handled 8:handled 9:handled]"
		if got := fmt.Sprint(k3); got != want {
			t.Errorf("outcomes of order-003 %s, want %s", got, want)
		}
		// Batched: far fewer transactions than records (the retries of the
		// bad one and the records waiting for it have their own).
		mu.Lock()
		if len(txs) > 15 {
			t.Errorf("%d transactions for %d records", len(txs), keys*perKey)
		}
		mu.Unlock()

		// A restart from the first offset.
		restartFromStart(t, e, db, c, errc, group, keys*perKey, 99, func() *consumer.Consumer { c, _ := consume(); return c })
	})
}

// restartFromStart stops c, deletes group's committed offset on the
// orders topic's partition 0 and runs the consumer made by again over all
// n records: the processed ones are duplicates, and the effects stay.
func restartFromStart(t *testing.T, e *env, db *tdb, c *consumer.Consumer, errc <-chan error, group string, n, processed int, again func() *consumer.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-errc
	resp, err := e.adm.DeleteOffsets(ctx, group, kadm.TopicsSet{"orders": {0: {}}})
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	c2 := again()
	run(t, c2)
	waitFor(t, "every record settled again", func() bool { return settledCount(c2) == uint64(n) })
	if st := c2.Stats(); st.Duplicates != uint64(processed) || st.Handled != 0 {
		t.Errorf("after the restart: %d duplicates, %d handled; want %d and 0", st.Duplicates, st.Handled, processed)
	}
	if got, d := db.effects(t, group); got != processed || d != processed {
		t.Errorf("after the restart: %d effects of %d events, want %d of %d", got, d, processed, processed)
	}
}

// TestIdempotentBatchHandler: a HandleBatchTx handler gets whole
// batches; one bad record among 100 fails its batch, the batch runs again
// record by record, and the bad one alone is dead-lettered; a restart
// finds every other record processed.
func TestIdempotentBatchHandler(t *testing.T) {
	eachDB(t, []string{pgxDB, sqliteDB}, func(t *testing.T, db *tdb) {
		e := start(t)
		const group = "batch-handler"
		e.topics(1, "orders", wire.DeadLetterTopic("orders", group))
		const keys, perKey = 10, 10
		e.publish(orders(keys, perKey)...)
		bad := func(ev *Order) bool { return ev.OrderID == "order-003" && ev.Seq == 4 }
		var (
			mu      sync.Mutex
			largest int
		)
		consume := func() *consumer.Consumer {
			c := e.consumer(group)
			eff := effect(db.d, group)
			db.handleBatch(c, func(ctx context.Context, q sqldb.Querier, evs []*Order, ms []bus.Meta) error {
				mu.Lock()
				largest = max(largest, len(evs))
				mu.Unlock()
				var failed error
				for i, ev := range evs {
					// The effects are written before the failure: the
					// rollback must take them away.
					if err := eff(ctx, q, ev, ms[i]); err != nil {
						return err
					}
					if bad(ev) {
						failed = errors.New("this one never works")
					}
				}
				return failed
			}, consumer.Retry(consumer.Backoff{MaxAttempts: 2}))
			return c
		}
		c := consume()
		errc := run(t, c)
		waitFor(t, "every record settled", func() bool { return settledCount(c) == keys*perKey })
		if n, d := db.effects(t, group); n != 99 || d != 99 {
			t.Errorf("%d effects of %d events, want 99 of 99", n, d)
		}
		if d := evbustest.ExpectDeadLettered(t, e.stack, "orders", group, nil); d.Kind != wire.KindRetriesExhausted {
			t.Errorf("dead letter %s, want retries-exhausted", d.Kind)
		}
		mu.Lock()
		if largest < 2 {
			t.Errorf("the batch handler never got more than %d event at once", largest)
		}
		mu.Unlock()

		restartFromStart(t, e, db, c, errc, group, keys*perKey, 99, consume)
	})
}

// TestIdempotentTwoGroups: two groups on one topic and one table keep
// separate processed sets.
func TestIdempotentTwoGroups(t *testing.T) {
	eachDB(t, []string{pgxDB, sqliteDB}, func(t *testing.T, db *tdb) {
		e := start(t)
		e.topics(2, "orders")
		e.publish(orders(5, 8)...)
		var cs []*consumer.Consumer
		for _, g := range []string{"billing", "shipping"} {
			c := e.consumer(g)
			db.handle(c, effect(db.d, g), consumer.Batch(10))
			run(t, c)
			cs = append(cs, c)
		}
		for i, g := range []string{"billing", "shipping"} {
			waitFor(t, g+" done", func() bool { return settledCount(cs[i]) == 40 })
			if st := cs[i].Stats(); st.Handled != 40 || st.Duplicates != 0 {
				t.Errorf("%s: %d handled, %d duplicates; want 40 and 0", g, st.Handled, st.Duplicates)
			}
			if n, d := db.effects(t, g); n != 40 || d != 40 {
				t.Errorf("%s: %d effects of %d events, want 40", g, n, d)
			}
			if n := db.processed(t, g); n != 40 {
				t.Errorf("%s: %d processed rows, want 40", g, n)
			}
		}
	})
}

// TestIdempotentForeignRecords: a record without ce_id is deduplicated by
// its coordinates, or dead-lettered with RequireEventID.
func TestIdempotentForeignRecords(t *testing.T) {
	db := openDB(t, sqliteDB)
	e := start(t)
	e.topics(1, "orders", wire.DeadLetterTopic("orders", "strict"))
	r, err := e.encoder().Record(context.Background(), &Order{OrderID: "o-1"})
	if err != nil {
		t.Fatal(err)
	}
	e.produce("orders", &kgo.Record{Key: r.Key, Value: r.Value}) // plain Confluent Avro, no headers

	lax := e.consumer("lax")
	db.handle(lax, effect(db.d, "lax"))
	run(t, lax)
	strict := e.consumer("strict")
	db.handle(strict, effect(db.d, "strict"), consumer.MessageID(consumer.RequireEventID))
	run(t, strict)
	waitFor(t, "both settled", func() bool { return settledCount(lax) == 1 && settledCount(strict) == 1 })
	if n := db.count(t, "SELECT count(*) FROM evbus_processed WHERE consumer_group = 'lax' AND message_id = 'kafka:orders/0/0'"); n != 1 {
		t.Errorf("no processed row kafka:orders/0/0 for the foreign record")
	}
	d := evbustest.ExpectDeadLettered(t, e.stack, "orders", "strict", nil)
	if d.Kind != wire.KindPermanent || !strings.Contains(d.Error, "ce_id") {
		t.Errorf("dead letter %s %q, want permanent naming ce_id", d.Kind, d.Error)
	}
}

// TestProcessedTableName refuses names that break the rule, stating it,
// and uses the ones that keep it: SQL keywords and schema-qualified names
// included, on both dialects, through MigrationSQL, Migrate, handling
// (the claim statements) and Cleanup.
func TestProcessedTableName(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Pool().Close()
	for _, name := range []string{"", "processed; DROP TABLE accounts", `"processed"`, "1processed", "a.b.c", "x y", strings.Repeat("p", 60)} {
		_, err := consumer.NewProcessed(lite, consumer.Table(name))
		if !errors.Is(err, sqldb.ErrInvalidIdentifier) || !strings.Contains(err.Error(), sqldb.IdentifierRule) {
			t.Errorf("table %q: %v, want ErrInvalidIdentifier stating the rule", name, err)
		}
	}

	e := start(t)
	e.topics(3, "orders")
	enc := e.encoder()
	const events = 6
	var recs []*kgo.Record
	for i := range events {
		r, err := enc.Record(ctx, &Order{OrderID: fmt.Sprintf("order-%d", i%2), Seq: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	e.produce("orders", recs...)
	e.produce("orders", recs...)
	for kind, names := range map[string][]string{
		pgxDB:    {"order", "user", "select", "svc.processed", "Svc.Order"},
		sqliteDB: {"order", "user", "select", "main.processed", "main.order"},
	} {
		t.Run(kind, func(t *testing.T) {
			for i, name := range names {
				db := emptyDB(t, kind, consumer.Table(name))
				if kind == pgxDB {
					if _, err := db.q.Exec(ctx, "CREATE SCHEMA svc"); err != nil {
						t.Fatal(err)
					}
				}
				// Teams that run their own migrations run MigrationSQL.
				if _, err := db.q.Exec(ctx, db.ddl); err != nil {
					t.Fatalf("table %s: MigrationSQL: %v", name, err)
				}
				if err := db.migrate(ctx); err != nil {
					t.Fatalf("table %s: Migrate: %v", name, err)
				}
				if err := createEffects(ctx, db.q, db.d); err != nil {
					t.Fatal(err)
				}
				group := fmt.Sprintf("names-%s-%d", kind, i)
				c := e.consumer(group)
				db.handle(c, effect(db.d, group), consumer.Batch(10))
				run(t, c)
				waitFor(t, "every record settled", func() bool { return settledCount(c) == 2*events })
				if st := c.Stats(); st.Handled != events || st.Duplicates != events {
					t.Errorf("table %s: handled %d, duplicates %d, want %d each", name, st.Handled, st.Duplicates, events)
				}
				if n := db.processed(t, group); n != events {
					t.Errorf("table %s: %d processed rows, want %d", name, n, events)
				}
				if n, err := db.clean(ctx, time.Nanosecond); err != nil || n != events {
					t.Errorf("table %s: Cleanup deleted %d rows (%v), want %d", name, n, err, events)
				}
			}
		})
	}
}

// TestHandleTxRegistration: options of the transactional form on Handle,
// and a nil store, are registration errors.
func TestHandleTxRegistration(t *testing.T) {
	reg, err := schema.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for name, register := range map[string]func(c *consumer.Consumer){
		"Batch on Handle": func(c *consumer.Consumer) {
			consumer.Handle(c, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil }, consumer.Batch(10))
		},
		"nil store": func(c *consumer.Consumer) {
			consumer.HandleTx(c, orderPlaced, (*consumer.Processed[*sql.Tx])(nil), func(context.Context, *sql.Tx, *Order, bus.Meta) error { return nil })
		},
		"Batch(0)": func(c *consumer.Consumer) {
			db := openDB(t, sqliteDB)
			db.handle(c, effect(db.d, "g"), consumer.Batch(0))
		},
	} {
		c, err := consumer.New("g", reg)
		if err != nil {
			t.Fatal(err)
		}
		register(c)
		if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrRegistration) {
			t.Errorf("%s: Run: %v, want ErrRegistration", name, err)
		}
	}
}

// TestProcessedCleanup deletes the old rows of every group and only them,
// from several callers at once.
func TestProcessedCleanup(t *testing.T) {
	eachDB(t, allDBs, func(t *testing.T, db *tdb) {
		ctx := context.Background()
		now := time.Now()
		a := db.d.Arg
		for i, age := range []time.Duration{48 * time.Hour, 72 * time.Hour, 25 * time.Hour, time.Hour, time.Minute} {
			if _, err := db.q.Exec(ctx, "INSERT INTO evbus_processed (consumer_group, message_id, processed_at) VALUES ("+a(1)+", "+a(2)+", "+a(3)+")",
				fmt.Sprintf("g%d", i%2), fmt.Sprintf("m%d", i), db.d.Time(now.Add(-age))); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var deleted atomic.Int64
		for range 3 {
			wg.Go(func() {
				n, err := db.clean(ctx, 24*time.Hour)
				if err != nil {
					t.Error(err)
				}
				deleted.Add(n)
			})
		}
		wg.Wait()
		if n := deleted.Load(); n != 3 {
			t.Errorf("deleted %d rows, want 3", n)
		}
		if n := db.count(t, "SELECT count(*) FROM evbus_processed WHERE message_id IN ('m3', 'm4')"); n != 2 {
			t.Errorf("%d of the 2 recent rows left", n)
		}
		if n := db.count(t, "SELECT count(*) FROM evbus_processed"); n != 2 {
			t.Errorf("%d rows left, want 2", n)
		}
		if _, err := db.clean(ctx, 0); err == nil {
			t.Error("Cleanup(0): no error")
		}
	})
}

// TestMigrationFiles: the .sql files run as they are and make what
// Migrate makes, and Migrate runs twice.
func TestMigrationFiles(t *testing.T) {
	eachDB(t, []string{pgxDB, sqliteDB}, func(t *testing.T, migrated *tdb) {
		ctx := context.Background()
		file, err := os.ReadFile(filepath.Join("migrations", migrated.d.Name()+".sql"))
		if err != nil {
			t.Fatal(err)
		}
		if migrated.ddl != string(file) {
			t.Errorf("MigrationSQL differs from migrations/%s.sql", migrated.d.Name())
		}
		// Another database, made with the file alone.
		byFile := emptyDB(t, migrated.kind).q
		if _, err := byFile.Exec(ctx, string(file)); err != nil {
			t.Fatalf("migrations/%s.sql: %v", migrated.d.Name(), err)
		}
		want, got := schemaOf(t, byFile, migrated.d), schemaOf(t, migrated.q, migrated.d)
		if got != want || !strings.Contains(got, "evbus_processed_time_idx") {
			t.Errorf("Migrate made\n%s\nthe file\n%s", got, want)
		}
		if err := migrated.migrate(ctx); err != nil {
			t.Errorf("Migrate again: %v", err)
		}
	})
}

// schemaOf describes the processed-message table: its columns and indexes.
func schemaOf(t *testing.T, q sqldb.Querier, d sqldb.Dialect) string {
	t.Helper()
	query := `SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_name = 'evbus_processed'
		UNION ALL SELECT indexdef FROM pg_indexes WHERE tablename = 'evbus_processed' ORDER BY 1`
	if d.Name() == "sqlite" {
		query = `SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master WHERE tbl_name = 'evbus_processed' ORDER BY 1`
	}
	rows, err := q.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, "\n")
}

// The crash test's child consumer, for idempotent handlers.
const (
	idemChildEnv = "EVBUS_IDEM_CHILD"
	idemDBEnv    = "EVBUS_IDEM_DB"     // pgx or sqlite
	idemURLEnv   = "EVBUS_IDEM_DB_URL" // its URL or path
)

// idemChild consumes as group with a batched idempotent handler, and
// never commits an offset (the commit interval is an hour): killed, it
// leaves every effect it committed to be delivered again.
func idemChild(group string) int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := childConsumer(group, consumer.CommitInterval(time.Hour))
	if err != nil {
		return fail(err)
	}
	// The parent created the tables; the child is killed, never closes.
	db, _, err := dialDB(ctx, os.Getenv(idemDBEnv), os.Getenv(idemURLEnv))
	if err != nil {
		return fail(err)
	}
	eff := effect(db.d, group)
	db.handle(c, func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
		time.Sleep(200 * time.Microsecond)
		return eff(ctx, q, ev, m)
	}, consumer.Batch(20))
	if err := c.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

// TestIdempotentCrash kills a consumer (SIGKILL) after it committed
// effects to the database and before it committed their offsets; the
// consumer that takes over gets them again and applies nothing twice.
func TestIdempotentCrash(t *testing.T) {
	eachDB(t, []string{pgxDB, sqliteDB}, func(t *testing.T, db *tdb) {
		e := start(t)
		evbustest.ShortSessions(t, e.stack)
		e.topics(3, "orders")
		const group, keys, perKey = "crash", 20, 30 // 600 records
		e.publish(orders(keys, perKey)...)

		ch := e.startChild(nil, idemChildEnv+"="+group, idemDBEnv+"="+db.kind, idemURLEnv+"="+db.url)
		waitFor(t, "the child to commit effects", func() bool {
			n, _ := db.effects(t, group)
			return n >= 200
		})
		if err := ch.kill(); err != nil {
			t.Fatal(err)
		}
		byChild, _ := db.effects(t, group)
		if c := sum(e.committed(group, "orders")); c != 0 {
			t.Fatalf("the child committed %d offsets; the test wants its effects all uncommitted", c)
		}

		c := e.consumer(group, consumer.Kafka(groupTiming()...))
		db.handle(c, effect(db.d, group), consumer.Batch(20))
		run(t, c)
		waitFor(t, "every record settled after the restart", func() bool { return settledCount(c) == keys*perKey })
		if n, d := db.effects(t, group); n != keys*perKey || d != keys*perKey {
			t.Errorf("%d effects of %d events, want %d of %d", n, d, keys*perKey, keys*perKey)
		}
		if st := c.Stats(); st.Duplicates != uint64(byChild) || st.Handled != uint64(keys*perKey-byChild) {
			t.Errorf("restarted: %d duplicates, %d handled; want %d and %d", st.Duplicates, st.Handled, byChild, keys*perKey-byChild)
		}
		t.Logf("the child committed %d effects and no offset; the restarted member skipped them", byChild)
	})
}

// TestIdempotentDatabaseDown stops PostgreSQL for a few seconds while
// records flow: nothing is lost or applied twice, nothing is
// dead-lettered, and no offset committed during the outage is ahead of
// the effects committed before it; one record per transaction and in
// batches.
func TestIdempotentDatabaseDown(t *testing.T) {
	db := openDB(t, pgxDB)
	pg := evbustest.PostgresServer(t)
	for group, opts := range map[string][]consumer.HandlerOption{"per-record": nil, "batch": {consumer.Batch(50)}} {
		t.Run(group, func(t *testing.T) {
			// The restart replays what was written since the last
			// checkpoint: on a busy machine, the databases of the tests
			// before take it past the harness's 30 s. The consumer meets
			// the same outage either way.
			if _, err := db.q.Exec(context.Background(), "CHECKPOINT"); err != nil {
				t.Fatal(err)
			}
			e := start(t)
			e.topics(3, "orders", wire.DeadLetterTopic("orders", group))
			c := e.consumer(group)
			db.handle(c, effect(db.d, group), opts...)
			run(t, c)

			const rounds, perRound = 40, 50 // 2000 records, published over the outage
			published := make(chan struct{})
			go func() {
				defer close(published)
				for i := range rounds {
					var evs []any
					for k := range perRound {
						evs = append(evs, &Order{OrderID: fmt.Sprintf("order-%02d", k%17), Seq: int64(i*perRound + k)})
					}
					if err := e.publisher().Publish(context.Background(), evs...); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			waitFor(t, "some records handled", func() bool { return c.Stats().Handled >= 300 })
			if err := pg.Stop(); err != nil {
				t.Fatal(err)
			}
			var samples []map[int32]int64
			paused := 0
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				samples = append(samples, e.committed(group, "orders"))
				paused = max(paused, c.Stats().Paused)
			}
			if paused == 0 {
				t.Error("fetching was never paused while the database was down")
			}
			restartAt := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			if err := pg.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			<-published
			waitFor(t, "every record handled", func() bool { return settledCount(c) == rounds*perRound })

			waitFor(t, "fetching resumed", func() bool { return c.Stats().Paused == 0 })
			st := c.Stats()
			if st.DatabaseWaits == 0 {
				t.Error("no database waits: the outage was not noticed")
			}
			dead := uint64(0)
			for _, n := range st.DeadLettered {
				dead += n
			}
			// A commit the crash cut off may have committed: its rerun
			// finds the row and skips the record as a duplicate.
			if st.Handled+st.Duplicates != rounds*perRound || dead > 0 {
				t.Errorf("stats %+v: want every record handled (or found committed), none dead-lettered", st)
			}
			if n, d := db.effects(t, group); n != rounds*perRound || d != rounds*perRound {
				t.Errorf("%d effects of %d events, want %d", n, d, rounds*perRound)
			}
			// While the database was down, every committed offset was backed by
			// effects written before the restart.
			for _, s := range samples {
				for part, upTo := range s {
					n := db.count(t, "SELECT count(*) FROM effects WHERE grp = $1 AND part = $2 AND off < $3 AND written_at < $4", group, part, upTo, restartAt)
					if int64(n) != upTo {
						t.Errorf("partition %d: offset %d committed during the outage, but only %d effects were committed", part, upTo, n)
					}
				}
			}
			t.Logf("%d database waits; %d offset samples during the outage", st.DatabaseWaits, len(samples))
		})
	}
}
