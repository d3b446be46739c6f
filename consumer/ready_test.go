package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// jsonLog is a logger whose records a test reads back.
type jsonLog struct{ buf logBuffer }

func (l *jsonLog) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(&l.buf, nil)) }

// records returns the records logged so far at level (any level when "")
// whose message contains msg.
func (l *jsonLog) records(t testing.TB, level, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if (level == "" || r["level"] == level) && strings.Contains(fmt.Sprint(r["msg"]), msg) {
			out = append(out, r)
		}
	}
	return out
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dialFailures counts the client's failed connection attempts.
type dialFailures struct{ n atomic.Int64 }

func (d *dialFailures) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		d.n.Add(1)
	}
}

// TestUnreachableBroker: a consumer whose broker address nobody listens on
// logs an ERROR naming the address and the cause at once, and no more
// lines while its client keeps failing; it does not claim to have started;
// Ready names the address. Once a broker listens there, the consumer
// starts, joins and Ready turns nil.
func TestUnreachableBroker(t *testing.T) {
	e := start(t) // its registry; the consumer's broker is elsewhere
	addr := closedPort(t)
	var log jsonLog
	failures := new(dialFailures)
	c, err := consumer.New("unreachable", e.reg,
		consumer.Kafka(kgo.SeedBrokers(addr), kgo.WithHooks(failures), kgo.WithLogger(kgoLogger()), kgo.HeartbeatInterval(100*time.Millisecond)),
		consumer.Logger(log.logger()))
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(c, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil })
	if err := c.Ready(); !errors.Is(err, consumer.ErrNotReady) || !strings.Contains(err.Error(), "Run has not been called") {
		t.Errorf("Ready before Run = %v, want ErrNotReady naming Run", err)
	}
	errc := run(t, c)

	waitFor(t, "an ERROR naming the broker", func() bool { return len(log.records(t, "ERROR", "cannot connect to a Kafka broker")) > 0 })
	rec := log.records(t, "ERROR", "cannot connect to a Kafka broker")[0]
	if rec["broker"] != addr || !strings.Contains(fmt.Sprint(rec["error"]), "connection refused") {
		t.Errorf("ERROR record %v: want broker %s and the cause (connection refused)", rec, addr)
	}
	err = c.Ready()
	if !errors.Is(err, consumer.ErrNotReady) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Ready = %v, want ErrNotReady naming %s and the cause", err, addr)
	}

	// Many attempts fail; one line tells (the next one is due after 30 s).
	waitFor(t, "more failed attempts", func() bool { return failures.n.Load() >= 5 })
	if n := len(log.records(t, "ERROR", "")); n != 1 {
		t.Errorf("%d ERROR records for %d failed connection attempts, want 1 (a bounded rate):\n%s", n, failures.n.Load(), log.buf.String())
	}
	for _, msg := range []string{"consumer started", "do not exist"} {
		if r := log.records(t, "", msg); len(r) > 0 {
			t.Errorf("logged %q while the broker cannot be reached: %v", msg, r)
		}
	}
	select {
	case err := <-errc:
		t.Fatalf("Run returned %v while the broker cannot be reached; want it to wait", err)
	default:
	}

	// A broker now listens at the address: the consumer starts and joins.
	_, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	kafka, err := kfake.NewCluster(kfake.Ports(p), kfake.SeedTopics(1, "orders", wire.DeadLetterTopic("orders", "unreachable"), wire.ReplayTopic("orders", "unreachable")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	waitFor(t, "Ready once joined", func() bool { return c.Ready() == nil })
	if len(log.records(t, "INFO", "consumer started")) != 1 || len(log.records(t, "INFO", "reachable again")) != 1 {
		t.Errorf("want one \"consumer started\" and one \"reachable again\" line:\n%s", log.buf.String())
	}
}

// TestReady: Ready is nil once the consumer joined its group, and ErrClosed
// after Close.
func TestReady(t *testing.T) {
	e := start(t)
	e.topics(3, "orders", wire.DeadLetterTopic("orders", "ready"), wire.ReplayTopic("orders", "ready"))
	c := e.consumer("ready")
	consumer.Handle(c, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil })
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	waitFor(t, "Ready", func() bool { return c.Ready() == nil })
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if err := c.Ready(); !errors.Is(err, consumer.ErrClosed) {
		t.Errorf("Ready after Close = %v, want ErrClosed", err)
	}
}

// TestReadyAfterRunReturned: Ready names why Run returned.
func TestReadyAfterRunReturned(t *testing.T) {
	e := start(t)
	e.topics(3, "orders")
	c := e.consumer("returned")
	consumer.Handle(c, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil })
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	waitFor(t, "Ready", func() bool { return c.Ready() == nil })
	stop := errors.New("shutting down")
	cancel(stop)
	if err := <-errc; !errors.Is(err, stop) {
		t.Fatalf("Run = %v, want the context's cause", err)
	}
	if err := c.Ready(); !errors.Is(err, consumer.ErrNotReady) || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Ready after Run returned = %v, want ErrNotReady with the cause", err)
	}
}

// TestRunEndsWhileUnreachable: a Run still waiting for its brokers returns
// its context's cause when the context ends.
func TestRunEndsWhileUnreachable(t *testing.T) {
	e := start(t)
	addr := closedPort(t)
	failures := new(dialFailures)
	c, err := consumer.New("unreachable-end", e.reg,
		consumer.Kafka(kgo.SeedBrokers(addr), kgo.WithHooks(failures), kgo.WithLogger(kgoLogger())),
		consumer.Logger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(c, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil })
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	waitFor(t, "a failed connection attempt", func() bool { return failures.n.Load() > 0 })
	stop := errors.New("shutting down")
	cancel(stop)
	if err := <-errc; !errors.Is(err, stop) {
		t.Errorf("Run = %v, want the context's cause", err)
	}
	if err := c.Ready(); !errors.Is(err, consumer.ErrNotReady) || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("Ready = %v, want ErrNotReady with the cause", err)
	}
}
