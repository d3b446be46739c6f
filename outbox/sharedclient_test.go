package outbox_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/outbox"
)

// TestRelaySharingItsClient: the relay shares its Kafka client with the
// service, which has a record to another topic that stays buffered (Kafka
// holds back the client's metadata of that topic). The relay publishes
// its own rows all the same; once they are marked, no goroutine of the
// relay waits on the service's record, and once Run returned none is
// left at all.
func TestRelaySharingItsClient(t *testing.T) {
	const slow = "payments"
	k := startKafka(t)
	if err := bus.CreateTopics(t.Context(), kadm.NewClient(k.cl), bus.TopicSpec{Name: slow, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	db := sqliteDB(t)
	ob := newOutbox(t, db, k.enc)
	r, err := ob.Relay(k.cl, outbox.PollInterval(10e6))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx) }()

	// The client knows the orders topic (and the relay its limits)
	// before Kafka holds anything back.
	enqueue(t, db, ob, OrderEvent{OrderID: key(0), Seq: 0})
	consume(t, k.stack.Brokers(), atLeast(1))

	release := make(chan struct{})
	var released bool
	unhold := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer unhold()
	kf := k.stack.Kafka()
	kf.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		for _, rt := range req.(*kmsg.MetadataRequest).Topics {
			if rt.Topic != nil && *rt.Topic == slow {
				kf.SleepControl(func() { <-release })
			}
		}
		return nil, nil, false
	})
	serviceDone := make(chan error, 1)
	k.cl.Produce(context.Background(), &kgo.Record{Topic: slow, Value: []byte("held")}, func(_ *kgo.Record, err error) { serviceDone <- err })

	for i := 1; i <= 50; i++ {
		enqueue(t, db, ob, OrderEvent{OrderID: key(i % 5), Seq: int64(i)})
	}
	consume(t, k.stack.Brokers(), atLeast(51))
	waitFor(t, "every row marked", func() bool { return backlog(t, ob) == 0 })
	if waiting := relayGoroutines("kgo.(*Client).Flush"); len(waiting) > 0 {
		t.Errorf("%d goroutines of the relay wait for the service's record:\n%s", len(waiting), strings.Join(waiting, "\n\n"))
	}
	select {
	case err := <-serviceDone:
		t.Fatalf("the service's record was settled (%v) while Kafka held it back", err)
	default:
	}

	cancel()
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want context.Canceled", err)
	}
	if left := relayGoroutines(""); len(left) > 0 {
		t.Errorf("%d goroutines of the relay outlive Run, waiting on the service's record:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	unhold()
	if err := <-serviceDone; err != nil {
		t.Errorf("the service's record: %v", err)
	}
}

// relayGoroutines returns the stacks of the goroutines that the outbox
// package started, that still run, and whose stack holds frame.
func relayGoroutines(frame string) []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "created by github.com/evbus/evbus/outbox.") && strings.Contains(g, frame) {
			left = append(left, g)
		}
	}
	return left
}
