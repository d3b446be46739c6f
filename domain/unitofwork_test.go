package domain_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/evbus/evbus/domain"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

func TestMain(m *testing.M) { evbustest.RunWithPostgreSQL(m) }

// The domain of these tests: an order is placed; placing it reserves stock
// (another aggregate, through a domain-event handler), and each step
// publishes an integration event.
type (
	placed   struct{ OrderID, SKU string }
	reserved struct{ SKU string }
	accepted struct{ OrderID string } // integration
	changed  struct{ SKU string }     // integration
)

type order struct {
	domain.Recorder
	id, sku string
}

func (o *order) place() { o.Record(placed{OrderID: o.id, SKU: o.sku}) }

type stock struct {
	domain.Recorder
	sku string
}

func (s *stock) reserve() { s.Record(reserved{SKU: s.sku}) }

// tableOutbox is an outbox reduced to its table: it writes each event's
// text into the caller's transaction, which is what the unit of work's
// all-or-nothing promise is about.
type tableOutbox[Tx any] struct{ db sqldb.DB[Tx] }

func (o tableOutbox[Tx]) Enqueue(ctx context.Context, tx Tx, events ...any) error {
	for _, ev := range events {
		if _, err := o.db.In(tx).Exec(ctx, "INSERT INTO outbox_rows (event) VALUES ("+o.db.Dialect().Arg(1)+")", fmt.Sprintf("%T%v", ev, ev)); err != nil {
			return err
		}
	}
	return nil
}

func newUnitOfWork[Tx any](t *testing.T, db domain.Transactor[Tx], d *domain.Dispatcher[Tx], ob domain.Enqueuer[Tx], opts ...domain.Option) *domain.UnitOfWork[Tx] {
	t.Helper()
	u, err := domain.NewUnitOfWork(db, d, ob, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUnitOfWork(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "uow.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Pool().Close() })
		unitOfWorkCases(t, sqldb.DB[*sql.Tx](db))
	})
	t.Run("pgx", func(t *testing.T) {
		pool, err := pgxpool.New(t.Context(), evbustest.PostgresDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		unitOfWorkCases(t, sqldb.DB[pgx.Tx](sqldb.Pgx(pool)))
	})
	t.Run("postgres-stdlib", func(t *testing.T) {
		pool, err := sql.Open("pgx", evbustest.PostgresDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		unitOfWorkCases(t, sqldb.DB[*sql.Tx](sqldb.SQL(pool, sqldb.Postgres)))
	})
}

func unitOfWorkCases[Tx any](t *testing.T, db sqldb.DB[Tx]) {
	ctx := t.Context()
	for _, ddl := range []string{
		"CREATE TABLE orders (id text PRIMARY KEY, sku text NOT NULL)",
		"CREATE TABLE reservations (sku text NOT NULL)",
		"CREATE TABLE outbox_rows (" + db.Dialect().IdentityColumn("id") + ", event text NOT NULL)",
	} {
		if _, err := db.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	arg := db.Dialect().Arg
	var calls []string
	failReserve := errors.New("out of stock")
	var reserveErr error
	d := domain.NewDispatcher[Tx]()
	// Two handlers of OrderPlaced, run in registration order; the first
	// changes another aggregate, whose event is dispatched in turn.
	domain.On(d, func(ctx context.Context, s *domain.Scope[Tx], ev placed) error {
		calls = append(calls, "reserve "+ev.OrderID)
		if reserveErr != nil {
			return reserveErr
		}
		st := &stock{sku: ev.SKU}
		s.Track(st)
		st.reserve()
		_, err := db.In(s.Tx).Exec(ctx, "INSERT INTO reservations (sku) VALUES ("+arg(1)+")", ev.SKU)
		return err
	})
	domain.On(d, func(ctx context.Context, s *domain.Scope[Tx], ev placed) error {
		calls = append(calls, "accept "+ev.OrderID)
		s.Publish(accepted{OrderID: ev.OrderID})
		return nil
	})
	domain.On(d, func(ctx context.Context, s *domain.Scope[Tx], ev reserved) error {
		calls = append(calls, "stock "+ev.SKU)
		s.Publish(changed{SKU: ev.SKU})
		return nil
	})
	u := newUnitOfWork(t, db, d, tableOutbox[Tx]{db})
	place := func(id, sku string, after *[]string) error {
		return u.Do(ctx, func(ctx context.Context, s *domain.Scope[Tx]) error {
			o := &order{id: id, sku: sku}
			s.Track(o)
			o.place()
			if after != nil {
				s.AfterCommit(func(context.Context) { *after = append(*after, id) })
			}
			_, err := db.In(s.Tx).Exec(ctx, "INSERT INTO orders (id, sku) VALUES ("+arg(1)+", "+arg(2)+")", id, sku)
			return err
		})
	}
	count := func(table string) int {
		var n int
		if err := sqldb.QueryRow(ctx, db, "SELECT count(*) FROM "+table, nil, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	outboxRows := func() []string {
		rows, err := db.Query(ctx, "SELECT event FROM outbox_rows ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		return got
	}

	t.Run("commit", func(t *testing.T) {
		calls = nil
		var after []string
		if err := place("o-1", "sku-9", &after); err != nil {
			t.Fatal(err)
		}
		wantCalls := []string{"reserve o-1", "accept o-1", "stock sku-9"}
		if !slices.Equal(calls, wantCalls) {
			t.Errorf("handlers ran as %q, want %q", calls, wantCalls)
		}
		wantRows := []string{"domain_test.accepted{o-1}", "domain_test.changed{sku-9}"}
		if got := outboxRows(); !slices.Equal(got, wantRows) {
			t.Errorf("outbox rows %q, want %q", got, wantRows)
		}
		if count("orders") != 1 || count("reservations") != 1 {
			t.Errorf("orders=%d reservations=%d, want 1 and 1", count("orders"), count("reservations"))
		}
		if !slices.Equal(after, []string{"o-1"}) {
			t.Errorf("after-commit functions ran for %q, want o-1", after)
		}
	})

	t.Run("a failing handler rolls everything back", func(t *testing.T) {
		calls, reserveErr = nil, failReserve
		defer func() { reserveErr = nil }()
		var after []string
		err := place("o-2", "sku-9", &after)
		if !errors.Is(err, failReserve) || !strings.Contains(err.Error(), "placed") {
			t.Fatalf("Do returned %v, want the handler's error naming the event", err)
		}
		if count("orders") != 1 || count("reservations") != 1 || len(outboxRows()) != 2 {
			t.Errorf("the failed unit of work left rows: orders=%d reservations=%d outbox=%d", count("orders"), count("reservations"), len(outboxRows()))
		}
		if len(after) != 0 {
			t.Errorf("after-commit ran without a commit: %q", after)
		}
		if !slices.Equal(calls, []string{"reserve o-2"}) {
			t.Errorf("handlers after the failing one ran: %q", calls)
		}
	})

	t.Run("a panicking command rolls back and panics on", func(t *testing.T) {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the panic did not reach the caller")
				}
			}()
			_ = u.Do(ctx, func(ctx context.Context, s *domain.Scope[Tx]) error {
				if _, err := db.In(s.Tx).Exec(ctx, "INSERT INTO orders (id, sku) VALUES ('o-3', 'x')"); err != nil {
					return err
				}
				panic("bug")
			})
		}()
		if count("orders") != 1 {
			t.Errorf("the panicking unit of work left its order")
		}
	})

	t.Run("handlers recording for each other without end", func(t *testing.T) {
		type ping struct{ N int }
		d := domain.NewDispatcher[Tx]()
		domain.On(d, func(ctx context.Context, s *domain.Scope[Tx], ev ping) error {
			s.Record(ping{ev.N + 1})
			return nil
		})
		u := newUnitOfWork(t, db, d, tableOutbox[Tx]{db}, domain.MaxEvents(50))
		err := u.Do(ctx, func(ctx context.Context, s *domain.Scope[Tx]) error {
			s.Publish(accepted{OrderID: "loop"})
			s.Record(ping{})
			return nil
		})
		if !errors.Is(err, domain.ErrEventLoop) {
			t.Fatalf("Do returned %v, want ErrEventLoop", err)
		}
		if len(outboxRows()) != 2 {
			t.Error("the looping unit of work enqueued its event")
		}
	})

	t.Run("publishing without an outbox", func(t *testing.T) {
		u := newUnitOfWork(t, db, nil, nil)
		err := u.Do(ctx, func(ctx context.Context, s *domain.Scope[Tx]) error {
			if _, err := db.In(s.Tx).Exec(ctx, "INSERT INTO orders (id, sku) VALUES ('o-4', 'x')"); err != nil {
				return err
			}
			s.Publish(accepted{OrderID: "o-4"})
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), "without an outbox") || count("orders") != 1 {
			t.Fatalf("Do returned %v with orders=%d; want an error and nothing written", err, count("orders"))
		}
	})

	t.Run("in the caller's transaction", func(t *testing.T) {
		calls = nil
		var after []func(context.Context)
		err := sqldb.InTx(ctx, db, func(tx Tx) error {
			var err error
			after, err = u.In(ctx, tx, func(ctx context.Context, s *domain.Scope[Tx]) error {
				o := &order{id: "o-5", sku: "sku-5"}
				s.Track(o)
				o.place()
				s.AfterCommit(func(context.Context) {})
				_, err := db.In(s.Tx).Exec(ctx, "INSERT INTO orders (id, sku) VALUES ('o-5', 'sku-5')")
				return err
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if count("orders") != 2 || len(outboxRows()) != 4 || len(after) != 1 || len(calls) != 3 {
			t.Errorf("In: orders=%d outbox=%d after=%d calls=%q", count("orders"), len(outboxRows()), len(after), calls)
		}
	})
}
