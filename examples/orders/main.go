// Command orders is the whole evbus story on the embedded stack and
// SQLite, in one program: an orders service places orders through the
// unit of work (the order row, its domain event and the outbox row in one
// transaction); the relay publishes them; billing and notifications
// consume them idempotently, each in its own database; a duplicate
// delivery is skipped; an order billing rejects lands in billing's
// dead-letter topic, which `evbus dlt ls` shows; `evbus dlt groups`
// groups the dead letters by cause; billing is "fixed" and `evbus dlt
// replay` sends that cause's records back to billing only, which `evbus
// dlt ls` then shows in the ledger; and one
// order's trace runs from the request to both handlers.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/domain"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// OrderPlaced is the integration event: its Avro schema is inferred from
// the struct, its key is the order id.
type OrderPlaced struct {
	OrderID    string `avro:"order_id"`
	CustomerID string `avro:"customer_id"`
	Cents      int64  `avro:"cents"`
}

var orderPlaced = bus.Event[OrderPlaced]("orders", func(o *OrderPlaced) string { return o.OrderID }, bus.Namespace("com.example.orders"))

// Order is the aggregate; placed is its domain event.
type Order struct {
	domain.Recorder
	ID, Customer string
	Cents        int64
}

type placed struct{ order *Order }

func (o *Order) Place() { o.Record(placed{o}) }

// creditLimit is billing's rule; the "fix" raises it.
var creditLimit atomic.Int64

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// counts are the figures of the summary, by group.
type counts struct {
	mu                                sync.Mutex
	handled, duplicates, deadLettered map[string]int
	seen                              map[string]map[string]int // group -> order -> handler runs that committed
}

func (c *counts) observe(o consumer.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch o.Result {
	case consumer.Handled:
		c.handled[o.Group]++
		c.seen[o.Group][string(o.Meta.Key)]++
	case consumer.Duplicate:
		c.duplicates[o.Group]++
	case consumer.DeadLettered:
		c.deadLettered[o.Group]++
	}
}

func (c *counts) get(m map[string]int, group string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[group]
}

// wait polls cond until it holds; a hang guard, the demo's figures do not
// depend on how long it takes.
func wait(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "evbus-orders-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cli, err := buildCLI(ctx, dir)
	if err != nil {
		return err
	}

	stack, err := devstack.Start(ctx)
	if err != nil {
		return err
	}
	defer stack.Close()
	fmt.Fprintf(out, "1. the embedded stack: kafka %v, registry %s; each service has its own SQLite database\n", stack.Brokers(), stack.RegistryURL())

	// Traces go to memory, to show one order's trace at the end.
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	tel, err := tracing.New(tracing.TracerProvider(tp), tracing.Propagator(propagation.TraceContext{}))
	if err != nil {
		return err
	}
	quiet := slog.New(slog.DiscardHandler)

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 3, DeadLetterGroups: []string{"billing", "notifications"}}); err != nil {
		return err
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		return err
	}

	// The orders service: the unit of work writes the order, dispatches
	// its domain event, whose handler publishes the integration event
	// through the outbox, all in one transaction.
	ordersDB, err := sqlite.Open(ctx, filepath.Join(dir, "orders.db"))
	if err != nil {
		return err
	}
	defer ordersDB.Pool().Close()
	if _, err := ordersDB.Exec(ctx, "CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT, cents INTEGER)"); err != nil {
		return err
	}
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/orders-service"), bus.Types(orderPlaced))
	if err != nil {
		return err
	}
	ob, err := outbox.New(ordersDB, enc, outbox.Telemetry(tel), outbox.Logger(quiet))
	if err != nil {
		return err
	}
	if err := ob.Migrate(ctx); err != nil {
		return err
	}
	events := domain.NewDispatcher[*sql.Tx]()
	domain.On(events, func(ctx context.Context, s *domain.Scope[*sql.Tx], ev placed) error {
		s.Publish(OrderPlaced{OrderID: ev.order.ID, CustomerID: ev.order.Customer, Cents: ev.order.Cents})
		return nil
	})
	uow, err := domain.NewUnitOfWork(ordersDB, events, ob)
	if err != nil {
		return err
	}
	orders := []Order{{ID: "o-1", Customer: "c-7", Cents: 4999}, {ID: "o-2", Customer: "c-9", Cents: 1250},
		{ID: "o-3", Customer: "c-7", Cents: 2500000}, {ID: "o-4", Customer: "c-3", Cents: 31045}, {ID: "o-5", Customer: "c-9", Cents: 800}}
	var traceOfFirst trace.TraceID
	for i := range orders {
		o := &orders[i]
		rctx, request := tp.Tracer("orders-service").Start(ctx, "POST /orders")
		err := uow.Do(rctx, func(ctx context.Context, s *domain.Scope[*sql.Tx]) error {
			s.Track(o)
			o.Place()
			_, err := s.Tx.ExecContext(ctx, "INSERT INTO orders VALUES (?, ?, ?)", o.ID, o.Customer, o.Cents)
			return err
		})
		request.End()
		if err != nil {
			return err
		}
		if i == 0 {
			traceOfFirst = request.SpanContext().TraceID()
		}
	}
	st, err := ob.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. orders-service placed %d orders: order row + domain event + outbox row, one transaction each; outbox backlog %d\n", len(orders), st.Backlog)

	// The relay publishes committed rows.
	relayCl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...))
	if err != nil {
		return err
	}
	defer relayCl.Close()
	relay, err := ob.Relay(relayCl)
	if err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	defer func() { stopRelay(); <-relayDone }()

	// Billing and notifications: idempotent handlers, each group in its
	// own database.
	c := &counts{handled: map[string]int{}, duplicates: map[string]int{}, deadLettered: map[string]int{},
		seen: map[string]map[string]int{"billing": {}, "notifications": {}}}
	creditLimit.Store(1_000_000)
	start := func(group, table string, handle func(ctx context.Context, tx *sql.Tx, ev *OrderPlaced) error) (func(), error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, group+".db"))
		if err != nil {
			return nil, err
		}
		if _, err := db.Exec(ctx, "CREATE TABLE "+table+" (order_id TEXT, cents INTEGER)"); err != nil {
			return nil, err
		}
		p, err := consumer.NewProcessed(sqldb.DB[*sql.Tx](db))
		if err != nil {
			return nil, err
		}
		if err := p.Migrate(ctx); err != nil {
			return nil, err
		}
		cons, err := consumer.New(group, reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...), kgo.FetchMaxWait(100*time.Millisecond)),
			consumer.Logger(quiet), consumer.Telemetry(tel), consumer.Observe(c.observe), consumer.CommitInterval(100*time.Millisecond))
		if err != nil {
			return nil, err
		}
		consumer.HandleTx(cons, orderPlaced, p, func(ctx context.Context, tx *sql.Tx, ev *OrderPlaced, m bus.Meta) error {
			return handle(ctx, tx, ev)
		}, consumer.Retry(consumer.Backoff{Initial: 10 * time.Millisecond, MaxAttempts: 2}))
		errc := make(chan error, 1)
		go func() { errc <- cons.Run(ctx) }()
		return func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = cons.Close(cctx)
			<-errc
			db.Pool().Close()
		}, nil
	}
	stopBilling, err := start("billing", "invoices", func(ctx context.Context, tx *sql.Tx, ev *OrderPlaced) error {
		if ev.Cents > creditLimit.Load() {
			return consumer.Permanent(fmt.Errorf("order %s: %d.%02d is over the credit limit", ev.OrderID, ev.Cents/100, ev.Cents%100))
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO invoices VALUES (?, ?)", ev.OrderID, ev.Cents)
		return err
	})
	if err != nil {
		return err
	}
	defer stopBilling()
	stopNotifications, err := start("notifications", "notifications", func(ctx context.Context, tx *sql.Tx, ev *OrderPlaced) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO notifications VALUES (?, ?)", ev.OrderID, ev.Cents)
		return err
	})
	if err != nil {
		return err
	}
	defer stopNotifications()
	if err := wait(ctx, "billing and notifications", func() bool {
		return c.get(c.handled, "billing")+c.get(c.deadLettered, "billing") == len(orders) && c.get(c.handled, "notifications") == len(orders)
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "3. the relay published %d events; billing handled %d and dead-lettered %d (o-3 is over the credit limit); notifications handled %d\n",
		len(orders), c.get(c.handled, "billing"), c.get(c.deadLettered, "billing"), c.get(c.handled, "notifications"))

	// A duplicate delivery: the record of o-1 sent again, same ce_id (a
	// producer retry, a relay that died before marking its batch).
	dup, err := firstRecord(ctx, stack, "o-1")
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: dup.Key, Value: dup.Value, Headers: dup.Headers}).FirstErr(); err != nil {
		return err
	}
	if err := wait(ctx, "the duplicate", func() bool {
		return c.get(c.duplicates, "billing") == 1 && c.get(c.duplicates, "notifications") == 1
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "4. o-1's event delivered again with the same ce_id %s: both groups skipped it as a duplicate\n", header(dup, wire.HeaderID))

	env := []string{"EVBUS_BROKERS=" + strings.Join(stack.Brokers(), ","), "EVBUS_REGISTRY=" + stack.RegistryURL()}
	fmt.Fprintln(out, "5. $ evbus dlt ls --group billing")
	if _, err := runCLI(ctx, out, cli, env, "dlt", "ls", "--group", "billing"); err != nil {
		return err
	}

	// Triage: billing's dead letters by cause, then the cause replayed as
	// a whole once fixed.
	fmt.Fprintln(out, "6. triage: $ evbus dlt groups --group billing")
	groups, err := runCLI(ctx, out, cli, env, "dlt", "groups", "--group", "billing")
	if err != nil {
		return err
	}
	fingerprint, err := firstFingerprint(groups)
	if err != nil {
		return err
	}
	creditLimit.Store(10_000_000)
	fmt.Fprintf(out, "7. billing fixed (credit limit raised); $ evbus dlt replay --group billing --fingerprint %s --reason \"credit limit raised\" --yes\n", fingerprint)
	if _, err := runCLI(ctx, out, cli, env, "dlt", "replay", "--group", "billing", "--fingerprint", fingerprint, "--reason", "credit limit raised", "--yes"); err != nil {
		return err
	}
	if err := wait(ctx, "the replay", func() bool { return c.get(c.handled, "billing") == len(orders) }); err != nil {
		return err
	}
	c.mu.Lock()
	o3Billing, o3Notifications := c.seen["billing"]["o-3"], c.seen["notifications"]["o-3"]
	c.mu.Unlock()
	fmt.Fprintf(out, "   billing handled o-3 %d time(s) after the replay; notifications handled it %d time(s) in all: the replay went to billing only\n", o3Billing, o3Notifications)
	// billing's consumer records the outcome in the ledger before it
	// commits the replayed record's offset.
	if err := wait(ctx, "the replay's outcome", func() bool {
		states, err := deadletter.ReadStates(ctx, cl, kadm.NewClient(cl), "billing")
		for _, r := range states {
			return err == nil && r.State == wire.LedgerResolved // o-3's, the one dead letter
		}
		return false
	}); err != nil {
		return err
	}
	fmt.Fprintln(out, "8. $ evbus dlt ls --group billing   (its state in billing's ledger)")
	if _, err := runCLI(ctx, out, cli, env, "dlt", "ls", "--group", "billing"); err != nil {
		return err
	}

	// One order's trace, from the request to both handlers.
	if err := wait(ctx, "the trace", func() bool { return len(chain(spans.Ended(), traceOfFirst)) >= 5 }); err != nil {
		return err
	}
	fmt.Fprintf(out, "9. o-1's trace %s:\n", traceOfFirst)
	for _, line := range chain(spans.Ended(), traceOfFirst) {
		fmt.Fprintln(out, "   "+line)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(out, "\nsummary")
	fmt.Fprintf(out, "  %-14s %9s %7s %10s %13s %8s\n", "group", "published", "handled", "duplicates", "dead-lettered", "replayed")
	for _, g := range []string{"billing", "notifications"} {
		replayed := 0
		if g == "billing" {
			replayed = 1
		}
		fmt.Fprintf(out, "  %-14s %9d %7d %10d %13d %8d\n", g, len(orders), c.handled[g], c.duplicates[g], c.deadLettered[g], replayed)
	}
	return nil
}

// chain lists the spans of trace id as "name (parent)", in start order.
func chain(ended []sdktrace.ReadOnlySpan, id trace.TraceID) []string {
	var in []sdktrace.ReadOnlySpan
	names := map[trace.SpanID]string{}
	for _, s := range ended {
		if s.SpanContext().TraceID() == id {
			in = append(in, s)
			names[s.SpanContext().SpanID()] = s.Name()
		}
	}
	slices.SortFunc(in, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	var out []string
	for _, s := range in {
		line := s.Name()
		if p, ok := names[s.Parent().SpanID()]; ok {
			line += "  <- " + p
		}
		if g := attr(s, "messaging.consumer.group.name"); g != "" {
			line += "  [" + g + ": " + attr(s, "evbus.outcome") + "]"
		}
		out = append(out, line)
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// firstRecord reads the first record of key from the orders topic.
func firstRecord(ctx context.Context, stack *devstack.Stack, key string) (*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			if string(r.Key) == key {
				return r, nil
			}
		}
	}
	return nil, ctx.Err()
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// buildCLI builds the evbus command into dir, or takes the one EVBUS_CLI
// names (make demo builds it first).
func buildCLI(ctx context.Context, dir string) (string, error) {
	if p := os.Getenv("EVBUS_CLI"); p != "" {
		return p, nil
	}
	bin := filepath.Join(dir, "evbus")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/evbus/evbus/cmd/evbus")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the evbus command: %w\n%s", err, out)
	}
	return bin, nil
}

// runCLI runs the evbus command and copies its output, indented.
func runCLI(ctx context.Context, out io.Writer, cli string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintln(out, "   "+line)
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("evbus %s", strings.Join(args, " ")), err)
	}
	return string(b), nil
}

// firstFingerprint is the fingerprint of the first cause evbus dlt groups
// printed: the largest.
func firstFingerprint(table string) (string, error) {
	lines := strings.Split(table, "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "FINGERPRINT") {
		return "", fmt.Errorf("evbus dlt groups printed no cause:\n%s", table)
	}
	return strings.Fields(lines[1])[0], nil
}
