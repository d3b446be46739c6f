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
// the fetch in flight, which the broker holds up to kgo.FetchMaxWait when the
// other partitions are idle: a backlog read that way runs in bursts with
// waits between them.
//
// Holding the poll holds every partition, the ones that ran dry too. It
// lasts until the full partitions have drained to resumeAt, or at most
// kgo.FetchMaxWait (records that arrived on another partition wait no longer
// than the broker may hold a fetch anyway); then the poll goes on, and
// the partitions still full are paused (shed) after it, so the fetches
// after it leave them out until they drain.
//
// Shedding when another partition runs dry, rather than after the wait,
// would cost more than it saves: a shed partition is fetched again only
// with the fetch after its resume, and while the others are idle the
// broker holds that fetch up to kgo.FetchMaxWait; a full partition drains to
// resumeAt in less than that unless its handler is slow. And shedding
// after the poll rather than before keeps what franz-go had fetched for
// the full partitions (pausing first drops it): a partition that ran dry
// is rarely the only one whose next records are in that fetch. Their
// memory is spent already; the pause keeps the fetches after it from
// adding to it.
type gate struct {
	holding atomic.Int32  // partitions full and still fetched
	wake    chan struct{} // signalled when none holds any more
}

func newGate() *gate { return &gate{wake: make(chan struct{}, 1)} }

// hold and release count a partition that starts or stops holding the
// poll.
func (g *gate) hold() { g.holding.Add(1) }

func (g *gate) release() {
	if g.holding.Add(-1) == 0 {
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns when no partition holds the poll (false), when the poll
// has waited maxWait and some still do (true: the caller polls, then
// pauses those that still hold it), or when ctx ended (false).
func (g *gate) wait(ctx context.Context, maxWait time.Duration) (shed bool) {
	if g.holding.Load() == 0 {
		return false
	}
	t := time.NewTimer(maxWait)
	defer t.Stop()
	for g.holding.Load() > 0 {
		select {
		case <-g.wake:
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	return false
}
