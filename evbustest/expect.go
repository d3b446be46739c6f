package evbustest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// defaultWait is how long the Expect functions wait unless told otherwise.
const defaultWait = 10 * time.Second

// WaitOption configures an Expect function.
type WaitOption func(*waitConfig)

type waitConfig struct{ within time.Duration }

// Within sets how long to wait. Default: 10s.
func Within(d time.Duration) WaitOption { return func(c *waitConfig) { c.within = d } }

// waitFor applies opts, failing t on a nil option or a wait that is not
// positive.
func waitFor(t testing.TB, opts []WaitOption) time.Duration {
	t.Helper()
	c := waitConfig{within: defaultWait}
	for i, o := range opts {
		if o == nil {
			t.Fatalf("evbustest: option %d is nil", i+1)
		}
		o(&c)
	}
	if c.within <= 0 {
		t.Fatalf("evbustest: Within(%v): want a positive duration", c.within)
	}
	return c.within
}

// seen lists what a wait found instead of what it wanted, for its failure.
type seen []string

func (s seen) String() string {
	if len(s) == 0 {
		return "nothing"
	}
	const most = 20
	list := s
	more := ""
	if len(list) > most {
		list, more = list[len(list)-most:], fmt.Sprintf("\n  ... and %d earlier", len(s)-most)
	}
	return fmt.Sprintf("%d:\n  %s%s", len(s), strings.Join(list, "\n  "), more)
}

func describe(m bus.Meta) string {
	return fmt.Sprintf("%s key=%s id=%s at %s/%d@%d", m.Type, m.Key, m.ID, m.Topic, m.Partition, m.Offset)
}

// ExpectPublished waits until an event of type et that match accepts (nil
// accepts any) is on et's topic, reading the topic from the start, and
// returns it. On time-out it fails t with what it found instead.
func ExpectPublished[T any](t testing.TB, c Cluster, et *bus.Type[T], match func(*T, bus.Meta) bool, opts ...WaitOption) (*T, bus.Meta) {
	t.Helper()
	d := et.Descriptor()
	reg, err := schema.New(c.RegistryURL())
	if err != nil {
		t.Fatalf("evbustest: %v", err)
	}
	dec, err := codec.New(reg)
	if err != nil {
		t.Fatalf("evbustest: %v", err)
	}
	var found *T
	var meta bus.Meta
	var saw seen
	read(t, c, d.Topic(), waitFor(t, opts), func(r *kgo.Record) bool {
		m := metaOf(r)
		if m.Type != d.Name() {
			saw = append(saw, describe(m))
			return false
		}
		v := new(T)
		if err := dec.Decode(t.Context(), r.Value, header(r, codec.ValueSchemaIDHeader), d.Schema(), v); err != nil {
			saw = append(saw, describe(m)+" (undecodable: "+err.Error()+")")
			return false
		}
		if match != nil && !match(v, m) {
			saw = append(saw, fmt.Sprintf("%s %+v", describe(m), *v))
			return false
		}
		found, meta = v, m
		return true
	}, func(within time.Duration) {
		t.Fatalf("evbustest: no %s matching within %v on topic %s; saw %v", d.Name(), within, d.Topic(), saw)
	})
	return found, meta
}

// ExpectDeadLettered waits until the dead-letter topic of topic for group
// holds a record that match accepts (nil accepts any), and returns it. On
// time-out it fails t with what it found instead.
func ExpectDeadLettered(t testing.TB, c Cluster, topic, group string, match func(wire.DeadLetter) bool, opts ...WaitOption) wire.DeadLetter {
	t.Helper()
	dlt := wire.DeadLetterTopic(topic, group)
	var found wire.DeadLetter
	var saw seen
	read(t, c, dlt, waitFor(t, opts), func(r *kgo.Record) bool {
		d, err := wire.ParseDeadLetter(r)
		if err != nil {
			saw = append(saw, err.Error())
			return false
		}
		if match != nil && !match(d) {
			saw = append(saw, fmt.Sprintf("%s key=%s from %s/%d@%d: %s: %s", d.Type, r.Key, d.OriginalTopic, d.OriginalPartition, d.OriginalOffset, d.Kind, d.Error))
			return false
		}
		found = d
		return true
	}, func(within time.Duration) {
		t.Fatalf("evbustest: no matching dead letter within %v on %s; saw %v", within, dlt, saw)
	})
	return found
}

// read feeds the records of topic, from the start, to accept until it
// returns true; after within, it calls fail.
func read(t testing.TB, c Cluster, topic string, within time.Duration, accept func(*kgo.Record) bool, fail func(time.Duration)) {
	t.Helper()
	cl := client(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		fetches := cl.PollFetches(ctx)
		for _, r := range fetches.Records() {
			if accept(r) {
				return
			}
		}
		if ctx.Err() != nil {
			fail(within)
			return
		}
	}
}

func header(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// metaOf reads the CloudEvents attributes of a record, as far as it has them.
func metaOf(r *kgo.Record) bus.Meta {
	m := bus.Meta{
		ID: string(header(r, wire.HeaderID)), Type: string(header(r, wire.HeaderType)), Source: string(header(r, wire.HeaderSource)),
		Subject: string(header(r, wire.HeaderSubject)), CorrelationID: string(header(r, wire.HeaderCorrelationID)),
		CausationID: string(header(r, wire.HeaderCausationID)),
		Key:         r.Key, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Headers: r.Headers,
	}
	m.Time, _ = time.Parse(time.RFC3339Nano, string(header(r, wire.HeaderTime)))
	return m
}

// Recorder remembers what consumers settled: pass Recorder.Option() to
// consumer.New, then wait with ExpectHandled. It is safe for concurrent use
// and may serve several consumers and groups.
type Recorder struct {
	mu       sync.Mutex
	outcomes []consumer.Outcome
	changed  chan struct{} // closed and replaced on every outcome
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Option is the consumer option that reports to r.
func (r *Recorder) Option() consumer.Option { return consumer.Observe(r.add) }

func (r *Recorder) add(o consumer.Outcome) {
	r.mu.Lock()
	r.outcomes = append(r.outcomes, o)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Outcomes returns what was recorded so far, in order.
func (r *Recorder) Outcomes() []consumer.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]consumer.Outcome(nil), r.outcomes...)
}

// ExpectHandled waits until group handled an event of type et that match
// accepts (nil accepts any), and returns it. On time-out it fails t with
// every outcome recorded instead.
func ExpectHandled[T any](t testing.TB, r *Recorder, group string, et *bus.Type[T], match func(*T, bus.Meta) bool, opts ...WaitOption) (*T, bus.Meta) {
	t.Helper()
	name := et.Descriptor().Name()
	within := waitFor(t, opts)
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	next := 0
	for {
		r.mu.Lock()
		outcomes, changed := r.outcomes[next:], r.changed
		r.mu.Unlock()
		for _, o := range outcomes {
			next++
			if o.Group != group || o.Result != consumer.Handled || o.Meta.Type != name {
				continue
			}
			if v, ok := o.Value.(*T); ok && (match == nil || match(v, o.Meta)) {
				return v, o.Meta
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			var saw seen
			for _, o := range r.Outcomes() {
				line := fmt.Sprintf("%s %s: %s", o.Group, o.Result, describe(o.Meta))
				if o.Err != nil {
					line += ": " + o.Err.Error()
				}
				saw = append(saw, line)
			}
			t.Fatalf("evbustest: group %s handled no %s matching within %v; saw %v", group, name, within, saw)
			return nil, bus.Meta{}
		case <-t.Context().Done():
			t.Fatalf("evbustest: test ended while waiting for %s handled by %s", name, group)
			return nil, bus.Meta{}
		}
	}
}
