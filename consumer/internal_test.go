package consumer

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.5, MaxAttempts: 3}
	for n := 1; n < 100; n++ {
		full := min(100*time.Millisecond, 10*time.Millisecond<<min(n-1, 20))
		d := b.delay(n)
		if d > full || d < full/2 {
			t.Fatalf("delay(%d) = %v, want within [%v, %v]", n, d, full/2, full)
		}
	}
	b.Jitter = -1
	if d := b.or(defaultBackoff).delay(2); d != 20*time.Millisecond {
		t.Errorf("no jitter: delay(2) = %v, want 20ms", d)
	}
	if got := (Backoff{}).or(defaultBackoff); got != defaultBackoff {
		t.Errorf("zero Backoff with defaults = %+v", got)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad")
	err := Permanent(base)
	if !IsPermanent(err) || !errors.Is(err, base) || err.Error() != "bad" {
		t.Errorf("Permanent(bad) = %v", err)
	}
	if wrapped := errors.Join(errors.New("ctx"), err); !IsPermanent(wrapped) {
		t.Error("IsPermanent does not look through wrapping")
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Error("IsPermanent of a plain error, or Permanent(nil) not nil")
	}
}

func TestPauseAccounting(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfg, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &Consumer{cl: cl, cfg: cfg, gate: newGate(), parts: make(map[tp]*partition)}
	p := newPartition(context.Background(), c, "t", 0)
	paused := func() bool { return len(cl.PauseFetchPartitions(nil)["t"]) == 1 }

	release1 := p.holdFetch()
	release2 := p.holdFetch()
	if !paused() {
		t.Fatal("not paused while a lane waits for a retry record")
	}
	release1()
	if !paused() {
		t.Fatal("resumed while another lane still waits")
	}
	p.mu.Lock()
	p.full, p.shed = true, true
	p.pauseLocked()
	p.mu.Unlock()
	release2()
	if !paused() {
		t.Fatal("resumed while the partition is full and shed")
	}
	p.mu.Lock()
	p.full, p.shed = false, false
	p.pauseLocked()
	p.mu.Unlock()
	if paused() {
		t.Fatal("still paused with nothing holding it")
	}

	// Back-pressure through dispatch and settle: a full partition holds
	// the poll, is paused once shed, and resumes once drained.
	big := &kgo.Record{Topic: "t", Value: make([]byte, pauseAt/4)}
	recs := []*kgo.Record{big, big, big, big, big}
	for i, r := range recs {
		rr := *r
		rr.Offset = int64(i)
		recs[i] = &rr
	}
	p.stop() // no lanes: dispatch of a stopped partition drops records
	p2 := newPartition(context.Background(), c, "t", 1)
	c.parts[tp{"t", 1}] = p2
	p2.lanes[0].started = true // keep dispatch from starting a lane
	p2.lanes[0].wake = make(chan struct{}, 1)
	p2.dispatch(recs)
	if got := c.gate.holding.Load(); got != 1 || paused() {
		t.Fatalf("after dispatching %d bytes: %d partitions hold the poll, paused %v; want 1, not paused", p2.buffered, got, paused())
	}
	c.shedFull()
	if got := cl.PauseFetchPartitions(nil)["t"]; len(got) != 1 || got[0] != 1 || c.gate.holding.Load() != 0 {
		t.Fatalf("shed: paused %v, %d hold the poll; want [1], 0", got, c.gate.holding.Load())
	}
	for seq := uint64(0); seq < 5; seq++ {
		p2.settle(seq)
	}
	if len(cl.PauseFetchPartitions(nil)["t"]) != 0 {
		t.Fatalf("still paused with %d bytes left", p2.buffered)
	}
	if eo, ok := p2.committable(); !ok || eo.Offset != 5 {
		t.Fatalf("commit point %v %v, want offset 5", eo, ok)
	}

	// A stopped partition lets go of the poll.
	p3 := newPartition(context.Background(), c, "t", 2)
	p3.lanes[0].started = true
	p3.lanes[0].wake = make(chan struct{}, 1)
	p3.dispatch(recs)
	p3.stop()
	if got := c.gate.holding.Load(); got != 0 {
		t.Fatalf("%d partitions hold the poll after the full one stopped", got)
	}
}

// TestGateWait: the poll waits while a partition holds it, and goes on,
// to shed the full partitions after it, after the longest wait.
func TestGateWait(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		maxWait time.Duration
		then    func(g *gate)
		shed    bool
	}{
		{"released", time.Hour, func(g *gate) { g.release() }, false},
		{"waited too long", time.Millisecond, func(*gate) {}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			g.hold()
			go tc.then(g)
			if shed := g.wait(ctx, tc.maxWait); shed != tc.shed {
				t.Errorf("shed %v, want %v", shed, tc.shed)
			}
			if held := g.holding.Load() > 0; held != tc.shed {
				t.Errorf("returned with the poll held %v, want %v", held, tc.shed)
			}
		})
	}
	g := newGate()
	g.hold()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if g.wait(cctx, time.Hour) {
		t.Error("shed after the context ended")
	}
}

func TestCommitPointWaitsForTheOldest(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cfg, err := newConfig([]Option{PerKey(4)})
	if err != nil {
		t.Fatal(err)
	}
	c := &Consumer{cl: cl, cfg: cfg, seed: maphash.MakeSeed(), gate: newGate()}
	p := newPartition(context.Background(), c, "t", 0)
	for i := range p.lanes {
		p.lanes[i].started = true
		p.lanes[i].wake = make(chan struct{}, 1)
	}
	var recs []*kgo.Record
	for off := int64(10); off < 15; off++ { // offsets with a gap before them
		recs = append(recs, &kgo.Record{Topic: "t", Offset: off, Key: []byte{byte(off)}, LeaderEpoch: 3})
	}
	p.dispatch(recs)
	for _, seq := range []uint64{1, 2, 3} {
		p.settle(seq)
	}
	if eo, ok := p.committable(); ok {
		t.Fatalf("commit point %v before the oldest record is settled", eo)
	}
	p.settle(0)
	if eo, ok := p.committable(); !ok || eo.Offset != 14 || eo.Epoch != 3 {
		t.Fatalf("commit point %v %v, want offset 14 epoch 3", eo, ok)
	}
	p.markCommitted(14)
	if _, ok := p.committable(); ok {
		t.Fatal("the same commit point offered twice")
	}
	p.settle(4)
	if eo, ok := p.committable(); !ok || eo.Offset != 15 {
		t.Fatalf("commit point %v %v, want offset 15", eo, ok)
	}
}

func TestSemaphore(t *testing.T) {
	s := newSemaphore(3)
	stop := make(chan struct{})
	var inside, most atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if !s.acquire(stop) {
					t.Error("acquire gave up without a stop")
					return
				}
				n := inside.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				inside.Add(-1)
				s.release()
			}
		}()
	}
	wg.Wait()
	if m := most.Load(); m > 3 || m < 1 {
		t.Errorf("%d held at once, limit 3", m)
	}
	// A full semaphore: acquire waits, and gives up on stop.
	for i := 0; i < 3; i++ {
		s.acquire(stop)
	}
	got := make(chan bool)
	go func() { got <- s.acquire(stop) }()
	s.release()
	if !<-got {
		t.Fatal("a waiter was not given the released slot")
	}
	go func() { got <- s.acquire(stop) }()
	close(stop)
	if <-got {
		t.Fatal("acquire on a full semaphore succeeded after stop")
	}
}
