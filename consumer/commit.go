package consumer

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The commit point of a partition is the offset after the longest prefix
// of its dispatched records that are all settled. Lanes settle records in
// any order across keys; the point moves only past settled ones.

// pendingRecord is a dispatched record, in partition.pending.
type pendingRecord struct {
	offset  int64
	size    int64
	epoch   int32
	settled bool
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

// commitLoop commits handled offsets every CommitInterval until ctx ends.
func (c *Consumer) commitLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.cfg.commitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.commitMu.Lock()
		c.commit(ctx, c.all())
		c.commitMu.Unlock()
	}
}

// commit commits, for each partition, the offset after its last record
// that has every record before it settled. The caller holds commitMu.
func (c *Consumer) commit(ctx context.Context, parts []*partition) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	byTP := make(map[tp]*partition)
	for _, p := range parts {
		eo, ok := p.committable()
		if !ok {
			continue
		}
		if offsets[p.topic] == nil {
			offsets[p.topic] = make(map[int32]kgo.EpochOffset)
		}
		offsets[p.topic][p.id] = eo
		byTP[tp{p.topic, p.id}] = p
	}
	if len(offsets) == 0 {
		return
	}
	c.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			c.log.Warn("consumer: commit failed; it is tried again", "error", err)
			return
		}
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				p := byTP[tp{t.Topic, pr.Partition}]
				if p == nil {
					continue
				}
				if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
					c.log.Warn("consumer: commit failed; it is tried again", "topic", t.Topic, "partition", pr.Partition, "error", err)
					continue
				}
				p.markCommitted(offsets[t.Topic][pr.Partition].Offset)
			}
		}
	})
}
