package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/outbox"
)

// TestRelayUnreachableBroker: a relay whose client's broker address
// nobody listens on logs an ERROR naming the address and the cause within
// seconds, again at most once per interval while it lasts, and Ready
// names it too.
func TestRelayUnreachableBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var log logs
	ob := newOutbox(t, sqliteDB(t), nil, outbox.Logger(slog.New(&log)))
	r, err := ob.Relay(cl)
	if err != nil {
		t.Fatal(err)
	}
	const every = 300 * time.Millisecond
	outbox.SetLogEvery(r, every)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	var lines []string
	for len(lines) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ERROR lines naming %s within 10s: %q, want 3", addr, lines)
		}
		time.Sleep(20 * time.Millisecond)
		lines = log.at(slog.LevelError, "Kafka unreachable at "+addr, "connection refused")
	}
	// Repeated, but not once per attempt: at most once per interval.
	var times []time.Time
	log.mu.Lock()
	for _, rec := range log.recs {
		if rec.Level == slog.LevelError {
			times = append(times, rec.Time)
		}
	}
	log.mu.Unlock()
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < every {
			t.Errorf("ERROR lines %v apart, want at least %v: %q", gap, every, lines)
		}
	}
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Ready: %v, want an error naming %s", err, addr)
	}
}

// TestRelayRunReturnsCause: Run returns context.Cause of its context, as
// consumer.Consumer.Run does; Ready says the relay is not started before,
// is ready once it publishes, and has stopped after.
func TestRelayRunReturnsCause(t *testing.T) {
	k := startKafka(t)
	db := sqliteDB(t)
	ob := newOutbox(t, db, k.enc)
	r, err := ob.Relay(k.cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Ready before Run: %v, want not started", err)
	}
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	enqueue(t, db, ob, OrderEvent{OrderID: "ready", Seq: 1})
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	waitFor(t, "Ready", func() bool { return r.Ready() == nil })
	cancel(cause)
	if err := <-done; !errors.Is(err, cause) {
		t.Errorf("Run: %v, want the context's cause", err)
	}
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Ready after Run: %v, want stopped", err)
	}
}

// TestRelayLogsToDefault: without a Logger option the relay logs to
// slog.Default().
func TestRelayLogsToDefault(t *testing.T) {
	k := startKafka(t)
	var log logs
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(&log))
	runRelay(t, newOutbox(t, sqliteDB(t), nil), k.cl, outbox.RelayName("default-logger"))
	waitFor(t, "the relay to log", func() bool { return len(log.at(slog.LevelInfo, "took its shard", "default-logger")) > 0 })
}

// TestRelayUnreachableDatabase: a relay whose PostgreSQL nobody listens
// for logs an ERROR naming the cause, and Ready names it too.
func TestRelayUnreachableDatabase(t *testing.T) {
	k := startKafka(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	db := pgxDB(t, "postgres://evbus@127.0.0.1:"+strconv.Itoa(port)+"/evbus?connect_timeout=2")
	var log logs
	ob, err := outbox.New(db, nil, outbox.Logger(slog.New(&log)))
	if err != nil {
		t.Fatal(err)
	}
	r := runRelay(t, ob, k.cl)
	waitFor(t, "an ERROR about the database", func() bool {
		return len(log.at(slog.LevelError, "database failing", "relay session", strconv.Itoa(port))) > 0
	})
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "relay session") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("Ready: %v, want the database's failure", err)
	}
}

// TestRelayOneShardFailing: one shard's rows cannot be read (a damaged
// created_at), so that shard's relay fails at every round while the other
// shard's works. Ready reports the failing shard the whole time: the
// other shard's rounds do not clear it.
func TestRelayOneShardFailing(t *testing.T) {
	k := startKafka(t)
	db := sqliteDB(t)
	ob := newOutbox(t, db, nil, outbox.Shards(2), outbox.Logger(slog.New(slog.DiscardHandler)))
	if _, err := db.Exec(t.Context(), `INSERT INTO evbus_outbox (shard, topic, key, value, headers, created_at) VALUES (1, 'orders', X'6B', X'', X'01', 'not a time')`); err != nil {
		t.Fatal(err)
	}
	r := runRelay(t, ob, k.cl, outbox.PollInterval(5*time.Millisecond))
	waitFor(t, "Ready to name shard 1", func() bool {
		err := r.Ready()
		return err != nil && strings.Contains(err.Error(), "shard 1")
	})
	// Shard 0 finds nothing every few milliseconds meanwhile, and shard
	// 1 waits a TakeoverInterval (1 s) between its rounds.
	for range 200 {
		if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "shard 1") {
			t.Fatalf("Ready: %v while shard 1 cannot read its rows", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
