package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// calls counts handler runs by note.
type calls struct {
	mu sync.Mutex
	n  map[string]int
	ok map[string]bool
}

func newCalls() *calls { return &calls{n: map[string]int{}, ok: map[string]bool{}} }

func (c *calls) run(note string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[note]++
}

func (c *calls) done(note string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok[note] = true
}

func (c *calls) get(note string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[note], c.ok[note]
}

// failingHandler fails by the event's note: "flaky" until its third run,
// "panicky" panics on its first run, "doomed" always, "permanent" with a
// permanent error; anything else succeeds.
func failingHandler(c *calls) consumer.HandlerFunc[Order] {
	return func(ctx context.Context, ev *Order, m bus.Meta) error {
		c.run(ev.Note)
		switch ev.Note {
		case "flaky":
			if consumer.Attempt(ctx) < 3 {
				return errors.New("not yet")
			}
		case "panicky":
			if consumer.Attempt(ctx) == 1 {
				panic("oops")
			}
		case "doomed":
			return errors.New("doomed to fail")
		case "permanent":
			return consumer.Permanent(errors.New("bad order"))
		}
		c.done(ev.Note)
		return nil
	}
}

func byOffset(recs []*kgo.Record, partition int32, offset int64) *kgo.Record {
	for _, r := range recs {
		if r.Partition == partition && r.Offset == offset {
			return r
		}
	}
	return nil
}

// checkDeadLetter checks a dead-letter record against the original: same
// key, the value bytes untouched, every original header kept, and the
// headers of the contract.
func checkDeadLetter(t *testing.T, dlt, orig *kgo.Record, group string, kind wire.FailureKind, attempts int, errText string) {
	t.Helper()
	if !bytes.Equal(dlt.Key, orig.Key) {
		t.Errorf("dead letter key %q, original %q", dlt.Key, orig.Key)
	}
	if !bytes.Equal(dlt.Value, orig.Value) {
		t.Errorf("dead letter value %x, original %x", dlt.Value, orig.Value)
	}
	h := headers(t, dlt)
	for _, oh := range orig.Headers {
		if got, ok := h[oh.Key]; !ok || got != string(oh.Value) {
			t.Errorf("original header %s=%q: dead letter has %q", oh.Key, oh.Value, got)
		}
	}
	want := map[string]string{
		wire.HeaderDLTOriginalTopic:     orig.Topic,
		wire.HeaderDLTOriginalPartition: strconv.Itoa(int(orig.Partition)),
		wire.HeaderDLTOriginalOffset:    strconv.FormatInt(orig.Offset, 10),
		wire.HeaderDLTConsumerGroup:     group,
		wire.HeaderDLTErrorKind:         string(kind),
		wire.HeaderDLTAttempts:          strconv.Itoa(attempts),
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	ts, err := time.Parse(time.RFC3339, h[wire.HeaderDLTOriginalTimestamp])
	if err != nil || !ts.Equal(orig.Timestamp) || !strings.HasSuffix(h[wire.HeaderDLTOriginalTimestamp], "Z") {
		t.Errorf("header %s = %q, want %v in UTC (%v)", wire.HeaderDLTOriginalTimestamp, h[wire.HeaderDLTOriginalTimestamp], orig.Timestamp.UTC(), err)
	}
	failed, err := time.Parse(time.RFC3339, h[wire.HeaderDLTFailedAt])
	if err != nil || failed.Before(orig.Timestamp) || !strings.HasSuffix(h[wire.HeaderDLTFailedAt], "Z") {
		t.Errorf("header %s = %q: want an RFC 3339 UTC time after the record's (%v)", wire.HeaderDLTFailedAt, h[wire.HeaderDLTFailedAt], err)
	}
	if e := h[wire.HeaderDLTError]; !strings.Contains(e, errText) || len(e) > wire.MaxErrorLen {
		t.Errorf("header %s = %q, want it to contain %q", wire.HeaderDLTError, e, errText)
	}
}

func TestRetriesAndDeadLetters(t *testing.T) {
	e := start(t)
	const group = "billing"
	e.topics(3, "orders", wire.DeadLetterTopic("orders", group))
	c := e.consumer(group)
	got := newCalls()
	consumer.Handle(c, orderPlaced, failingHandler(got))
	run(t, c)

	// One key: one partition, in this order.
	notes := []string{"flaky", "panicky", "doomed", "permanent", "after"}
	for i, n := range notes {
		e.publish(&Order{OrderID: "o-1", Seq: int64(i), Note: n})
	}
	waitFor(t, "the last record handled", func() bool { _, ok := got.get("after"); return ok })
	waitFor(t, "two dead letters", func() bool { return e.count(wire.DeadLetterTopic("orders", group)) >= 2 })

	for note, want := range map[string]int{"flaky": 3, "panicky": 2, "doomed": 3, "permanent": 1, "after": 1} {
		if n, _ := got.get(note); n != want {
			t.Errorf("%s: handler ran %d times, want %d", note, n, want)
		}
	}
	origs := e.read("orders", len(notes))
	dlts := e.read(wire.DeadLetterTopic("orders", group), 2)
	if len(dlts) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dlts))
	}
	for _, d := range dlts {
		h := headers(t, d)
		off, _ := strconv.ParseInt(h[wire.HeaderDLTOriginalOffset], 10, 64)
		p, _ := strconv.Atoi(h[wire.HeaderDLTOriginalPartition])
		orig := byOffset(origs, int32(p), off)
		if orig == nil {
			t.Fatalf("dead letter names %s/%s, not a record", h[wire.HeaderDLTOriginalPartition], h[wire.HeaderDLTOriginalOffset])
		}
		var ev Order
		c, err := codec.New(e.reg)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Decode(context.Background(), orig.Value, nil, orderPlaced.Descriptor().Schema(), &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Note {
		case "doomed":
			checkDeadLetter(t, d, orig, group, wire.KindRetriesExhausted, 3, "doomed to fail")
		case "permanent":
			checkDeadLetter(t, d, orig, group, wire.KindPermanent, 1, "bad order")
		default:
			t.Errorf("dead letter of %q", ev.Note)
		}
	}
	waitFor(t, "every offset committed", func() bool {
		var sum int64
		for _, o := range e.committed(group, "orders") {
			sum += o
		}
		return sum == int64(len(notes))
	})
	st := c.Stats()
	if st.Handled != 3 || st.Retried != 2+1+2 || st.DeadLettered[wire.KindRetriesExhausted] != 1 || st.DeadLettered[wire.KindPermanent] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPoisonAndForeignRecords(t *testing.T) {
	e := start(t)
	const group = "poison"
	dltTopic := wire.DeadLetterTopic("orders", group)
	e.topics(3, "orders", dltTopic)
	ctx := context.Background()

	w, err := e.reg.Writer(ctx, "orders", orderPlaced.Descriptor().Schema())
	if err != nil {
		t.Fatal(err)
	}
	cd, err := codec.New(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := cd.Encoder(w.ID, w.Schema, orderPlaced.Descriptor().Schema())
	if err != nil {
		t.Fatal(err)
	}
	good, err := enc.AppendEncode(nil, &Order{OrderID: "k", Seq: 1, Note: "foreign"})
	if err != nil {
		t.Fatal(err)
	}
	ce := func(omit string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for _, h := range [][2]string{
			{wire.HeaderSpecVersion, "1.0"}, {wire.HeaderID, "id-1"}, {wire.HeaderSource, "/elsewhere"},
			{wire.HeaderType, "com.example.test.Order"}, {wire.HeaderTime, "2025-01-02T03:04:05Z"},
		} {
			if h[0] != omit {
				hs = append(hs, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
			}
		}
		return hs
	}
	bad := []*kgo.Record{
		{Value: []byte("garbage, not Avro at all")},                                // no framing
		{Value: append([]byte{0, 0, 0, 0x27, 0x0f}, good[5:]...), Headers: ce("")}, // unknown schema id 9999
		{Value: good[:len(good)-3], Headers: ce("")},                               // truncated body
		{Value: good, Headers: ce(wire.HeaderID)},                                  // CloudEvent without ce_id
		{Value: good, Headers: ce(wire.HeaderSource)},                              // CloudEvent without ce_source
		{Value: good, Headers: ce(wire.HeaderType)},                                // CloudEvent without ce_type
		{Value: good, Headers: append(ce(wire.HeaderTime), kgo.RecordHeader{Key: wire.HeaderTime, Value: []byte("yesterday")})}, // bad ce_time
	}
	foreign := &kgo.Record{Value: good} // plain Confluent Avro, no CloudEvents headers
	for _, r := range append(bad, foreign) {
		r.Topic, r.Key = "orders", []byte("k")
		if err := e.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(&Order{OrderID: "k", Seq: 2, Note: "after"}, &Shipped{OrderID: "k"})

	c := e.consumer(group)
	got := newCalls()
	var foreignMeta bus.Meta
	var mu sync.Mutex
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		if ev.Note == "foreign" {
			mu.Lock()
			foreignMeta = m
			mu.Unlock()
		}
		return failingHandler(got)(ctx, ev, m)
	})
	run(t, c)
	waitFor(t, "the record after the poison handled", func() bool { _, ok := got.get("after"); return ok })
	waitFor(t, "the unhandled type skipped", func() bool { return c.Stats().Skipped == 1 })

	if _, ok := got.get("foreign"); !ok {
		t.Error("the foreign record (no CloudEvents headers) was not handled")
	}
	mu.Lock()
	if foreignMeta.Type != "com.example.test.Order" || foreignMeta.ID != "kafka:orders/"+strconv.Itoa(int(foreign.Partition))+"/"+strconv.FormatInt(foreign.Offset, 10) {
		t.Errorf("foreign record meta: type %q id %q", foreignMeta.Type, foreignMeta.ID)
	}
	mu.Unlock()
	dlts := e.read(dltTopic, len(bad))
	for i, d := range dlts {
		checkDeadLetter(t, d, bad[i], group, wire.KindPoison, 0, "")
	}
	if st := c.Stats(); st.DeadLettered[wire.KindPoison] != uint64(len(bad)) || st.Handled != 2 {
		t.Errorf("stats %+v", st)
	}

	// Another group dead-letters what it has no handler for.
	c2 := e.consumer("strict", consumer.Unhandled(consumer.DeadLetter))
	consumer.Handle(c2, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil })
	e.topics(3, wire.DeadLetterTopic("orders", "strict"))
	run(t, c2)
	waitFor(t, "the unhandled type dead-lettered", func() bool {
		return c2.Stats().DeadLettered[wire.KindPermanent] == 1
	})
	d := e.read(wire.DeadLetterTopic("orders", "strict"), len(bad)+1)
	var unhandled int
	for _, r := range d {
		h := headers(t, r)
		if h[wire.HeaderType] == "com.example.test.Shipped" {
			unhandled++
			if h[wire.HeaderDLTErrorKind] != "permanent" || h[wire.HeaderDLTAttempts] != "0" || !strings.Contains(h[wire.HeaderDLTError], "no handler") {
				t.Errorf("unhandled dead letter headers %v", h)
			}
		}
	}
	if unhandled != 1 {
		t.Errorf("%d dead letters of the unhandled type, want 1", unhandled)
	}
}
