package consumer

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/internal/telemetry"
)

// Back-pressure: a partition with this many bytes of records dispatched
// and not settled is full until it is down to resumeAt. A full partition
// holds the poll (see gate), or, once it held it too long, is paused
// (franz-go stops fetching it) until it is down to resumeAt. The threshold
// is a few fetches (franz-go fetches up to 1 MiB per partition by
// default): a healthy partition gets there only while its handlers are
// slower than fetching, a stalled one holds that much.
//
// A partition with batched handlers (Batch) is full at batchPauseAt until
// it is down to batchResumeAt: it settles records many at a time, so it
// must take more while several batches are still waiting, or its lane
// runs dry while the next fetch is on its way (measured: lanes idle most
// of the time at 4 MiB).
const (
	pauseAt       = 4 << 20
	resumeAt      = 1 << 20
	batchPauseAt  = 32 << 20
	batchResumeAt = 16 << 20
)

// limits returns the back-pressure thresholds of the partition, in bytes:
// lowered, in proportion, to the consumer's share per partition of
// MaxBufferedBytes (see memory.go).
func (p *partition) limits() (pause, resume int64) {
	pause, resume = pauseAt, resumeAt
	if p.batching {
		pause, resume = batchPauseAt, batchResumeAt
	}
	if most := p.c.pauseCap(); most < pause {
		pause, resume = most, resume*most/pause
	}
	return pause, resume
}

// recordOverhead approximates what a record costs in memory besides its
// key, value and headers.
const recordOverhead = 256

func recordSize(r *kgo.Record) int64 {
	n := len(r.Key) + len(r.Value) + recordOverhead
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 32
	}
	return int64(n)
}

// partition is the state of one assigned partition: its lanes (one, or
// PerKey of them), the records dispatched to them, and the commit point.
//
// Records enter in offset order through dispatch (on the poll loop) and
// are settled by their lane: handled, skipped, or written to a retry or
// dead-letter topic. The commit point is the offset after the longest
// prefix of settled records, so an offset is never committed past a record
// that is not settled, whatever the lanes.
type partition struct {
	c     *Consumer
	topic string
	id    int32
	home  stage // the topic handlers are registered for, and the retry stage
	// handlers of the home topic by ce_type, read-only once Run started
	handlers map[string]*binding
	batching bool // some handler takes records in batches (Batch)
	outcomes *telemetry.Outcomes

	ctx      context.Context // for handlers and writes; cancelled to abandon
	cancel   context.CancelFunc
	stopping chan struct{} // closed: no record starts any more
	stopped  atomic.Bool
	stopOnce sync.Once
	wg       sync.WaitGroup // lanes running
	running  atomic.Int32

	// highWatermark is the partition's high watermark as of the last
	// fetch that returned records of it.
	highWatermark atomic.Int64

	mu         sync.Mutex
	lanes      []lane
	pending    []pendingRecord // dispatched, from the oldest not settled
	head       int             // pending[head] is the oldest not settled
	base       uint64          // sequence number of pending[head]
	seq        uint64          // sequence number of the next dispatched record
	next       kgo.EpochOffset // commit point; Offset 0 until a record is settled
	lastCommit int64           // last commit point committed, -1 for none
	buffered   int64           // bytes of the records dispatched and not settled
	full       bool            // buffered reached pauseAt and has not come down to resumeAt
	shed       bool            // full and paused, for it held the poll too long
	holding    bool            // full and still fetched: it holds the poll (gate)
	holds      int             // lanes waiting for a retry record to be due
	paused     bool            // fetching is paused: shed, or holds > 0

	// unknown holds the types without a handler logged at WARN since
	// the partition was assigned (Consumer.skip).
	unknown map[string]struct{}
}

type pendingRecord struct {
	offset  int64
	size    int64
	epoch   int32
	settled bool
}

type lane struct {
	queue   []laneItem
	spare   []laneItem
	wake    chan struct{}
	started bool
	// slot tells that the lane holds a concurrency slot from its last
	// handler call for its next one (see Consumer.call). Touched by the
	// lane's goroutine only.
	slot bool
}

type laneItem struct {
	rec *kgo.Record
	seq uint64
}

// stageOf is the stage topic is read as: a retry topic's, else its own.
func (c *Consumer) stageOf(topic string) stage {
	if home, ok := c.retryOf[topic]; ok {
		return home
	}
	return stage{topic: topic}
}

// batching says whether the partitions of stage take records in batches:
// some handler of a home topic has Batch. Retry topics are read one record
// per transaction: their records wait for their due time one by one.
func (c *Consumer) batching(home stage) bool {
	for _, b := range c.handlers[home.topic] {
		if home.n == 0 && b.tx != nil && b.tx.batch > 1 {
			return true
		}
	}
	return false
}

func newPartition(runCtx context.Context, c *Consumer, topic string, id int32) *partition {
	ctx, cancel := context.WithCancel(runCtx)
	home := c.stageOf(topic)
	return &partition{
		c:          c,
		topic:      topic,
		id:         id,
		home:       home,
		handlers:   c.handlers[home.topic],
		batching:   c.batching(home),
		outcomes:   c.cfg.tel.Outcomes(topic, c.group),
		ctx:        ctx,
		cancel:     cancel,
		stopping:   make(chan struct{}),
		lanes:      make([]lane, c.cfg.perKey),
		lastCommit: -1,
	}
}

// dispatch queues records (in offset order) on their lanes. Called by the
// poll loop only.
func (p *partition) dispatch(recs []*kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped.Load() {
		return // never settled, never committed: the next owner has them
	}
	n := len(p.lanes)
	for _, r := range recs {
		size := recordSize(r)
		p.buffered += size
		p.pending = append(p.pending, pendingRecord{offset: r.Offset, size: size, epoch: r.LeaderEpoch})
		i := 0
		if n > 1 {
			i = int(maphash.Bytes(p.c.seed, r.Key) % uint64(n))
		}
		l := &p.lanes[i]
		l.queue = append(l.queue, laneItem{rec: r, seq: p.seq})
		p.seq++
	}
	for i := range p.lanes {
		l := &p.lanes[i]
		if len(l.queue) == 0 {
			continue
		}
		if !l.started {
			l.started = true
			l.wake = make(chan struct{}, 1)
			p.wg.Add(1)
			p.running.Add(1)
			go p.run(l)
		}
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	if pause, _ := p.limits(); !p.full && p.buffered >= pause {
		p.full = true
		p.gateLocked()
	}
}

// pauseLocked pauses or resumes fetching the partition as shed and holds
// say. The caller holds p.mu.
func (p *partition) pauseLocked() {
	defer p.gateLocked()
	if p.stopped.Load() {
		return // Consumer.unpause resumes it once it is let go
	}
	want := p.shed || p.holds > 0
	if want == p.paused {
		return
	}
	p.paused = want
	tps := map[string][]int32{p.topic: {p.id}}
	if want {
		p.c.cl.PauseFetchPartitions(tps)
	} else {
		p.c.cl.ResumeFetchPartitions(tps)
	}
}

// gateLocked tells the consumer's gate whether the partition holds the
// poll: it does while it is full, fetched and not stopped. The caller
// holds p.mu.
func (p *partition) gateLocked() {
	holding := p.full && !p.paused && !p.stopped.Load()
	if holding == p.holding {
		return
	}
	p.holding = holding
	if holding {
		p.c.gate.hold()
	} else {
		p.c.gate.release()
	}
}

// shedFull pauses the partition if it holds the poll, so the poll goes on
// without it.
func (p *partition) shedFull() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.shed = true
		p.pauseLocked()
	}
}

// holdFetch pauses fetching while a lane waits for a retry record to be
// due: the records behind it would only wait in memory. release resumes.
func (p *partition) holdFetch() (release func()) {
	p.mu.Lock()
	p.holds++
	p.pauseLocked()
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.holds--
		p.pauseLocked()
		p.mu.Unlock()
	}
}

// run is a lane: it settles its records one after the other until the
// partition stops.
func (p *partition) run(l *lane) {
	defer p.wg.Done()
	defer p.running.Add(-1)
	defer p.drop(l)
	for {
		p.mu.Lock()
		batch := l.queue
		if len(batch) > 0 {
			l.queue, l.spare = l.spare, nil
		}
		p.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-l.wake:
				continue
			case <-p.stopping:
				return
			}
		}
		for i := 0; i < len(batch); {
			if p.stopped.Load() {
				return
			}
			n := 1
			if p.batching {
				if n = p.c.processBatch(p, batch[i:]); n == 0 {
					return
				}
			} else {
				if !p.c.process(p, l, batch[i].rec) {
					return
				}
				p.settle(batch[i].seq)
			}
			clear(batch[i : i+n])
			i += n
		}
		p.drop(l) // the lane waits for records: it runs no handler
		p.mu.Lock()
		if l.spare == nil {
			l.spare = batch[:0]
		}
		p.mu.Unlock()
	}
}

// settle marks a record settled and moves the commit point past every
// settled record at the head.
func (p *partition) settle(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.pending[p.head+int(seq-p.base)]
	r.settled = true
	p.buffered -= r.size
	for p.head < len(p.pending) && p.pending[p.head].settled {
		r := p.pending[p.head]
		p.next = kgo.EpochOffset{Epoch: r.epoch, Offset: r.offset + 1}
		p.head++
		p.base++
	}
	switch {
	case p.head == len(p.pending):
		p.pending, p.head = p.pending[:0], 0
	case p.head >= 4096 && p.head*2 >= len(p.pending):
		n := copy(p.pending, p.pending[p.head:])
		p.pending, p.head = p.pending[:n], 0
	}
	if _, resume := p.limits(); p.full && p.buffered <= resume {
		p.full, p.shed = false, false
		p.pauseLocked()
	}
}

// committable returns the commit point when it is past the last one
// committed.
func (p *partition) committable() (kgo.EpochOffset, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Offset == 0 || p.next.Offset <= p.lastCommit {
		return kgo.EpochOffset{}, false
	}
	return p.next, true
}

func (p *partition) markCommitted(offset int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastCommit = max(p.lastCommit, offset)
}

// stop lets no record start any more; waits between retries end at once.
func (p *partition) stop() {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		p.stopped.Store(true)
		p.gateLocked()
		p.mu.Unlock()
		close(p.stopping)
	})
}

// replay reports whether the partition is one of a replay topic, whose
// records carry the coordinates of the record they replay.
func (p *partition) replay() bool { return p.topic != p.home.topic && p.home.n == 0 }

func (p *partition) idle() bool { return p.running.Load() == 0 }

// takePaused reports whether fetching the partition is paused, and
// forgets it: the caller resumes it. Called once it stopped.
func (p *partition) takePaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.paused
	p.paused = false
	return was
}

// sleep waits d; false when the partition stopped first.
func (p *partition) sleep(d time.Duration) bool {
	if d <= 0 {
		return !p.stopped.Load()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return !p.stopped.Load()
	case <-p.stopping:
		return false
	}
}

// acquire takes a concurrency slot; false when the partition stopped
// first.
func (p *partition) acquire() bool { return p.c.sem.acquire(p.stopping) }

func (p *partition) release() { p.c.sem.release() }

// drop releases the slot l holds, if any; l may be nil.
func (p *partition) drop(l *lane) {
	if l != nil && l.slot {
		l.slot = false
		p.release()
	}
}

// semaphore bounds the handler calls running at once. Taking a free slot
// is one atomic add; only a caller that finds none waits on a channel.
type semaphore struct {
	limit   int64
	n       atomic.Int64 // slots taken, briefly more while a caller backs off
	waiters atomic.Int64
	mu      sync.Mutex
	wake    chan struct{} // closed (and replaced) when a slot frees up
}

func newSemaphore(limit int) *semaphore {
	return &semaphore{limit: int64(limit), wake: make(chan struct{})}
}

// acquire takes a slot, waiting until one is free; false when stop is
// closed first.
func (s *semaphore) acquire(stop <-chan struct{}) bool {
	for {
		if s.n.Add(1) <= s.limit {
			return true
		}
		s.n.Add(-1)
		s.waiters.Add(1)
		s.mu.Lock()
		wake := s.wake
		s.mu.Unlock()
		// A release after the load above closes wake; one before it
		// shows here.
		if s.n.Load() < s.limit {
			s.waiters.Add(-1)
			continue
		}
		select {
		case <-wake:
			s.waiters.Add(-1)
		case <-stop:
			s.waiters.Add(-1)
			return false
		}
	}
}

// contended tells that a caller waits for a slot.
func (s *semaphore) contended() bool { return s.waiters.Load() > 0 }

func (s *semaphore) release() {
	s.n.Add(-1)
	if s.waiters.Load() > 0 {
		s.mu.Lock()
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
	}
}

// lag returns how many records of the partition lie past its commit
// point; false before a fetch returned any.
func (p *partition) lag() (int64, bool) {
	hw := p.highWatermark.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 && p.next.Offset == 0 {
		return 0, false
	}
	at := p.next.Offset
	if p.head < len(p.pending) {
		at = p.pending[p.head].offset // the oldest record not settled
	}
	return max(hw-at, 0), true
}
