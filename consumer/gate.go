package consumer

import (
	"context"
	"sync/atomic"
	"time"
)

// gate is the consumer's back-pressure on fetching: the poll loop does not
// poll while a partition is full (has pauseAt bytes of records dispatched
// and not settled) and still fetched.
//
// Holding the poll rather than pausing the partition keeps what franz-go
// has fetched: it holds one fetch, and hands it over the moment the poll
// goes on, so a full partition that drains gets its next records at once.
// Pausing drops what was fetched, and on resume the partition waits for
// the fetch in flight, which the broker holds up to FetchMaxWait when the
// other partitions are idle: a backlog read that way runs in bursts with
// waits between them.
//
// Holding the poll holds every partition, so it lasts only while no other
// partition needs records: when one runs dry, or once the poll has waited
// FetchMaxWait (records that arrived on an idle partition wait no longer
// than the broker may hold a fetch anyway), the full partitions are paused
// instead (shed) and the poll goes on without them.
type gate struct {
	holding atomic.Int32  // partitions full and still fetched
	starved atomic.Bool   // a partition ran dry while the poll was held
	wake    chan struct{} // signalled when either changes
}

func newGate() *gate { return &gate{wake: make(chan struct{}, 1)} }

func (g *gate) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// hold and release count a partition that starts or stops holding the
// poll.
func (g *gate) hold() { g.holding.Add(1) }

func (g *gate) release() {
	if g.holding.Add(-1) == 0 {
		g.starved.Store(false)
		g.signal()
	}
}

// ranDry tells the gate that a partition settled its last record: if the
// poll is held, that partition waits for it.
func (g *gate) ranDry() {
	if g.holding.Load() > 0 {
		g.starved.Store(true)
		g.signal()
	}
}

// wait returns when no partition holds the poll, or ctx ended. When a
// partition ran dry, or after maxWait, it calls shed, which must pause
// the partitions that hold the poll (and so release it).
func (g *gate) wait(ctx context.Context, maxWait time.Duration, shed func()) {
	if g.holding.Load() == 0 {
		return
	}
	t := time.NewTimer(maxWait)
	defer t.Stop()
	for g.holding.Load() > 0 {
		if g.starved.Swap(false) {
			shed()
			continue
		}
		select {
		case <-g.wake:
		case <-t.C:
			shed()
		case <-ctx.Done():
			return
		}
	}
}
