package evbustest_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/evbustest"
)

// TestShortSessions: a group member asking for a 1 s session joins and
// consumes once ShortSessions was called (the broker refuses it before).
func TestShortSessions(t *testing.T) {
	s := evbustest.Start(t)
	evbustest.ShortSessions(t, s)
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers()...), kgo.AllowAutoTopicCreation(),
		kgo.ConsumerGroup("short"), kgo.ConsumeTopics("orders"), kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	fs := cl.PollFetches(ctx)
	if n := fs.NumRecords(); n != 1 {
		t.Fatalf("the member with a 1 s session read %d records (errors %v), want 1", n, fs.Errors())
	}
}
