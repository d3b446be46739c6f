package bus_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

type OrderPlaced struct {
	OrderID string `avro:"order_id"`
	Amount  int64  `avro:"amount"`
	Note    string `avro:"note"`
}

type OrderShipped struct {
	OrderID string `avro:"order_id"`
}

var (
	orderPlaced  = bus.Event[OrderPlaced]("orders", func(e *OrderPlaced) string { return e.OrderID }, bus.Namespace("com.example.orders"))
	orderShipped = bus.Event[OrderShipped]("orders", func(e *OrderShipped) string { return e.OrderID }, bus.Namespace("com.example.orders"))
)

// env is a started stack with the orders topic, a client and a registry.
type env struct {
	cl  *kgo.Client
	reg *schema.Registry
	adm *kadm.Client
}

func setup(t *testing.T, opts ...kgo.Opt) env {
	t.Helper()
	k := testkit.Connect(t, evbustest.Start(t), opts...)
	if err := bus.CreateTopics(t.Context(), k.Admin, bus.TopicSpec{Name: "orders", Partitions: 3, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	return env{cl: k.Client, reg: k.Registry, adm: k.Admin}
}

func (e env) publisher(t *testing.T, opts ...bus.PublisherOption) *bus.Publisher {
	t.Helper()
	p, err := bus.NewPublisher(t.Context(), e.cl, e.reg, append([]bus.PublisherOption{bus.Source("/orders-service"), bus.Types(orderPlaced, orderShipped)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var readAll = testkit.ReadN

func header(r *kgo.Record, key string) (string, bool) { return testkit.Header(r.Headers, key) }

func TestPublishWritesTheWireContract(t *testing.T) {
	e := setup(t)
	p := e.publisher(t)
	ctx := bus.WithCorrelationID(t.Context(), "req-42")
	if err := p.Publish(ctx, OrderPlaced{OrderID: "o-1", Amount: 250, Note: "gift"}, &OrderShipped{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, e.cl.OptValue(kgo.SeedBrokers).([]string), "orders", 2)
	c, err := codec.New(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if string(r.Key) != "o-1" {
			t.Fatalf("key %q, want the aggregate id", r.Key)
		}
		if recs[0].Partition != r.Partition {
			t.Fatal("events of one aggregate landed on different partitions")
		}
		want := map[string]string{
			wire.HeaderSpecVersion: "1.0", wire.HeaderSource: "/orders-service", wire.HeaderContentType: "application/avro",
			wire.HeaderSubject: "o-1", wire.HeaderCorrelationID: "req-42",
		}
		for k, v := range want {
			if got, _ := header(r, k); got != v {
				t.Fatalf("header %s = %q, want %q", k, got, v)
			}
		}
		id, _ := header(r, wire.HeaderID)
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Fatalf("ce_id %q is not a UUIDv7: %v", id, err)
		}
		at, _ := header(r, wire.HeaderTime)
		if ts, err := time.Parse(time.RFC3339Nano, at); err != nil || !strings.HasSuffix(at, "Z") || time.Since(ts) > time.Minute {
			t.Fatalf("ce_time %q is not a recent RFC 3339 UTC time: %v", at, err)
		}
		if _, ok := header(r, wire.HeaderCausationID); ok {
			t.Fatal("an event published outside a handler carries a causation id")
		}
		typ, _ := header(r, wire.HeaderType)
		switch typ {
		case "com.example.orders.OrderPlaced":
			var got OrderPlaced
			if err := c.Decode(ctx, r.Value, nil, orderPlaced.Descriptor().Schema(), &got); err != nil || got != (OrderPlaced{OrderID: "o-1", Amount: 250, Note: "gift"}) {
				t.Fatalf("decoded %+v, %v", got, err)
			}
		case "com.example.orders.OrderShipped":
		default:
			t.Fatalf("ce_type %q", typ)
		}
	}
	if recs[0].Offset > recs[1].Offset {
		t.Fatal("events of one Publish call are out of order on their partition")
	}
}

func TestCausationFlowsFromTheHandledEvent(t *testing.T) {
	e := setup(t)
	p := e.publisher(t)
	handling := bus.WithMeta(t.Context(), &bus.Meta{ID: "evt-1", CorrelationID: "conv-9"})
	if err := p.Publish(handling, OrderShipped{OrderID: "o-2"}); err != nil {
		t.Fatal(err)
	}
	first := bus.WithMeta(t.Context(), &bus.Meta{ID: "evt-2"}) // a root event: its id is the conversation
	if err := p.Publish(first, OrderShipped{OrderID: "o-2"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), OrderShipped{OrderID: "o-2"}); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, e.cl.OptValue(kgo.SeedBrokers).([]string), "orders", 3)
	want := [][2]string{{"conv-9", "evt-1"}, {"evt-2", "evt-2"}}
	for i, w := range want {
		corr, _ := header(recs[i], wire.HeaderCorrelationID)
		cause, _ := header(recs[i], wire.HeaderCausationID)
		if corr != w[0] || cause != w[1] {
			t.Fatalf("record %d: correlation %q causation %q, want %q %q", i, corr, cause, w[0], w[1])
		}
	}
	own, _ := header(recs[2], wire.HeaderID)
	if corr, _ := header(recs[2], wire.HeaderCorrelationID); corr != own {
		t.Fatalf("a root event's correlation id is %q, want its own id %q", corr, own)
	}
}

// Ids of one publisher only grow: a UUIDv7 sorts by its time, and ids
// made within one millisecond count up.
func TestEventIDsIncrease(t *testing.T) {
	e := setup(t)
	p := e.publisher(t)
	events := make([]any, 200)
	for i := range events {
		events[i] = OrderShipped{OrderID: "same-key"}
	}
	if err := p.Publish(t.Context(), events...); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, e.cl.OptValue(kgo.SeedBrokers).([]string), "orders", len(events))
	prev := ""
	for _, r := range recs {
		id, _ := header(r, wire.HeaderID)
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("ce_id %q is not an RFC 9562 UUIDv7: %v", id, err)
		}
		if id <= prev {
			t.Fatalf("ce_id %s at offset %d does not follow %s", id, r.Offset, prev)
		}
		prev = id
	}
}

type Unregistered struct{ ID string }

func TestPublishReportsPerEventErrors(t *testing.T) {
	e := setup(t, kgo.ProducerBatchMaxBytes(2000))
	p := e.publisher(t)
	events := []any{
		OrderPlaced{OrderID: "ok-1"},
		Unregistered{ID: "x"},
		OrderPlaced{OrderID: ""},
		OrderPlaced{OrderID: "big", Note: strings.Repeat("x", 5000)},
		(*OrderPlaced)(nil),
		nil,
		&OrderPlaced{OrderID: "ok-2"},
	}
	err := p.Publish(t.Context(), events...)
	var pe *bus.PublishError
	if !errors.As(err, &pe) || len(pe.Errs) != len(events) {
		t.Fatalf("want a PublishError with %d entries, got %v", len(events), err)
	}
	checks := []error{nil, bus.ErrUnknownType, bus.ErrEmptyKey, bus.ErrTooLarge, nil, bus.ErrUnknownType, nil}
	for i, want := range checks {
		got := pe.Errs[i]
		switch {
		case i == 4:
			if got == nil || !strings.Contains(got.Error(), "nil") {
				t.Fatalf("event %d: want an error about a nil event, got %v", i, got)
			}
		case want == nil && got != nil, want != nil && !errors.Is(got, want):
			t.Fatalf("event %d: want %v, got %v", i, want, got)
		}
	}
	if !errors.Is(err, bus.ErrTooLarge) || !strings.Contains(err.Error(), "5 of 7") {
		t.Fatalf("the PublishError should match its entries and count them: %v", err)
	}
	// Only the good events were published.
	recs := readAll(t, e.cl.OptValue(kgo.SeedBrokers).([]string), "orders", 2)
	keys := map[string]bool{}
	for _, r := range recs {
		keys[string(r.Key)] = true
	}
	if !keys["ok-1"] || !keys["ok-2"] {
		t.Fatalf("published keys %v, want ok-1 and ok-2", keys)
	}
	hw, err := e.adm.ListEndOffsets(t.Context(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	hw.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 2 {
		t.Fatalf("%d records on the topic, want 2", total)
	}
}

// A topic whose max.message.bytes is below the producer's limit refuses a
// record before it is sent.
func TestPublishHonoursTheTopicSizeLimit(t *testing.T) {
	e := setup(t)
	if err := bus.CreateTopics(t.Context(), e.adm, bus.TopicSpec{Name: "small", Configs: map[string]string{"max.message.bytes": "1500"}}); err != nil {
		t.Fatal(err)
	}
	small := bus.Event[OrderPlaced]("small", func(e *OrderPlaced) string { return e.OrderID }, bus.Namespace("com.example.orders"))
	p, err := bus.NewPublisher(t.Context(), e.cl, e.reg, bus.Source("/svc"), bus.Types(small))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Publish(t.Context(), OrderPlaced{OrderID: "o", Note: strings.Repeat("x", 1600)})
	if !errors.Is(err, bus.ErrTooLarge) || !strings.Contains(err.Error(), "1500") {
		t.Fatalf("want ErrTooLarge naming the topic's 1500-byte limit, got %v", err)
	}
	if err := p.Publish(t.Context(), OrderPlaced{OrderID: "o", Note: strings.Repeat("x", 1000)}); err != nil {
		t.Fatal(err)
	}
}

func TestPublishAsync(t *testing.T) {
	e := setup(t)
	p := e.publisher(t)
	const n = 500
	var (
		mu      sync.Mutex
		results []bus.PublishResult
		wg      sync.WaitGroup
	)
	wg.Add(n + 1)
	for i := range n {
		p.PublishAsync(t.Context(), &OrderPlaced{OrderID: "o-" + string(rune('a'+i%26)), Amount: int64(i)}, func(r bus.PublishResult) {
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			wg.Done()
		})
	}
	p.PublishAsync(t.Context(), OrderPlaced{}, func(r bus.PublishResult) {
		if !errors.Is(r.Err, bus.ErrEmptyKey) {
			t.Errorf("want ErrEmptyKey at once, got %v", r.Err)
		}
		wg.Done()
	})
	wg.Wait()
	ids := map[string]bool{}
	for _, r := range results {
		if r.Err != nil || r.Topic != "orders" || r.Offset < 0 || r.ID == "" {
			t.Fatalf("result %+v", r)
		}
		ids[r.ID] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct ids for %d events", len(ids), n)
	}
	if err := p.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

type BadTopic struct {
	ID string `avro:"id"`
}

func TestNewPublisherChecksAtStartUp(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	src := bus.Source("/svc")
	cases := []struct {
		name string
		cl   *kgo.Client
		opts []bus.PublisherOption
		want string
	}{
		{"no source", e.cl, []bus.PublisherOption{bus.Types(orderPlaced)}, "Source"},
		{"no types", e.cl, []bus.PublisherOption{src}, "no event types"},
		{"bad topic", e.cl, []bus.PublisherOption{src, bus.Types(bus.Event[BadTopic]("no spaces", func(e *BadTopic) string { return e.ID }))}, "topic"},
		{"no key", e.cl, []bus.PublisherOption{src, bus.Types(bus.Event[BadTopic]("t", nil))}, "key function"},
		{"bad schema", e.cl, []bus.PublisherOption{src, bus.Types(bus.Event[BadTopic]("t", func(e *BadTopic) string { return e.ID }, bus.Schema(`{"type":"record"`)))}, "invalid schema"},
		{"misfit", e.cl, []bus.PublisherOption{src, bus.Types(bus.Event[BadTopic]("t", func(e *BadTopic) string { return e.ID },
			bus.Schema(`{"type":"record","name":"B","fields":[{"name":"id","type":"int"}]}`)))}, "does not fit"},
		{"twice", e.cl, []bus.PublisherOption{src, bus.Types(orderPlaced, orderPlaced)}, "twice"},
		{"missing topic", e.cl, []bus.PublisherOption{src, bus.Types(bus.Event[BadTopic]("not-created", func(e *BadTopic) string { return e.ID }))}, "not-created"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bus.NewPublisher(ctx, tc.cl, e.reg, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error mentioning %q, got %v", tc.want, err)
			}
		})
	}
	_, err := bus.NewPublisher(ctx, e.cl, e.reg, src, bus.Types(bus.Event[BadTopic]("not-created", func(e *BadTopic) string { return e.ID })))
	if !errors.Is(err, bus.ErrTopicMissing) {
		t.Fatalf("want ErrTopicMissing, got %v", err)
	}
	for name, opt := range map[string]kgo.Opt{"acks": kgo.RequiredAcks(kgo.LeaderAck()), "idempotence": kgo.DisableIdempotentWrite()} {
		loose, err := kgo.NewClient(kgo.SeedBrokers(e.cl.OptValue(kgo.SeedBrokers).([]string)...), opt, kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.NewPublisher(ctx, loose, e.reg, src, bus.Types(orderPlaced)); err == nil {
			t.Fatalf("%s: a client that is not idempotent with acks=all was accepted", name)
		}
		loose.Close()
	}
}

func TestCreateAndCheckTopics(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	spec := bus.TopicSpec{Name: "payments", Partitions: 4, Configs: map[string]string{"retention.ms": "3600000"}, DeadLetterGroups: []string{"billing", "audit"}}
	if err := bus.CreateTopics(ctx, e.adm, spec); err != nil {
		t.Fatal(err)
	}
	if err := bus.CreateTopics(ctx, e.adm, spec); err != nil {
		t.Fatalf("creating existing topics again: %v", err)
	}
	all := []string{"payments", "payments.billing.dlt", "payments.audit.dlt", "payments.billing.replay", "payments.audit.replay"}
	details, err := e.adm.ListTopics(ctx, all...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range all {
		d, ok := details[name]
		if !ok || d.Err != nil || len(d.Partitions) != 4 {
			t.Fatalf("topic %s: %+v", name, d)
		}
	}
	// The dead-letter and replay topics take a record as large as the
	// topic allows plus the dead-letter headers, whether the topic's limit
	// is its own or the broker's default.
	big := bus.TopicSpec{Name: "invoices", Configs: map[string]string{"max.message.bytes": "2000000"}, DeadLetterGroups: []string{"billing"}}
	if err := bus.CreateTopics(ctx, e.adm, big); err != nil {
		t.Fatal(err)
	}
	limits, err := bus.TopicMaxBytes(ctx, e.adm, "payments", "payments.billing.dlt", "payments.audit.replay", "invoices", "invoices.billing.dlt", "invoices.billing.replay")
	if err != nil {
		t.Fatal(err)
	}
	for topic, of := range map[string]string{"payments.billing.dlt": "payments", "payments.audit.replay": "payments", "invoices.billing.dlt": "invoices", "invoices.billing.replay": "invoices"} {
		if limits[of] == 0 || limits[topic] != limits[of]+bus.DeadLetterHeadroom {
			t.Errorf("%s accepts %d bytes, want %s's %d + %d", topic, limits[topic], of, limits[of], bus.DeadLetterHeadroom)
		}
	}
	if limits["invoices"] != 2000000 {
		t.Errorf("invoices accepts %d bytes, want the configured 2000000", limits["invoices"])
	}
	if err := bus.CheckTopics(ctx, e.adm, "payments", "orders"); err != nil {
		t.Fatal(err)
	}
	err = bus.CheckTopics(ctx, e.adm, "payments", "ghost", "phantom")
	if !errors.Is(err, bus.ErrTopicMissing) || !strings.Contains(err.Error(), "ghost, phantom") {
		t.Fatalf("want ErrTopicMissing naming ghost and phantom, got %v", err)
	}
	if err := bus.CreateTopics(ctx, e.adm, bus.TopicSpec{Name: "bad name"}); err == nil {
		t.Fatal("want an error for an invalid topic name")
	}
}

// RecordInto builds the record Record builds, into the caller's record,
// in the room its headers have.
func TestRecordIntoReusesTheRecord(t *testing.T) {
	e := setup(t)
	enc, err := bus.NewEncoder(t.Context(), e.reg, bus.Source("/orders-service"), bus.Types(orderPlaced))
	if err != nil {
		t.Fatal(err)
	}
	ctx := bus.WithMeta(t.Context(), &bus.Meta{ID: "evt-1", CorrelationID: "conv-9"})
	room := make([]kgo.RecordHeader, 0, bus.RecordHeaders)
	rec := kgo.Record{Headers: room, Partition: 7}
	for _, id := range []string{"o-1", "o-2"} {
		ev := OrderPlaced{OrderID: id, Amount: 5}
		if err := enc.RecordInto(ctx, ev, &rec); err != nil {
			t.Fatal(err)
		}
		want, err := enc.Record(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if &rec.Headers[0] != &room[:1][0] {
			t.Fatal("RecordInto did not write the headers into the record's room")
		}
		if rec.Topic != want.Topic || string(rec.Key) != id || rec.Partition != 0 || len(rec.Headers) != len(want.Headers) {
			t.Fatalf("RecordInto: topic %q key %q partition %d, %d headers; want %q %q 0, %d", rec.Topic, rec.Key, rec.Partition, len(rec.Headers), want.Topic, id, len(want.Headers))
		}
		// The same headers but ce_id and ce_time, which differ from call
		// to call.
		for i, h := range rec.Headers {
			if h.Key != want.Headers[i].Key || (h.Key != wire.HeaderID && h.Key != wire.HeaderTime && string(h.Value) != string(want.Headers[i].Value)) {
				t.Fatalf("header %d: %s=%q, want %s=%q", i, h.Key, h.Value, want.Headers[i].Key, want.Headers[i].Value)
			}
		}
		if string(rec.Value) != string(want.Value) {
			t.Fatalf("value %x, want %x", rec.Value, want.Value)
		}
	}
	// A record without room gets headers of its own.
	var bare kgo.Record
	if err := enc.RecordInto(t.Context(), OrderPlaced{OrderID: "o-3"}, &bare); err != nil || len(bare.Headers) != 8 {
		t.Fatalf("RecordInto into a zero record: %v, %d headers, want 8", err, len(bare.Headers))
	}
	if err := enc.RecordInto(t.Context(), Unregistered{ID: "x"}, &bare); !errors.Is(err, bus.ErrUnknownType) {
		t.Fatalf("RecordInto of an unregistered type: %v, want bus.ErrUnknownType", err)
	}
}

// The error about a type left out of bus.Types names the call that was
// given the types, NewEncoder or NewPublisher, and the type.
func TestUnknownTypeNamesTheConstructor(t *testing.T) {
	e := setup(t)
	enc, err := bus.NewEncoder(t.Context(), e.reg, bus.Source("/orders-service"), bus.Types(orderPlaced))
	if err != nil {
		t.Fatal(err)
	}
	_, err = enc.Record(t.Context(), Unregistered{ID: "x"})
	if want := "bus_test.Unregistered: add it to the bus.Types given to bus.NewEncoder"; !errors.Is(err, bus.ErrUnknownType) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Encoder.Record of an unregistered type: %v, want bus.ErrUnknownType saying %q", err, want)
	}
	err = e.publisher(t).Publish(t.Context(), Unregistered{ID: "x"})
	if want := "bus_test.Unregistered: add it to the bus.Types given to bus.NewPublisher"; !errors.Is(err, bus.ErrUnknownType) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Publish of an unregistered type: %v, want bus.ErrUnknownType saying %q", err, want)
	}
}
