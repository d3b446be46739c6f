package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/schema"
)

// Clients are the clients of a started stack most tests need.
type Clients struct {
	Client   *kgo.Client // producer and admin
	Admin    *kadm.Client
	Registry *schema.Registry
}

// Connect returns clients of stack (evbustest.Start's), closed when tb
// ends; opts go to the Kafka client after its seed brokers.
func Connect(tb testing.TB, stack *devstack.Stack, opts ...kgo.Opt) Clients {
	tb.Helper()
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(stack.Brokers()...)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return Clients{Client: cl, Admin: kadm.NewClient(cl), Registry: reg}
}

// ReadN returns the first n records of topic (at least n: a fetch may
// bring more), read from the start without a group.
func ReadN(tb testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	tb.Helper()
	return Read(tb, brokers, topic, func(got []*kgo.Record) bool { return len(got) >= n })
}

// Read reads topic from the start, without a group, until enough says the
// records read so far are enough, and returns them; it fails tb when none
// come for Guard.
func Read(tb testing.TB, brokers []string, topic string, enough func([]*kgo.Record) bool) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Guard)
	defer cancel()
	var got []*kgo.Record
	var last error // the last fetch error, for the message should the read fail
	for !enough(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("read %d records of %s, then nothing more within %v (last fetch error: %v)", len(got), topic, Guard, last)
		}
		fs.EachError(func(_ string, _ int32, err error) { last = err })
		got = append(got, fs.Records()...)
	}
	return got
}

// Header returns the value of the first header key in hs, and whether
// there is one.
func Header(hs []kgo.RecordHeader, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// Headers returns hs as a map; a repeated key fails tb.
func Headers(tb testing.TB, hs []kgo.RecordHeader) map[string]string {
	tb.Helper()
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		if _, dup := m[h.Key]; dup {
			tb.Errorf("header %s appears twice", h.Key)
		}
		m[h.Key] = string(h.Value)
	}
	return m
}
