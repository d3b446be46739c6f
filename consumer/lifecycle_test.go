package consumer_test

import (
	"context"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
)

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestCloseCommitsAndNextMemberResumes: Close waits for the handler under
// way, commits everything handled (there is no periodic commit here), and
// the next member of the group starts after it.
func TestCloseCommitsAndNextMemberResumes(t *testing.T) {
	e := start(t)
	e.topics(3, "orders")
	const group = "resume"
	e.publish(orders(10, 10)...)

	first := newSeen()
	blocked, release := make(chan struct{}), make(chan struct{})
	c := e.consumer(group, consumer.CommitInterval(time.Hour))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		if ev.OrderID == "order-009" && ev.Seq == 9 { // the last record of its partition
			close(blocked)
			<-release
		}
		first.add(ev.OrderID, ev.Seq)
		return nil
	})
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(context.Background()) }()
	waitFor(t, "the other 99 records handled", func() bool { return first.count() == 99 })
	select {
	case <-blocked:
	case <-time.After(guard):
		t.Fatal("the last record was never handled")
	}

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		closed <- c.Close(ctx)
	}()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler was still running", err)
	default:
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Errorf("Run after Close: %v, want nil", err)
	}
	if n := sum(e.committed(group, "orders")); n != 100 {
		t.Fatalf("%d offsets committed after Close, want 100", n)
	}
	if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}

	// The next member starts after what the first one handled.
	var more []any
	for k := 0; k < 10; k++ {
		more = append(more, &Order{OrderID: "order-000", Seq: int64(10 + k)})
	}
	e.publish(more...)
	next := newSeen()
	c2 := e.consumer(group)
	consumer.Handle(c2, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		next.add(ev.OrderID, ev.Seq)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run2 := make(chan error, 1)
	go func() { run2 <- c2.Run(ctx) }()
	waitFor(t, "the new records handled", func() bool { return next.count() >= 10 })
	for _, s := range next.byKey["order-000"] {
		if s < 10 {
			t.Errorf("record %d handled again after Close committed it", s)
		}
	}
	// Cancelling Run's context stops it, and still commits.
	cancel()
	if err := <-run2; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after its context was cancelled: %v, want context.Canceled", err)
	}
	if n := sum(e.committed(group, "orders")); n != 110 {
		t.Errorf("%d offsets committed after Run's context ended, want 110", n)
	}
}

// TestCloseBeforeRun: a consumer closed before Run never starts.
func TestCloseBeforeRun(t *testing.T) {
	e := start(t)
	c := e.consumer("never")
	consumer.Handle(c, orderPlaced, func(context.Context, *Order, bus.Meta) error { return nil })
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); !errors.Is(err, consumer.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestBacklogBesideIdlePartition: a partition whose handler is slower
// than fetching, beside an idle one, fills up to its back-pressure limit
// again and again, and goes on reading its backlog each time without
// waiting for the broker to answer a fetch of the idle partition. The
// service's FetchMaxWait is a minute, so a partition that waited for such
// a fetch would not finish before the guard.
func TestBacklogBesideIdlePartition(t *testing.T) {
	e := start(t)
	e.topics(2, "orders")
	c, handled := backlog(t, e, func(context.Context, *Order, bus.Meta) {})
	run(t, c)
	waitFor(t, "the backlog handled", func() bool { return handled() == backlogLen })
}

// TestBacklogBesideDrainedPartition: the same backlog, beside a partition
// that runs dry while the backlog's partition is full. Stopping the
// backlog's fetching there, to let the drained one poll, would leave the
// backlog waiting for a fetch of the drained partition alone, which the
// broker holds for the minute of FetchMaxWait.
func TestBacklogBesideDrainedPartition(t *testing.T) {
	e := start(t)
	e.topics(2, "orders")
	var (
		handled          func() int64
		others, beside   atomic.Int64
		backlogPartition atomic.Int32
	)
	backlogPartition.Store(-1)
	c, handled := backlog(t, e, func(ctx context.Context, ev *Order, m bus.Meta) {
		if ev.OrderID == orderKey(0) {
			backlogPartition.Store(m.Partition)
			return
		}
		// The other partition runs dry once the backlog is under way
		// (those of these records on the backlog's partition come after
		// it, and do not wait).
		for handled() < backlogLen/4 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if m.Partition != backlogPartition.Load() {
			beside.Add(1)
		}
		others.Add(1)
	})
	// After the backlog, one record of each of 40 other keys: some land
	// on the other partition.
	e.publish(orderRange(41, 0, 1)[1:]...)
	run(t, c)
	waitFor(t, "the backlog handled", func() bool { return handled() == backlogLen })
	waitFor(t, "the other keys handled", func() bool { return others.Load() == 40 })
	if beside.Load() == 0 {
		t.Fatal("no other key on the other partition; pick other keys")
	}
}

// backlogLen is how many orders backlog publishes.
const backlogLen = 3000

// backlog publishes backlogLen orders of key order-000 that make 12
// MiB which do not compress (a dozen fetches, three times the
// back-pressure limit), and returns a consumer (FetchMaxWait a minute)
// whose handler takes them slower than fetching, checks their order and
// calls also with every record, and how many of the backlog it handled.
func backlog(t *testing.T, e *env, also func(context.Context, *Order, bus.Meta)) (*consumer.Consumer, func() int64) {
	rnd := rand.New(rand.NewPCG(1, 2))
	events := make([]any, backlogLen)
	for i := range events {
		note := make([]byte, 3<<10)
		for j := range note {
			note[j] = byte(rnd.Uint32())
		}
		events[i] = &Order{OrderID: orderKey(0), Seq: int64(i), Note: base64.StdEncoding.EncodeToString(note)}
	}
	e.publish(events...)
	c := e.consumer("backlog", consumer.Kafka(kgo.FetchMaxWait(time.Minute)))
	var next atomic.Int64
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		also(ctx, ev, m)
		if ev.OrderID != orderKey(0) {
			return nil
		}
		if ev.Seq%4 == 0 {
			time.Sleep(100 * time.Microsecond) // slower than fetching
		}
		if want := next.Load(); ev.Seq != want {
			t.Errorf("got seq %d, want %d", ev.Seq, want)
		}
		next.Add(1)
		return nil
	})
	return c, next.Load
}

// TestFullPartitionLetsOthersGoOn: a partition whose handler is stuck
// fills up to its back-pressure limit; records of the other partition are
// still handled.
func TestFullPartitionLetsOthersGoOn(t *testing.T) {
	e := start(t)
	e.topics(2, "orders")
	const stuckKey, backlog = "order-000", 20_000
	e.publish(orderRange(1, 0, backlog)...) // all order-000
	stuck, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var stuckPart atomic.Int32
	var others atomic.Int64
	c := e.consumer("full")
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		switch {
		case ev.OrderID == stuckKey && ev.Seq == 0:
			stuckPart.Store(m.Partition)
			close(stuck)
			<-release
		case m.Partition != stuckPart.Load():
			others.Add(1)
		}
		return nil
	})
	run(t, c)
	<-stuck
	// Records of other keys; those of the stuck partition wait behind it.
	extra := orderRange(41, 0, 1)[1:] // order-001 to order-040
	e.publish(extra...)
	var want int64
	for _, r := range e.read("orders", backlog+len(extra)) {
		if r.Partition != stuckPart.Load() {
			want++
		}
	}
	if want == 0 {
		t.Fatal("no record on the other partition; pick other keys")
	}
	waitFor(t, "the other partition's records handled", func() bool { return others.Load() == want })
}

// TestFetchMaxWait: the consumer's fetches ask the broker to wait at most
// FetchMaxWait, not franz-go's 5 s (a partition resumed after
// back-pressure waits for the fetch in flight), unless the service passes
// its own kgo.FetchMaxWait.
func TestFetchMaxWait(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
		want int32
	}{
		{"default", nil, 500}, // documented on consumer.Kafka
		{"service's", []kgo.Opt{kgo.FetchMaxWait(2 * time.Second)}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t)
			e.topics(1, "orders")
			var waits sync.Map // the fetch requests' MaxWaitMillis
			kf := e.stack.Kafka()
			kf.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
				kf.KeepControl()
				waits.Store(req.(*kmsg.FetchRequest).MaxWaitMillis, true)
				return nil, nil, false
			})
			e.publish(orders(1, 1)...)
			c, err := consumer.New("fetch-wait", e.reg, consumer.Kafka(append([]kgo.Opt{kgo.SeedBrokers(e.stack.Brokers()...)}, tc.opts...)...), consumer.Logger(testLogger()))
			if err != nil {
				t.Fatal(err)
			}
			var handled atomic.Int32
			consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
				handled.Add(1)
				return nil
			})
			run(t, c)
			waitFor(t, "the record handled", func() bool { return handled.Load() == 1 })
			var got []int32
			waits.Range(func(k, _ any) bool { got = append(got, k.(int32)); return true })
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("fetches waited %v ms, want %d", got, tc.want)
			}
		})
	}
}
