package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// The fault matrix: the broker, the registry or the database is stopped
// for several seconds under load, and the promise holds.

// outage is how long a stopped part stays down: several seconds, longer
// than the clients' quick retries.
const outage = 3 * time.Second

// restartable starts a stack keeping its state in a directory of its own,
// and returns it with a function that starts it again on the same
// directory and ports (after Close).
func restartable(t *testing.T) (*devstack.Stack, func() *devstack.Stack) {
	t.Helper()
	dir := t.TempDir()
	first := evbustest.Start(t, devstack.DataDir(dir))
	_, kport, err := net.SplitHostPort(first.Brokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(first.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := strconv.Atoi(kport)
	rp, _ := strconv.Atoi(u.Port())
	return first, func() *devstack.Stack {
		return evbustest.Start(t, devstack.DataDir(dir), devstack.KafkaPort(kp), devstack.RegistryPort(rp))
	}
}

// refused checks that nothing listens at addr any more.
func refused(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections: the outage is not one", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialing %s: %v, want connection refused", addr, err)
	}
}

// insertAnnotated writes, in tx, the business row of st and an Annotated
// event of it, the type the registry learns during TestRegistryDown.
func insertAnnotated(ctx context.Context, tx pgx.Tx, ob *outbox.Outbox[pgx.Tx], st Step) error {
	if _, err := tx.Exec(ctx, "INSERT INTO steps (key, seq) VALUES ($1, $2)", st.Key, st.Seq); err != nil {
		return err
	}
	return ob.Enqueue(ctx, tx, Annotated{Key: st.Key, Seq: st.Seq, Note: "new"})
}

// TestBrokerDown: the Kafka broker stops (its state on disk) while the
// service writes; it starts again on the same directory and port several
// seconds later. The outbox holds what was written meanwhile, and
// everything is applied once, in order.
func TestBrokerDown(t *testing.T) {
	t.Parallel()
	kafka, restart := restartable(t)
	registry := evbustest.Start(t) // apart, so that only the broker goes away
	s := newSystem(t, kafka.Brokers(), registry.RegistryURL(), evbustest.PostgresDatabase(t))
	s.relay()
	c := s.consumer(group)
	s.write(4, 10, 0, 30) // 1,200 steps
	s.waitEffects("300 effects applied", 300)

	if err := kafka.Close(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	refused(t, kafka.Brokers()[0])
	s.write(4, 10, 30, 75) // 1,800 more while the broker is down
	backlog := s.count("SELECT count(*) FROM evbus_outbox")
	if backlog < 1800 {
		t.Fatalf("%d rows waiting in the outbox while the broker is down, want the 1,800 written meanwhile at least", backlog)
	}
	time.Sleep(time.Until(down.Add(outage)))
	restart()
	evbustest.ShortSessions(t, s)

	out := s.check(group)
	if out.Steps != 3000 {
		t.Errorf("%d steps, want 3000", out.Steps)
	}
	t.Logf("%d rows waited in the outbox during the outage; consumer %+v; %+v", backlog, c.Stats(), out)
}

// TestRegistryDown: the schema registry stops. Schemas the service and
// the consumer already have keep everything going; a service that needs
// a new schema fails with an error naming the event type and the
// registry, and an event the outbox cannot encode fails its transaction,
// which leaves nothing behind. Once the registry is back, the new schema
// is registered and its events are applied.
func TestRegistryDown(t *testing.T) {
	t.Parallel()
	kafka := evbustest.Start(t)
	registry, restart := restartable(t) // apart, so that only the registry goes away
	s := newSystem(t, kafka.Brokers(), registry.RegistryURL(), evbustest.PostgresDatabase(t))
	s.relay()
	c := s.consumer(group)
	s.write(4, 10, 0, 10) // 400 steps
	s.settle(group)

	if err := registry.Close(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	u, _ := url.Parse(s.registry)
	refused(t, u.Host)

	// A service starting with a schema the registry has not seen: a new
	// registry client, as a new process would have.
	ctx := context.Background()
	reg, err := schema.New(s.registry, schema.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newEncoder(ctx, reg, annotatedEvent)
	if err == nil || !strings.Contains(err.Error(), "Annotated") || !errors.Is(err, schema.ErrUnavailable) {
		t.Errorf("a new schema while the registry is down: %v; want an error naming the type, wrapping schema.ErrUnavailable", err)
	} else {
		t.Logf("a new schema while the registry is down: %v", err)
	}
	// The running service's outbox cannot encode the new type: its
	// transaction fails, business row included.
	lost := Step{Key: key(0), Seq: 1_000_000}
	err = sqldb.InTx(ctx, s.db, func(tx pgx.Tx) error { return insertAnnotated(ctx, tx, s.ob, lost) })
	if err == nil || !strings.Contains(err.Error(), "Annotated") {
		t.Errorf("Enqueue of a type the outbox's encoder does not know: %v; want an error naming it", err)
	} else {
		t.Logf("Enqueue of the new type meanwhile: %v", err)
	}

	s.write(4, 10, 10, 60) // 2,000 more, on the schema everyone has
	s.check(group, lost)
	if st := c.Stats(); st.DecodeWaits != 0 {
		t.Errorf("the consumer waited %d times for the registry; its cached schema should have served", st.DecodeWaits)
	}

	time.Sleep(time.Until(down.Add(outage)))
	restart()
	enc, err := newEncoder(ctx, reg, stepEvent, annotatedEvent)
	if err != nil {
		t.Fatalf("the new schema once the registry is back: %v", err)
	}
	ob, err := outbox.New(s.db, enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		err := sqldb.InTx(ctx, s.db, func(tx pgx.Tx) error { return insertAnnotated(ctx, tx, ob, Step{Key: key(i), Seq: 60}) })
		if err != nil {
			t.Fatal(err)
		}
	}
	out := s.check(group)
	if out.Steps != 2440 {
		t.Errorf("%d steps, want 2440", out.Steps)
	}
	t.Logf("consumer %+v; %+v", c.Stats(), out)
}

// TestDatabaseDown: PostgreSQL stops (as in a crash) for several seconds
// while the service writes, the relay publishes and the consumer applies
// effects, all on it. Writers retry (a commit whose answer was lost is
// found by its business row), the relay and the consumer wait, and
// everything is applied once, in order.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	// A server of its own: the other tests' databases stay up.
	ctx := context.Background()
	pg, err := evbustest.StartPostgreSQL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Close(); err != nil {
			t.Error(err)
		}
	})
	dbURL, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stack := evbustest.Start(t)
	s := newSystem(t, stack.Brokers(), stack.RegistryURL(), dbURL)
	s.relay()
	c := s.consumer(group)
	s.write(4, 10, 0, 30) // 1,200 steps
	s.waitEffects("300 effects applied", 300)

	// The database stops while the consumer is inside a transaction: a
	// lock on the effects table holds it there, with steps to apply
	// (it may have applied all of the first 1,200 meanwhile).
	lock, err := s.db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Else the pool's Close, a cleanup too, waits for it forever.
	t.Cleanup(func() { _ = lock.Rollback(context.Background()) })
	if _, err := lock.Exec(ctx, "LOCK TABLE effects IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	s.write(4, 10, 30, 31) // 40 steps
	waitFor(t, "the consumer to wait for the effects table in a transaction", func() (bool, string) {
		n := s.count("SELECT count(*) FROM pg_locks WHERE relation = 'effects'::regclass AND NOT granted")
		return n > 0, fmt.Sprint(n, " waiting")
	})
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	written := s.writing(4, 10, 31, 75) // 1,760 more, begun while it is down
	time.Sleep(time.Until(down.Add(outage)))
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	_ = lock.Rollback(ctx) // its connection died with the server; this gives it back to the pool
	failed := <-written
	if failed == 0 {
		t.Error("no writer's transaction failed: the writers did not meet the outage")
	}
	if c.Stats().DatabaseWaits == 0 {
		t.Error("the consumer never waited for the database: it did not meet the outage")
	}

	out := s.check(group)
	if out.Steps != 3000 {
		t.Errorf("%d steps, want 3000", out.Steps)
	}
	t.Logf("%d failed transactions retried by the writers; consumer %+v; %+v", failed, c.Stats(), out)
}
