package consumer

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// lane runs records of one partition one after the other: the partition's
// records (one lane), or those of the keys that hash to it (PerKey).
// queue, spare, wake and started are protected by the partition's mu.
type lane struct {
	queue   []laneItem
	spare   []laneItem
	wake    chan struct{}
	started bool
}

type laneItem struct {
	rec *kgo.Record
	seq uint64
}

// runLane settles the records of l one after the other until the
// partition stops.
func (p *partition) runLane(l *lane) {
	defer p.wg.Done()
	defer p.running.Add(-1)
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
				if n = p.pipe.processBatch(p, batch[i:]); n == 0 {
					return
				}
			} else {
				if !p.pipe.process(p, batch[i]) {
					return
				}
			}
			clear(batch[i : i+n])
			i += n
		}
		p.mu.Lock()
		if l.spare == nil {
			l.spare = batch[:0]
		}
		p.mu.Unlock()
	}
}

// acquire takes a concurrency slot; false when the partition stopped
// first.
func (p *partition) acquire() bool { return p.sem.acquire(p.stopping) }

func (p *partition) release() { p.sem.release() }

// inSlot runs the handler once (call.once) in a concurrency slot, so a
// record waiting (between retries, for the registry, the database or a
// write) holds none.
func (r *call) inSlot(attempt int) error {
	if !r.p.acquire() {
		return errStopped
	}
	defer r.p.release()
	return r.once(attempt, nil)
}

// semaphore bounds the handler calls running at once. Taking a free slot
// is one atomic add; only a caller that finds none waits on a channel.
type semaphore struct {
	limit   int64
	n       atomic.Int64 // slots taken, briefly more while a caller backs off
	waiters atomic.Int64

	// mu protects wake.
	mu   sync.Mutex
	wake chan struct{} // closed (and replaced) when a slot frees up
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

func (s *semaphore) release() {
	s.n.Add(-1)
	if s.waiters.Load() > 0 {
		s.mu.Lock()
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
	}
}
