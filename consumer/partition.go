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

// pipeline is what a partition asks of the consumer: to settle the records
// of its lanes, and to pause its fetching. *Consumer is the one
// implementation; a partition holds no pointer back to it.
type pipeline interface {
	// process settles the record it; false when the partition stopped
	// first (call.go).
	process(p *partition, it laneItem) bool
	// processBatch settles a prefix of items, at least one; 0 when the
	// partition stopped first (batch.go).
	processBatch(p *partition, items []laneItem) int
	// pauseCap is the most the partition's pause threshold may be
	// (memory.go).
	pauseCap() int64
	// pauseFetch pauses or resumes fetching the partition.
	pauseFetch(topic string, id int32, pause bool)
}

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
	if most := p.pipe.pauseCap(); most < pause {
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
// PerKey of them, lane.go), the records dispatched to them, and the commit
// point (commit.go).
//
// Records enter in offset order through dispatch (on the poll loop) and
// are settled by their lane: handled, skipped, or written to a retry or
// dead-letter topic. The commit point is the offset after the longest
// prefix of settled records, so an offset is never committed past a record
// that is not settled, whatever the lanes.
type partition struct {
	// Set by newPartition, read-only after.
	pipe  pipeline
	topic string
	id    int32
	home  stage // the topic handlers are registered for, and the retry stage
	// handlers of the home topic by ce_type, read-only once Run started
	handlers map[string]*binding
	batching bool // some handler takes records in batches (Batch)
	outcomes *telemetry.Outcomes
	seed     maphash.Seed // the lane of a key
	gate     *gate        // the consumer's back-pressure on polling
	sem      *semaphore   // the consumer's Concurrency slots

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

	// mu protects the fields below: the lanes' queues, the commit point
	// and the back-pressure state.
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
	// the partition was assigned (call.skip).
	unknown map[string]struct{}
}

func newPartition(ctx context.Context, c *Consumer, topic string, id int32) *partition {
	ctx, cancel := context.WithCancel(ctx)
	home := c.stageOf(topic)
	return &partition{
		pipe:       c,
		topic:      topic,
		id:         id,
		home:       home,
		handlers:   c.handlers[home.topic],
		batching:   c.batching(home),
		outcomes:   c.cfg.tel.Outcomes(topic, c.group),
		seed:       c.seed,
		gate:       c.gate,
		sem:        c.sem,
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
			i = int(maphash.Bytes(p.seed, r.Key) % uint64(n))
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
			go p.runLane(l)
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
	p.pipe.pauseFetch(p.topic, p.id, want)
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
		p.gate.hold()
	} else {
		p.gate.release()
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
