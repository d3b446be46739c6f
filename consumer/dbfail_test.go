package consumer_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

// TestIdempotentRefusedCommit: on PostgreSQL, a handler whose transaction
// breaks a deferred foreign key (23503 at COMMIT), and one that swallows a
// failed statement's error and returns nil (COMMIT rolls back), each
// followed by a good record of the same key, one record per transaction,
// in batches and with a HandleBatchTx handler. The database answers throughout: the two bad records go
// through the handler's retries to the dead-letter topic, the good ones
// are handled, in order, and the consumer never waits for the database.
func TestIdempotentRefusedCommit(t *testing.T) {
	eachDB(t, []string{pgxDB, stdlibDB}, func(t *testing.T, db *tdb) {
		ctx := context.Background()
		for _, stmt := range []string{
			"CREATE TABLE parents (id text PRIMARY KEY)",
			"CREATE TABLE children (order_id text NOT NULL, parent text NOT NULL REFERENCES parents DEFERRABLE INITIALLY DEFERRED)",
		} {
			if _, err := db.q.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		for _, mode := range []struct {
			group string
			opts  []consumer.HandlerOption
		}{{"per-record", nil}, {"batch", []consumer.HandlerOption{consumer.Batch(50)}}, {"batch-handler", nil}} {
			t.Run(mode.group, func(t *testing.T) {
				e := start(t)
				e.topics(1, "orders", wire.DeadLetterTopic("orders", mode.group))
				e.publish(
					&Order{OrderID: "k", Seq: 1, Note: "orphan"},
					&Order{OrderID: "k", Seq: 2},
					&Order{OrderID: "k", Seq: 3, Note: "swallow"},
					&Order{OrderID: "k", Seq: 4},
				)
				rec := evbustest.NewRecorder()
				c := e.consumer(mode.group, rec.Option())
				eff := effect(db.d, mode.group)
				handle := func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
					if err := eff(ctx, q, ev, m); err != nil {
						return err
					}
					switch ev.Note {
					case "orphan": // checked at COMMIT only
						_, err := q.Exec(ctx, "INSERT INTO children VALUES ($1, 'no such parent')", ev.OrderID)
						return err
					case "swallow":
						_, _ = q.Exec(ctx, "SELECT 1/0") // the error is dropped: a handler's bug
					}
					return nil
				}
				opts := append(mode.opts, consumer.Retry(consumer.Backoff{MaxAttempts: 3}))
				if mode.group != "batch-handler" {
					db.handle(c, handle, opts...)
				} else {
					db.handleBatch(c, func(ctx context.Context, q sqldb.Querier, evs []*Order, ms []bus.Meta) error {
						for i, ev := range evs {
							if err := handle(ctx, q, ev, ms[i]); err != nil {
								return err
							}
						}
						return nil
					}, opts...)
				}
				run(t, c)
				waitFor(t, "every record settled", func() bool { return settledCount(c) == 4 })

				var got []string
				for _, o := range rec.Outcomes() {
					ev, _ := o.Value.(*Order)
					if ev == nil {
						got = append(got, fmt.Sprintf("%s after %d", o.Result, o.Attempts))
						continue
					}
					got = append(got, fmt.Sprintf("%d %s", ev.Seq, o.Result))
				}
				want := "[dead-lettered after 3 2 handled dead-lettered after 3 4 handled]"
				if fmt.Sprint(got) != want {
					t.Errorf("outcomes %v, want %s", got, want)
				}
				dls := e.read(wire.DeadLetterTopic("orders", mode.group), 2)
				for i, want := range []string{"23503", "the handler returned nil"} {
					d, err := wire.ParseDeadLetter(dls[i])
					if err != nil {
						t.Fatal(err)
					}
					if d.Kind != wire.KindRetriesExhausted || !strings.Contains(d.Error, want) {
						t.Errorf("dead letter %d: %s %q, want retries-exhausted naming %q", i, d.Kind, d.Error, want)
					}
				}
				if st := c.Stats(); st.DatabaseWaits != 0 || st.Conflicts != 0 {
					t.Errorf("stats %+v: the database answered throughout, want no waits", st)
				}
				if n, d := db.effects(t, mode.group); n != 2 || d != 2 {
					t.Errorf("%d effects of %d events, want those of the 2 good ones", n, d)
				}
				if n := db.processed(t, mode.group); n != 2 {
					t.Errorf("%d processed rows, want 2", n)
				}
			})
		}
	})
}

// TestIdempotentConflict: a serialization failure and a deadlock (real
// server errors of those SQLSTATEs) in the handler or at COMMIT run the
// transaction again without counting an attempt: with one attempt
// allowed, the record is still handled, after the conflicts.
func TestIdempotentConflict(t *testing.T) {
	db := openDB(t, pgxDB)
	ctx := context.Background()
	if _, err := db.q.Exec(ctx, `CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = TG_ARGV[0]; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.q.Exec(ctx, "CREATE TABLE conflicts (n int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.q.Exec(ctx, `CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON conflicts DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION conflict('40001')`); err != nil {
		t.Fatal(err)
	}
	e := start(t)
	const group = "conflicts"
	e.topics(1, "orders", wire.DeadLetterTopic("orders", group))
	e.publish(&Order{OrderID: "k", Seq: 1}, &Order{OrderID: "k", Seq: 2})
	c := e.consumer(group)
	eff := effect(db.d, group)
	var (
		mu       sync.Mutex
		runs     int
		attempts []int
	)
	db.handle(c, func(ctx context.Context, q sqldb.Querier, ev *Order, m bus.Meta) error {
		mu.Lock()
		runs++
		n := runs
		attempts = append(attempts, consumer.Attempt(ctx))
		mu.Unlock()
		if err := eff(ctx, q, ev, m); err != nil {
			return err
		}
		switch n {
		case 1: // a deadlock in the handler's statement, wrapped
			_, err := q.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; END $$")
			return fmt.Errorf("reserving stock: %w", err)
		case 2: // a serialization failure at COMMIT
			_, err := q.Exec(ctx, "INSERT INTO conflicts VALUES (1)")
			return err
		}
		return nil
	}, consumer.Retry(consumer.Backoff{MaxAttempts: 1}))
	run(t, c)
	waitFor(t, "both records settled", func() bool { return settledCount(c) == 2 })
	st := c.Stats()
	if st.Handled != 2 || st.Conflicts != 2 || st.Retried != 0 || st.DatabaseWaits != 0 {
		t.Errorf("stats %+v: want 2 handled after 2 conflicts, no retries, no waits", st)
	}
	mu.Lock()
	if fmt.Sprint(attempts) != "[1 1 1 1]" {
		t.Errorf("attempts %v, want every run the first", attempts)
	}
	mu.Unlock()
	if n, _ := db.effects(t, group); n != 2 {
		t.Errorf("%d effects, want 2", n)
	}
}
