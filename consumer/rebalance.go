package consumer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// onRevoked runs when partitions move to another member (or the member
// leaves): no record of theirs starts any more, the handler calls under
// way finish (DrainTimeout at most), and what was handled is committed
// before the partitions are let go.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	parts := c.lookup(revoked)
	if len(parts) == 0 {
		return
	}
	for _, p := range parts {
		p.stop()
	}
	drainCtx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	abandoned := c.drain(drainCtx, parts)
	c.outcomes.flush(drainCtx, parts) // replays' outcomes before their offsets
	cancel()
	c.commitMu.Lock()
	c.commit(ctx, parts)
	c.take(revoked)
	c.commitMu.Unlock()
	c.unpause(parts)
	for _, p := range parts {
		p.cancel() // its lanes returned, or were cancelled by drain
	}
	c.log.Info("consumer: partitions revoked", "partitions", names(parts), "abandoned_handlers", abandoned)
}

// onLost runs when the member lost its partitions without a chance to
// commit (its session expired): their handlers are cancelled and nothing
// is committed; the next owner handles the uncommitted records again.
func (c *Consumer) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.commitMu.Lock()
	parts := c.take(lost)
	c.commitMu.Unlock()
	if len(parts) == 0 {
		return
	}
	for _, p := range parts {
		p.stop()
		p.cancel()
	}
	drainCtx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	c.drain(drainCtx, parts)
	cancel()
	c.unpause(parts)
	c.log.Warn("consumer: partitions lost", "partitions", names(parts))
}

// drain waits for the partitions' lanes to return; when ctx ends first it
// cancels their handlers and waits a little more. It returns how many
// partitions still had handlers running.
func (c *Consumer) drain(ctx context.Context, parts []*partition) int {
	done := make(chan struct{})
	go func() {
		for _, p := range parts {
			p.wg.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
	}
	for _, p := range parts {
		p.cancel()
	}
	t := time.NewTimer(cancelGrace)
	defer t.Stop()
	select {
	case <-done:
		return 0
	case <-t.C:
	}
	n := 0
	for _, p := range parts {
		if !p.idle() {
			n++
		}
	}
	return n
}

// cancelGrace is how long handlers get to return once their context is
// cancelled, before the consumer goes on without them.
const cancelGrace = 5 * time.Second

// unpause resumes fetching partitions that were paused, so they are not
// still paused if they are assigned again.
func (c *Consumer) unpause(parts []*partition) {
	m := make(map[string][]int32)
	for _, p := range parts {
		if p.takePaused() {
			m[p.topic] = append(m[p.topic], p.id)
		}
	}
	if len(m) > 0 {
		c.cl.ResumeFetchPartitions(m)
	}
}

func allOf(parts []*partition) map[string][]int32 {
	m := make(map[string][]int32)
	for _, p := range parts {
		m[p.topic] = append(m[p.topic], p.id)
	}
	return m
}

func names(parts []*partition) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%s/%d", p.topic, p.id)
	}
	slices.Sort(out)
	return out
}
