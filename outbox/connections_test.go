package outbox_test

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
)

// TestRelayLeavesConnections: a relay of four shards on a pool of four
// connections (pgxpool's default on a two-core machine) publishes a
// backlog while the service's own transactions, on the same pool, write
// more events, and Status answers: none of them waits for a connection
// the relay holds.
func TestRelayLeavesConnections(t *testing.T) {
	const writers, txs = 2, 100
	k := startKafka(t)
	db := pgxPool(t, evbustest.PostgresDatabase(t), 4)
	ob := newOutbox(t, db, k.enc, outbox.Shards(4))
	want := map[string][]int64{}
	for i := range 400 {
		want[key(i%40)] = append(want[key(i%40)], int64(i))
	}
	for i := 0; i < 400; i += 40 {
		var evs []any
		for j := i; j < i+40; j++ {
			evs = append(evs, OrderEvent{OrderID: key(j % 40), Seq: int64(j)})
		}
		enqueue(t, db, ob, evs...)
	}
	runRelay(t, ob, k.cl, outbox.BatchSize(10))
	waitFor(t, "the relay to take its four shards", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		s, err := ob.Status(ctx)
		if err != nil {
			t.Fatalf("Status while the relay runs: %v", err)
		}
		if len(s.Relays) != 4 {
			return false
		}
		for _, r := range s.Relays {
			if !r.Active {
				return false
			}
		}
		return true
	})

	// Each transaction and Status call must get a connection within 5s.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range txs {
				kk := key(100 + w)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := sqldb.InTx(ctx, db, func(tx pgx.Tx) error {
					return ob.Enqueue(ctx, tx, OrderEvent{OrderID: kk, Seq: int64(i)})
				})
				cancel()
				if err != nil {
					t.Errorf("a business transaction while the relay runs: %v", err)
					return
				}
				mu.Lock()
				want[kk] = append(want[kk], int64(i))
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := ob.Status(ctx)
			cancel()
			if err != nil {
				t.Errorf("Status while the relay runs: %v", err)
				return
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	got := consume(t, k.stack.Brokers(), atLeast(400+writers*txs))
	if dups := checkOrder(t, got, want); dups != 0 {
		t.Errorf("%d events published twice", dups)
	}
}

// TestRelayRefusesPoolTooSmall: a relay that would take every connection
// of the pool is refused at once, with an error that names the pool's
// size and the shards; one that leaves a connection is not.
func TestRelayRefusesPoolTooSmall(t *testing.T) {
	k := startKafka(t)
	url := evbustest.PostgresDatabase(t)
	for _, c := range []struct {
		pool, shards int
		opts         []outbox.RelayOption
		want         string // "" when accepted
	}{
		{pool: 4, shards: 4, opts: []outbox.RelayOption{outbox.Connections(4)}, want: "the pool holds 4 connections and the relay of Shards(4) takes up to 4 (Connections(4))"},
		{pool: 2, shards: 4, want: "the pool holds 2 connections and the relay of Shards(4) takes up to 2 (Connections(2))"},
		{pool: 2, shards: 1, want: "the pool holds 2 connections and the relay of Shards(1) takes up to 2"},
		{pool: 4, shards: 4, opts: []outbox.RelayOption{outbox.Connections(3)}},
		{pool: 4, shards: 2, opts: []outbox.RelayOption{outbox.Connections(8)}}, // at most one per shard and the session: 3
		{pool: 4, shards: 4},
	} {
		ob, err := outbox.New(pgxPool(t, url, int32(c.pool)), k.enc, outbox.Shards(c.shards))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ob.Relay(k.cl, c.opts...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("pool %d, Shards(%d), %d options: %v, want a relay", c.pool, c.shards, len(c.opts), err)
		case c.want != "" && (!errors.Is(err, outbox.ErrPoolTooSmall) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("pool %d, Shards(%d): %v, want outbox.ErrPoolTooSmall saying %q", c.pool, c.shards, err, c.want)
		}
	}
	ob := newOutbox(t, pgxDB(t, url), k.enc)
	if _, err := ob.Relay(k.cl, outbox.Connections(1)); err == nil || !strings.Contains(err.Error(), "Connections(1)") {
		t.Errorf("Connections(1) on PostgreSQL: %v, want an error naming it", err)
	}
}

// TestRelaySessionLost: the server ends the relay's session (the
// connection of its shard locks) while it publishes: the relay stops
// working its shards, takes them again on a new session, and every event
// is published in per-key order.
func TestRelaySessionLost(t *testing.T) {
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	var log logs
	ob := newOutbox(t, db, k.enc, outbox.Shards(2), outbox.Logger(slog.New(&log)))
	runRelay(t, ob, k.cl, outbox.BatchSize(50), outbox.TakeoverInterval(100*time.Millisecond))
	done := make(chan map[string][]int64)
	go func() { done <- writers(t, db, ob, 2, 2000, time.Millisecond) }()
	waitFor(t, "200 events published", func() bool { return publishedRows(t, db) >= 200 })
	// The relays' locks' first key, as outbox.New makes it.
	h := fnv.New32a()
	h.Write([]byte("evbus-relay:evbus_outbox"))
	var ended int
	if err := sqldb.QueryRow(t.Context(), db, "SELECT count(*) FROM (SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int8::oid AND objsubid = 2 AND granted) AS s WHERE pg_terminate_backend(pid)",
		[]any{int64(h.Sum32())}, &ended); err != nil || ended != 1 {
		t.Fatalf("ended %d sessions holding relay locks (%v), want 1", ended, err)
	}
	want := <-done
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	waitFor(t, "the relay to take its shards again", func() bool { return len(log.at(slog.LevelInfo, "took its shard")) >= 4 })
	got := consume(t, k.stack.Brokers(), atLeast(endTotal(t, k)))
	if distinct(got) != 2000 {
		t.Errorf("%d distinct events published, want 2000", distinct(got))
	}
	t.Logf("%d events published twice", checkOrder(t, got, want))
}
