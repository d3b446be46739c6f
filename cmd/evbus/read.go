package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsets are positions per topic and partition.
type offsets map[string]map[int32]int64

func offsetsOf(l kadm.ListedOffsets) (offsets, error) {
	out := make(offsets)
	var err error
	l.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			err = errors.Join(err, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = make(map[int32]int64)
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, err
}

// bounds returns the start and end offsets of every partition of topics.
func bounds(ctx context.Context, adm *kadm.Client, topics ...string) (starts, ends offsets, err error) {
	ls, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets: %w", err)
	}
	le, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets: %w", err)
	}
	if starts, err = offsetsOf(ls); err != nil {
		return nil, nil, err
	}
	ends, err = offsetsOf(le)
	return starts, ends, err
}

// consume reads the partitions of starts from their start offsets and
// calls fn with each record, until fn returns false or ctx ends; with ends
// it also stops once every partition reached its end offset.
func consume(ctx context.Context, cn *conn, starts, ends offsets, fn func(*kgo.Record) bool) error {
	from := make(map[string]map[int32]kgo.Offset)
	pending := 0
	for topic, parts := range starts {
		for p, off := range parts {
			if ends != nil && off >= ends[topic][p] {
				continue
			}
			if from[topic] == nil {
				from[topic] = make(map[int32]kgo.Offset)
			}
			from[topic][p] = kgo.NewOffset().At(off)
			pending++
		}
	}
	if pending == 0 && ends != nil {
		return nil
	}
	// Control records (transaction markers) are kept so that a partition
	// whose last offset is one still reaches its end; fn never sees them.
	cl, err := cn.kafka(ctx, kgo.ConsumePartitions(from), kgo.KeepControlRecords())
	if err != nil {
		return err
	}
	defer cl.Close()
	done := make(map[string]map[int32]bool)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: what was read is printed
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("read %s/%d: %w", topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		stop := false
		fs.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if ends != nil {
				end := ends[r.Topic][r.Partition]
				if r.Offset+1 >= end && !done[r.Topic][r.Partition] {
					if done[r.Topic] == nil {
						done[r.Topic] = make(map[int32]bool)
					}
					done[r.Topic][r.Partition] = true
					pending--
				}
				if r.Offset >= end {
					return // written after the read began
				}
			}
			if r.Attrs.IsControl() {
				return
			}
			if !fn(r) {
				stop = true
			}
		})
		if stop || (ends != nil && pending == 0) {
			return nil
		}
	}
}
