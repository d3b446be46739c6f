package consumer_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// TestDeadLetterWriteFails: while the dead-letter topic refuses writes, the
// record's offset is not committed and its partition waits; once the write
// succeeds the record is dead-lettered and the partition goes on.
func TestDeadLetterWriteFails(t *testing.T) {
	e := start(t)
	const group = "dltfail"
	dlt := wire.DeadLetterTopic("orders", group)
	e.topics(3, "orders", dlt)
	fault := e.stack.Kafka().Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: dlt,
		Err:   kerr.TopicAuthorizationFailed,
		Count: -1,
	})
	e.publish(
		&Order{OrderID: "o-1", Seq: 0, Note: "permanent"},
		&Order{OrderID: "o-1", Seq: 1, Note: "after"},
	)
	c := e.consumer(group)
	got := newCalls()
	consumer.Handle(c, orderPlaced, failingHandler(got))
	run(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := fault.Wait(ctx, 3); err != nil {
		t.Fatalf("the consumer did not try the dead-letter topic three times: %v", err)
	}
	// Several failures, spanning several commit intervals: a consumer that
	// commits past the record has had its chances.
	waitFor(t, "failed writes counted", func() bool { return c.Stats().PublishFailures >= 8 })
	if n := sum(e.committed(group, "orders")); n != 0 {
		t.Errorf("offset %d committed while the dead-letter write fails", n)
	}
	if _, ok := got.get("after"); ok {
		t.Error("the record after the failed one was handled while its dead letter was not written")
	}
	if n := e.count(dlt); n != 0 {
		t.Errorf("%d dead letters written through the fault", n)
	}

	fault.Remove()
	waitFor(t, "the record after handled", func() bool { _, ok := got.get("after"); return ok })
	waitFor(t, "both offsets committed", func() bool { return sum(e.committed(group, "orders")) == 2 })
	if n := e.count(dlt); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	origs := e.read("orders", 2)
	checkDeadLetter(t, e.read(dlt, 1)[0], origs[0], group, wire.KindPermanent, 1, "bad order")
	if n, _ := got.get("permanent"); n != 1 {
		t.Errorf("the handler ran %d times for the permanent failure, want 1", n)
	}
}

// TestDeadLetterTopicMissing: with auto-creation off, a record due in a
// dead-letter topic that does not exist waits (uncommitted) until it does.
func TestDeadLetterTopicMissing(t *testing.T) {
	e := start(t)
	const group = "nodlt"
	dlt := wire.DeadLetterTopic("orders", group)
	e.topics(3, "orders")
	e.publish(
		&Order{OrderID: "o-1", Seq: 0, Note: "permanent"},
		&Order{OrderID: "o-1", Seq: 1, Note: "after"},
	)
	// A short metadata age, so the client finds the topic soon once it
	// exists; franz-go fails a record for an unknown topic after
	// UnknownTopicRetries metadata loads.
	c, err := consumer.New(group, e.reg, e.fast(kgo.MetadataMinAge(20*time.Millisecond), kgo.MetadataMaxAge(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	got := newCalls()
	consumer.Handle(c, orderPlaced, failingHandler(got))
	run(t, c)
	waitFor(t, "failed writes", func() bool { return c.Stats().PublishFailures >= 3 })
	if n := sum(e.committed(group, "orders")); n != 0 {
		t.Errorf("offset %d committed while the dead-letter topic is missing", n)
	}
	if _, ok := got.get("after"); ok {
		t.Error("the record after the failed one was handled before its dead letter was written")
	}
	e.topics(3, dlt)
	waitFor(t, "both offsets committed", func() bool { return sum(e.committed(group, "orders")) == 2 })
	if n := e.count(dlt); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// OrderV2 is the next version of Order: a field with a default added.
type OrderV2 struct {
	OrderID  string `avro:"order_id"`
	Seq      int64  `avro:"seq"`
	Note     string `avro:"note"`
	Priority int32  `avro:"priority"`
}

const orderV2Avsc = `{"type":"record","name":"Order","namespace":"com.example.test","fields":[
  {"name":"order_id","type":"string"},
  {"name":"seq","type":"long"},
  {"name":"note","type":"string"},
  {"name":"priority","type":"int","default":0}
]}`

var orderPlacedV2 = bus.Event[OrderV2]("orders", func(o *OrderV2) string { return o.OrderID }, bus.Schema(orderV2Avsc))

// TestRegistryDown: a record whose schema id the consumer has not seen
// arrives while the registry is down: it is not dead-lettered and nothing
// after it is committed; it is handled once the registry is back.
func TestRegistryDown(t *testing.T) {
	e := start(t)
	const group = "outage"
	dlt := wire.DeadLetterTopic("orders", group)
	e.topics(3, "orders", dlt)

	var down atomic.Bool
	c, got := e.behindProxy(group, func(w http.ResponseWriter, r *http.Request) bool {
		if !down.Load() {
			return false
		}
		http.Error(w, `{"error_code":50301,"message":"down for the test"}`, http.StatusServiceUnavailable)
		return true
	})
	e.publish(&Order{OrderID: "o-1", Seq: 0, Note: "first"})
	waitFor(t, "the first record handled", func() bool { _, ok := got.get("first"); return ok })

	down.Store(true)
	pub2, err := bus.NewPublisher(context.Background(), e.cl, e.reg, bus.Source("/test"), bus.Types(orderPlacedV2))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub2.Publish(context.Background(), &OrderV2{OrderID: "o-1", Seq: 1, Note: "new schema", Priority: 3}); err != nil {
		t.Fatal(err)
	}
	e.publish(&Order{OrderID: "o-1", Seq: 2, Note: "after"})
	// Several tries, spanning several commit intervals.
	waitFor(t, "the consumer to meet the outage", func() bool { return c.Stats().DecodeWaits >= 8 })
	if _, ok := got.get("new schema"); ok {
		t.Fatal("handled a record whose schema the registry could not give")
	}
	if _, ok := got.get("after"); ok {
		t.Error("the record after it was handled first")
	}
	if n := sum(e.committed(group, "orders")); n > 1 {
		t.Errorf("offsets committed up to %d, past the record waiting for the registry", n)
	}
	if n := e.count(dlt); n != 0 {
		t.Errorf("%d records dead-lettered during a registry outage", n)
	}

	down.Store(false)
	waitFor(t, "the records handled once the registry is back", func() bool { _, ok := got.get("after"); return ok })
	if _, ok := got.get("new schema"); !ok {
		t.Error("the record of the new schema was not handled")
	}
	waitFor(t, "every offset committed", func() bool { return sum(e.committed(group, "orders")) == 3 })
	if n := e.count(dlt); n != 0 {
		t.Errorf("%d records dead-lettered", n)
	}
	if st := c.Stats(); st.Handled != 3 || len(st.DeadLettered) != 3 || st.DeadLettered[wire.KindPoison] != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestRegistryProxyNotFound: with a cold schema cache, a proxy in front of
// the registry that answers its own 404 (plain text or an HTML page) for
// the schema-by-id path is an unavailable registry, not a verdict on the
// record: the record waits, uncommitted and not dead-lettered, and is
// handled once the proxy forwards again. The registry's own "schema not
// found" (40403) still makes a record poison.
func TestRegistryProxyNotFound(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
	}{
		{"text", "text/plain; charset=utf-8", "404 page not found\n"},
		{"html", "text/html", "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			const group = "misrouted"
			dlt := wire.DeadLetterTopic("orders", group)
			e.topics(1, "orders", dlt)

			var misrouted atomic.Bool
			var answered atomic.Int64
			misrouted.Store(true)
			c, got := e.behindProxy(group, func(w http.ResponseWriter, r *http.Request) bool {
				if !misrouted.Load() || !strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
					return false
				}
				answered.Add(1)
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, tc.body)
				return true
			})
			e.publish(&Order{OrderID: "o-1", Seq: 0, Note: "valid"}, &Order{OrderID: "o-1", Seq: 1, Note: "after"})

			// Several tries, spanning several commit intervals, or the
			// record settled as poison.
			waitFor(t, "the consumer to meet the misrouted proxy", func() bool {
				st := c.Stats()
				return st.DecodeWaits >= 8 || st.DeadLettered[wire.KindPoison] > 0
			})
			if st := c.Stats(); st.DeadLettered[wire.KindPoison] > 0 {
				t.Fatalf("a valid record was dead-lettered as poison on a proxy's 404 (stats %+v)", st)
			}
			if answered.Load() == 0 {
				t.Fatal("the proxy answered no schema lookup with its 404")
			}
			if _, ok := got.get("valid"); ok {
				t.Fatal("handled a record whose schema the proxy hid")
			}
			if n := sum(e.committed(group, "orders")); n != 0 {
				t.Errorf("offsets committed up to %d while the proxy answers 404", n)
			}
			if n := e.count(dlt); n != 0 {
				t.Fatalf("%d valid records dead-lettered on a proxy's 404", n)
			}

			misrouted.Store(false)
			waitFor(t, "the records handled once the proxy forwards", func() bool { _, ok := got.get("after"); return ok })
			if _, ok := got.get("valid"); !ok {
				t.Error("the record that waited was not handled")
			}
			waitFor(t, "both offsets committed", func() bool { return sum(e.committed(group, "orders")) == 2 })

			// The registry's own answer: an id it does not have.
			good := e.read("orders", 1)[0]
			unknown := &kgo.Record{Topic: "orders", Key: good.Key, Value: append([]byte{0, 0x7f, 0, 0, 1}, good.Value[5:]...), Headers: good.Headers}
			if err := e.cl.ProduceSync(context.Background(), unknown).FirstErr(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the record of an unknown schema id dead-lettered", func() bool { return e.count(dlt) == 1 })
			h := headers(t, e.read(dlt, 1)[0])
			if h[wire.HeaderDLTErrorKind] != string(wire.KindPoison) || !strings.Contains(h[wire.HeaderDLTError], "unknown schema id") {
				t.Errorf("dead letter of an unknown schema id: kind %q, error %q", h[wire.HeaderDLTErrorKind], h[wire.HeaderDLTError])
			}
			if st := c.Stats(); st.Handled != 2 || st.DeadLettered[wire.KindPoison] != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// behindProxy runs a consumer of group, whose handler of orderPlaced
// records each note, that reaches the registry through an HTTP proxy: the
// proxy forwards each request unless intercept answers it (returns true).
func (e *env) behindProxy(group string, intercept func(http.ResponseWriter, *http.Request) bool) (*consumer.Consumer, *calls) {
	e.t.Helper()
	target, err := url.Parse(e.stack.RegistryURL())
	if err != nil {
		e.t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !intercept(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	e.t.Cleanup(srv.Close)
	reg, err := schema.New(srv.URL, schema.Timeout(5*time.Second))
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := consumer.New(group, reg, e.fast()...)
	if err != nil {
		e.t.Fatal(err)
	}
	got := newCalls()
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		got.run(ev.Note)
		got.done(ev.Note)
		return nil
	})
	run(e.t, c)
	return c, got
}
