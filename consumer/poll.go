package consumer

import (
	"context"
	"errors"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/twmb/franz-go/pkg/kgo"
)

// poll fetches records and hands them to their partitions until ctx ends,
// waiting while a full partition holds the poll (gate). Rebalances are
// blocked while a poll's records are dispatched, so a revocation never
// races a dispatch. The contexts of the partitions created here are
// children of runCtx (Run's), cancelled when they are let go.
func (c *Consumer) poll(ctx, runCtx context.Context) {
	for {
		shed := c.gate.wait(ctx, c.fetchWait)
		c.sizer.resize(c.cl, c.fetchShare())
		// A whole fetch at a time: franz-go fetches again only once its
		// buffered fetch is taken, so the gate decides between fetches,
		// while the partitions of one fetch all get their records.
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			c.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, partition int32, err error) {
			var session *kgo.ErrGroupSession
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &session) {
				return // a group session failure is logged by OnGroupManageError
			}
			c.log.Error("consumer: fetch error", "topic", topic, "partition", partition, "error", err)
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				part := c.partition(runCtx, p.Topic, p.Partition)
				part.highWatermark.Store(p.HighWatermark)
				part.dispatch(p.Records)
			}
		})
		if shed {
			c.shedFull()
		}
		c.cl.AllowRebalance()
	}
}

// shedFull pauses the partitions that hold the poll.
func (c *Consumer) shedFull() {
	for _, p := range c.all() {
		p.shedFull()
	}
}

// pauseFetch pauses or resumes fetching a partition.
func (c *Consumer) pauseFetch(topic string, id int32, pause bool) {
	tps := map[string][]int32{topic: {id}}
	if pause {
		c.cl.PauseFetchPartitions(tps)
	} else {
		c.cl.ResumeFetchPartitions(tps)
	}
}

// partition returns the state of a partition, created on its first records
// after it was assigned.
func (c *Consumer) partition(ctx context.Context, topic string, id int32) *partition {
	k := tp{topic, id}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	p := c.parts[k]
	if p == nil {
		p = newPartition(ctx, c, topic, id)
		c.parts[k] = p
		c.nparts.Store(int64(len(c.parts)))
	}
	return p
}

// take removes the partitions named in m and returns them.
func (c *Consumer) take(m map[string][]int32) []*partition { return c.named(m, true) }

// lookup returns the partitions named in m.
func (c *Consumer) lookup(m map[string][]int32) []*partition { return c.named(m, false) }

func (c *Consumer) named(m map[string][]int32, remove bool) []*partition {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	var out []*partition
	for topic, ids := range m {
		for _, id := range ids {
			k := tp{topic, id}
			if p := c.parts[k]; p != nil {
				out = append(out, p)
				if remove {
					delete(c.parts, k)
					c.nparts.Store(int64(len(c.parts)))
				}
			}
		}
	}
	return out
}

func (c *Consumer) all() []*partition {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	out := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		out = append(out, p)
	}
	return out
}

// lags returns the lag of each assigned partition.
func (c *Consumer) lags() []telemetry.Lag {
	parts := c.all()
	out := make([]telemetry.Lag, 0, len(parts))
	for _, p := range parts {
		if n, ok := p.lag(); ok {
			out = append(out, telemetry.Lag{Topic: p.topic, Partition: p.id, Records: n})
		}
	}
	return out
}
