package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
)

// OrderDocument is an event of any size: Seq counts the events of one
// order, as OrderEvent's does.
type OrderDocument struct {
	OrderID string `avro:"order_id"`
	Seq     int64  `avro:"seq"`
	Body    []byte `avro:"body"`
}

var orderDocument = bus.Event[OrderDocument](topic, func(e *OrderDocument) string { return e.OrderID }, bus.Namespace("com.example.orders"))

// documents returns an encoder of OrderEvent and OrderDocument.
func documents(t testing.TB, k kafka) *bus.Encoder {
	t.Helper()
	reg, err := schema.New(k.stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := bus.NewEncoder(context.Background(), reg, bus.Source("/orders-service"), bus.Types(orderEvent, orderDocument))
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// smallBatches returns a relay's client that takes batches of max bytes.
func smallBatches(t testing.TB, k kafka, max int32) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.stack.Brokers()...), kgo.ProducerBatchMaxBytes(max))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestStuckRowHoldsBackItsKey: rows written before the outbox's limit was
// lowered to what the relay's client takes (256 KiB): a 300 KB event of
// key k, then a small one of k, then one of key o. The relay publishes
// o's, never k's small one before its large one: the large row is stuck,
// with its reason in an ERROR log, Status, Ready and evbus.outbox.stuck.
// Once an operator deletes it, k's later row goes on.
func TestStuckRowHoldsBackItsKey(t *testing.T) {
	k := startKafka(t)
	enc := documents(t, k)
	t.Run("pgx", func(t *testing.T) { stuckRow(t, k, enc, pgxDB(t, evbustest.PostgresDatabase(t))) })
	t.Run("sqlite", func(t *testing.T) { stuckRow(t, k, enc, sqliteDB(t)) })
}

func stuckRow[Tx any](t *testing.T, k kafka, enc *bus.Encoder, db sqldb.DB[Tx]) {
	ctx := t.Context()
	prefix := t.Name() + "/"
	writer := newOutbox(t, db, enc)
	enqueue(t, db, writer, OrderDocument{OrderID: prefix + "k", Seq: 1, Body: make([]byte, 300_000)})
	enqueue(t, db, writer, OrderEvent{OrderID: prefix + "k", Seq: 2})
	enqueue(t, db, writer, OrderEvent{OrderID: prefix + "o", Seq: 1})

	o := testkit.NewOTel(t)
	const limit = 256 << 10
	var log logs
	ob := newOutbox(t, db, nil, outbox.MaxEventBytes(limit), outbox.Telemetry(o.Telemetry), outbox.Logger(slog.New(&log)))
	r := runRelay(t, ob, smallBatches(t, k, limit), outbox.RelayName("relay-"+t.Name()))
	outbox.SetStuckRecheck(r, 100*time.Millisecond)

	mine := func(ps []published) []published { return withPrefix(ps, prefix) }
	got := mine(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(mine(ps)) >= 1 }))
	var s outbox.Status
	waitFor(t, "Status to show the stuck row and k's two rows alone left", func() bool {
		var err error
		if s, err = ob.Status(ctx); err != nil {
			t.Fatal(err)
		}
		return len(s.Relays) == 1 && len(s.Relays[0].Stuck) == 1 && s.Backlog == 2
	})
	// o's row is published, and so would k's small one have been, in
	// the same batch.
	if len(got) != 1 || got[0].key != prefix+"o" {
		t.Fatalf("published %+v, want o's event alone", got)
	}
	stuck := s.Relays[0].Stuck[0]
	if string(stuck.Key) != prefix+"k" || stuck.Topic != topic || !strings.Contains(stuck.Reason, "MESSAGE_TOO_LARGE") || !strings.Contains(stuck.Reason, "262144") {
		t.Errorf("stuck row %+v, want k's, naming MESSAGE_TOO_LARGE and the client's limit", stuck)
	}
	if lines := log.at(slog.LevelError, "cannot be published", prefix+"k", "MESSAGE_TOO_LARGE"); len(lines) != 1 {
		t.Errorf("ERROR lines about the stuck row: %q, want one", lines)
	}
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "cannot be published") || !strings.Contains(err.Error(), prefix+"k") {
		t.Errorf("Ready: %v, want the stuck row", err)
	}
	if n := testkit.Counts(t, o.Reader)["evbus.outbox.stuck"]; n != 1 {
		t.Errorf("evbus.outbox.stuck %d, want 1", n)
	}

	// An operator deletes the stuck row: k's later row goes on.
	if _, err := db.Exec(ctx, "DELETE FROM evbus_outbox WHERE id = "+db.Dialect().Arg(1), stuck.ID); err != nil {
		t.Fatal(err)
	}
	// The two keys may lie on different partitions: which one a read
	// returns first says nothing of order.
	got = mine(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(mine(ps)) >= 2 }))
	keys := map[string]int64{}
	for _, p := range got {
		keys[p.key] = p.seq
	}
	if len(got) != 2 || keys[prefix+"o"] != 1 || keys[prefix+"k"] != 2 {
		t.Fatalf("published %+v, want o's event and k's small one", got)
	}
	waitFor(t, "Status without the stuck row", func() bool {
		s, err := ob.Status(ctx)
		return err == nil && len(s.Relays) == 1 && len(s.Relays[0].Stuck) == 0 && s.Backlog == 0
	})
	waitFor(t, "Ready", func() bool { return r.Ready() == nil })
}

// TestEnqueueRefusesWhatNoRelayPublishes: with MaxEventBytes(n), Enqueue
// refuses with bus.ErrTooLarge, and writes nothing of, every event that a
// relay whose client takes batches of n bytes could not publish, and
// accepts every other: all of those are published, none is stuck.
func TestEnqueueRefusesWhatNoRelayPublishes(t *testing.T) {
	const limit = 4096
	k := startKafka(t)
	db := sqliteDB(t)
	ob := newOutbox(t, db, documents(t, k), outbox.MaxEventBytes(limit))
	want := map[string][]int64{}
	refused := 0
	for size := 3600; size < 4100; size++ {
		kk := "sized/" + key(size%7)
		err := sqldb.InTx(t.Context(), db, func(tx *sql.Tx) error {
			return ob.Enqueue(t.Context(), tx, OrderDocument{OrderID: kk, Seq: int64(size), Body: make([]byte, size)})
		})
		switch {
		case err == nil:
			want[kk] = append(want[kk], int64(size))
		case errors.Is(err, bus.ErrTooLarge) && strings.Contains(err.Error(), "MaxEventBytes(4096)"):
			refused++
		default:
			t.Fatalf("Enqueue of a %d-byte body: %v", size, err)
		}
	}
	accepted := 500 - refused
	if refused == 0 || accepted == 0 {
		t.Fatalf("%d accepted, %d refused: want both", accepted, refused)
	}
	if n := backlog(t, ob); n != int64(accepted) {
		t.Fatalf("backlog %d, want the %d accepted", n, accepted)
	}
	runRelay(t, ob, smallBatches(t, k, limit))
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	got := withPrefix(consume(t, k.stack.Brokers(), func(ps []published) bool { return len(withPrefix(ps, "sized/")) >= accepted }), "sized/")
	if dups := checkOrder(t, got, want); dups != 0 {
		t.Errorf("%d events published twice", dups)
	}
}

// TestRelayRefusesSmallerClient: a relay whose client takes smaller
// batches than the events Enqueue accepts is refused, naming both limits
// and the fix.
func TestRelayRefusesSmallerClient(t *testing.T) {
	k := startKafka(t)
	ob := newOutbox(t, sqliteDB(t), nil)
	_, err := ob.Relay(smallBatches(t, k, 256<<10))
	if err == nil || !strings.Contains(err.Error(), "262144") || !strings.Contains(err.Error(), "MaxEventBytes(262144)") || !strings.Contains(err.Error(), "1000012") {
		t.Errorf("Relay with a client of 256 KiB batches: %v, want an error naming both limits", err)
	}
	if _, err := outbox.New(sqliteDB(t), nil, outbox.MaxEventBytes(100)); err == nil || !strings.Contains(err.Error(), "MaxEventBytes(100)") {
		t.Errorf("MaxEventBytes(100): %v, want an error naming it", err)
	}
}
