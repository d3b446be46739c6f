package consumer_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
)

// The crash test runs a consumer in a child process (this test binary,
// started again) and kills it with SIGKILL: no commit, no leave, no
// goodbye of any kind.
const (
	childEnv   = "EVBUS_CONSUMER_CHILD"
	brokersEnv = "EVBUS_CHILD_BROKERS"
	regEnv     = "EVBUS_CHILD_REGISTRY"
)

// TestMain runs a child consumer when the environment says so, else the
// tests with a throwaway PostgreSQL server (the benchmarks' embedded stack
// ends with the process).
func TestMain(m *testing.M) {
	if group := os.Getenv(childEnv); group != "" {
		os.Exit(child(group))
	}
	if group := os.Getenv(idemChildEnv); group != "" {
		os.Exit(idemChild(group))
	}
	evbustest.RunWithPostgreSQL(m)
}

// groupTiming lets a dead member leave the group quickly; the test lowers
// the broker's minimum session timeout to allow it.
func groupTiming() []kgo.Opt {
	return []kgo.Opt{
		kgo.SessionTimeout(1500 * time.Millisecond),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}
}

// childConsumer is the consumer of a child process, on the stack the
// parent named, with groupTiming and opts.
func childConsumer(group string, opts ...consumer.Option) (*consumer.Consumer, error) {
	reg, err := schema.New(os.Getenv(regEnv))
	if err != nil {
		return nil, err
	}
	return consumer.New(group, reg, append([]consumer.Option{
		consumer.Kafka(append(groupTiming(), kgo.SeedBrokers(strings.Split(os.Getenv(brokersEnv), ",")...))...),
		consumer.Logger(testLogger()),
	}, opts...)...)
}

// childProcess is this test binary started again as a child consumer.
type childProcess struct {
	cmd   *exec.Cmd
	lines chan struct{} // closed once the child's output is read to its end; nil when it is not read
	once  sync.Once
	err   error
}

// startChild starts a child consumer on the test's stack, with vars added
// to its environment (the one that selects the child's role among them).
// onLine, when not nil, gets each line the child prints. The child is
// killed when the test ends, if the test did not kill it.
func (e *env) startChild(onLine func(string), vars ...string) *childProcess {
	e.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), brokersEnv+"="+strings.Join(e.stack.Brokers(), ","), regEnv+"="+e.stack.RegistryURL()), vars...)
	cmd.Stderr = os.Stderr
	ch := &childProcess{cmd: cmd}
	var out io.Reader
	if onLine != nil {
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			e.t.Fatal(err)
		}
		out, ch.lines = pipe, make(chan struct{})
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	if out != nil {
		go func() {
			defer close(ch.lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				onLine(sc.Text())
			}
		}()
	}
	e.t.Cleanup(func() { ch.kill() })
	return ch
}

// kill kills the child with SIGKILL and waits until it has exited and
// all it printed is read.
func (ch *childProcess) kill() error {
	ch.once.Do(func() {
		ch.err = ch.cmd.Process.Kill()
		if ch.lines != nil {
			<-ch.lines // before Wait, which closes the pipe
		}
		ch.cmd.Wait()
	})
	return ch.err
}

// child consumes as group and prints "partition offset key seq" for each
// record it handled, until it is killed.
func child(group string) int {
	c, err := childConsumer(group, consumer.CommitInterval(20*time.Millisecond), consumer.PerKey(4))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		time.Sleep(300 * time.Microsecond)
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(os.Stdout, "%d %d %s %d\n", m.Partition, m.Offset, ev.OrderID, ev.Seq)
		return err
	})
	if err := c.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// TestCrashLosesNothing kills a consumer mid-stream and starts another:
// every offset the dead one committed had been handled by it, and every
// record is handled at least once.
func TestCrashLosesNothing(t *testing.T) {
	e := start(t)
	evbustest.ShortSessions(t, e.stack)
	e.topics(3, "orders")
	const group, keys, perKey = "crash", 40, 75 // 3000 records
	e.publish(orders(keys, perKey)...)

	s := newSeen()
	type at struct {
		partition int32
		offset    int64
	}
	var (
		mu       sync.Mutex
		childDid = map[at]bool{}
	)
	ch := e.startChild(func(line string) {
		var (
			p   int32
			off int64
			key string
			seq int64
		)
		if _, err := fmt.Sscan(line, &p, &off, &key, &seq); err != nil {
			t.Errorf("child printed %q: %v", line, err)
			return
		}
		mu.Lock()
		childDid[at{p, off}] = true
		mu.Unlock()
		s.add(key, seq)
	}, childEnv+"="+group)
	waitFor(t, "the child to handle and commit a part", func() bool {
		return s.count() >= 600 && sum(e.committed(group, "orders")) >= 300
	})
	if err := ch.kill(); err != nil {
		t.Fatal(err)
	}
	byChild := s.count()
	if byChild >= keys*perKey {
		t.Fatalf("the child handled all %d records before it was killed; the test proves nothing", byChild)
	}

	// What the dead member committed, it had handled.
	committed := e.committed(group, "orders")
	mu.Lock()
	for p, upTo := range committed {
		for off := int64(0); off < upTo; off++ {
			if !childDid[at{p, off}] {
				t.Errorf("partition %d: offset %d committed (up to %d) but never handled", p, off, upTo)
			}
		}
	}
	mu.Unlock()

	c := e.consumer(group, consumer.Kafka(groupTiming()...))
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		s.add(ev.OrderID, ev.Seq)
		return nil
	})
	run(t, c)
	waitFor(t, "every record handled after the restart", func() bool { return s.all(keys, perKey) })
	t.Logf("child handled %d records, committed %d; the restarted member handled %d", byChild, sum(committed), c.Stats().Handled)
}

// TestRebalance grows a group from 2 to 3 members and back while records
// flow: every record is handled at least once, and each member handles
// some.
func TestRebalance(t *testing.T) {
	e := start(t)
	evbustest.ShortSessions(t, e.stack)
	e.topics(6, "orders")
	const group = "rebalance"
	s := newSeen()
	var (
		mu  sync.Mutex
		who = map[string]int{}
	)
	member := func(name string) *consumer.Consumer {
		c := e.consumer(group, consumer.Kafka(groupTiming()...), consumer.PerKey(2))
		consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
			time.Sleep(100 * time.Microsecond)
			s.add(ev.OrderID, ev.Seq)
			mu.Lock()
			who[name]++
			mu.Unlock()
			return nil
		})
		return c
	}
	handledBy := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return who[name]
	}
	const keys = 60
	batch := func(from, to int) []any { return orderRange(keys, from, to) }
	all := func(upTo int) func() bool { return func() bool { return s.all(keys, upTo) } }

	a, b := member("a"), member("b")
	run(t, a)
	run(t, b)
	e.publish(batch(0, 30)...) // 1800
	waitFor(t, "the first records handled by a and b", all(30))

	// A third member joins while records flow.
	third := member("c")
	thirdErr := make(chan error, 1)
	go func() { thirdErr <- third.Run(context.Background()) }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 30; i < 60; i += 5 {
			e.publish(batch(i, i+5)...)
		}
	}()
	<-done
	waitFor(t, "the second records handled", all(60))
	e.publish(batch(60, 61)...)
	last := time.Now()
	waitFor(t, "the third member to get partitions and handle records", func() bool {
		if handledBy("c") > 0 {
			return true
		}
		if time.Since(last) > 50*time.Millisecond {
			e.publish(batch(60, 61)...) // more records until c's partitions see some
			last = time.Now()
		}
		return false
	})

	// And leaves again while records flow.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := third.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	e.publish(batch(61, 100)...)
	if err := <-thirdErr; err != nil {
		t.Errorf("Run of the third member: %v", err)
	}
	func() {
		defer func() {
			if t.Failed() {
				miss := s.missing(keys, 100, keys*100)
				t.Logf("missing %d: %v", len(miss), miss[:min(len(miss), 40)])
				t.Logf("committed %v; handled by %v; stats a %+v b %+v c %+v", e.committed(group, "orders"), who, a.Stats(), b.Stats(), third.Stats())
			}
		}()
		waitFor(t, "every record handled", all(100))
	}()
	if handledBy("a") == 0 || handledBy("b") == 0 {
		t.Errorf("handled by member: %v", who)
	}
	// With PerKey lanes, a revoked partition may have handled records past
	// one that never started: those are handled again by the next owner.
	t.Logf("handled %d records, %d in the topic (by member %v)", s.count(), e.count("orders"), who)
}
