package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/domain"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/schema"
)

// orderPlaced is the domain event of the unit-of-work tests.
type orderPlaced struct{ ID string }

// The whole chain in one trace: a request span, the unit of work whose
// domain handler publishes an integration event, the outbox row's create
// span, the relay's publish span, the consumer's process span and the
// handler's own span; and a failing domain handler that leaves nothing.
func TestTraceThroughTheOutbox(t *testing.T) {
	k := startKafka(t)
	db := sqliteDB(t)
	o := testkit.NewOTel(t)
	tel, tp, spans := o.Telemetry, o.Provider, o.Spans
	ob := newOutbox(t, db, k.enc, outbox.Telemetry(tel))
	if _, err := db.Exec(t.Context(), "CREATE TABLE orders (id TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	failDomain := errors.New("no stock")
	var domainErr error
	d := domain.NewDispatcher[*sql.Tx]()
	domain.On(d, func(ctx context.Context, s *domain.Scope[*sql.Tx], ev orderPlaced) error {
		if domainErr != nil {
			return domainErr
		}
		s.Publish(OrderEvent{OrderID: ev.ID, Seq: 1})
		return nil
	})
	uow, err := domain.NewUnitOfWork(db, d, ob)
	if err != nil {
		t.Fatal(err)
	}
	place := func(ctx context.Context, id string) error {
		return uow.Do(ctx, func(ctx context.Context, s *domain.Scope[*sql.Tx]) error {
			s.Record(orderPlaced{ID: id})
			_, err := s.Tx.ExecContext(ctx, "INSERT INTO orders (id) VALUES (?)", id)
			return err
		})
	}

	// A failing domain handler rolls back the order and its outbox row.
	domainErr = failDomain
	if err := place(t.Context(), "o-0"); !errors.Is(err, failDomain) {
		t.Fatalf("unit of work: %v, want the domain handler's error", err)
	}
	domainErr = nil
	var orders int
	if err := db.Pool().QueryRow("SELECT count(*) FROM orders").Scan(&orders); err != nil || orders != 0 {
		t.Fatalf("orders after the failed unit of work: %d (%v)", orders, err)
	}
	if st, err := ob.Status(t.Context()); err != nil || st.Backlog != 0 {
		t.Fatalf("outbox backlog after the failed unit of work: %d (%v), want 0", st.Backlog, err)
	}

	reg, err := schema.New(k.stack.RegistryURL())
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan trace.SpanContext, 1)
	c, err := consumer.New("billing", reg, consumer.Telemetry(tel), consumer.Kafka(kgo.SeedBrokers(k.stack.Brokers()...)))
	if err != nil {
		t.Fatal(err)
	}
	consumer.Handle(c, orderEvent, func(ctx context.Context, ev *OrderEvent, m bus.Meta) error {
		_, span := tp.Tracer("billing").Start(ctx, "bill")
		span.End()
		handled <- span.SpanContext()
		return nil
	})
	go c.Run(t.Context()) //nolint:errcheck // closed below
	defer c.Close(context.Background())

	ctx, request := tp.Tracer("http").Start(t.Context(), "POST /orders")
	if err := place(ctx, "o-1"); err != nil {
		t.Fatal(err)
	}
	request.End()
	runRelay(t, ob, k.cl)
	var bill trace.SpanContext
	select {
	case bill = <-handled:
	case <-time.After(30 * time.Second):
		t.Fatal("the event did not reach the handler")
	}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range spans.Ended() {
			byID[s.SpanContext().SpanID()] = s
		}
		if _, ok := byID[bill.SpanID()]; ok && len(byID) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Walk up from the handler's span to the request.
	var chain []string
	for id := bill.SpanID(); id.IsValid(); {
		s, ok := byID[id]
		if !ok {
			break
		}
		if s.SpanContext().TraceID() != request.SpanContext().TraceID() {
			t.Errorf("span %q is in another trace", s.Name())
		}
		chain = append(chain, s.Name())
		id = s.Parent().SpanID()
	}
	want := []string{"bill", "process orders", "publish orders", "create orders", "POST /orders"}
	if len(chain) != len(want) {
		t.Fatalf("chain from the handler up: %q, want %q", chain, want)
	}
	for i := range want {
		if chain[i] != want[i] {
			t.Fatalf("chain from the handler up: %q, want %q", chain, want)
		}
	}

	seen := map[string]bool{}
	for _, sm := range testkit.Collect(t, o.Reader).ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				seen[m.Name] = len(d.DataPoints) > 0 && d.DataPoints[0].Count > 0
			case metricdata.Gauge[int64]:
				seen[m.Name] = len(d.DataPoints) == 1
			case metricdata.Gauge[float64]:
				seen[m.Name] = len(d.DataPoints) == 1
			}
		}
	}
	for _, name := range []string{"evbus.outbox.delay", "evbus.outbox.backlog", "evbus.outbox.oldest_age"} {
		if !seen[name] {
			t.Errorf("metric %s not reported (have %v)", name, seen)
		}
	}
}
