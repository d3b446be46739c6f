package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// Read returns the dead letters of group ("" for every group) held by the
// dead-letter topics, oldest failure first, and how many records it read.
// cl gives the connection: Read reads with a client of its own made from
// cl.Opts(), so cl must not consume itself. A record that is not a dead
// letter is left out (see Skipped). No dead-letter topic to read is a
// *NoTopicError.
func Read(ctx context.Context, cl *kgo.Client, group string, opts ...Option) ([]wire.DeadLetter, int, error) {
	c, err := newConfig("Read", opts)
	if err != nil {
		return nil, 0, err
	}
	return c.read(ctx, cl, group)
}

func (c *config) read(ctx context.Context, cl *kgo.Client, group string) ([]wire.DeadLetter, int, error) {
	if cl == nil {
		return nil, 0, errors.New("deadletter: nil client: pass one made with kgo.NewClient")
	}
	adm := kadm.NewClient(cl)
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("deadletter: list topics: %w", err)
	}
	if c.topic != "" && !all.Has(c.topic) {
		return nil, 0, &NoTopicError{Group: group, Topic: c.topic, TopicMissing: true}
	}
	var topics, groups []string // groups: those with a dead-letter topic (of c.topic)
	for _, t := range all.Names() {
		of, g, ok := deadLetterTopicOf(t, all.Has)
		if !ok || c.topic != "" && of != c.topic {
			continue
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
		if group == "" || g == group {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		slices.Sort(groups)
		return nil, 0, &NoTopicError{Group: group, Topic: c.topic, Groups: groups}
	}
	from, ends, total, err := partitions(ctx, adm, topics)
	if err != nil {
		return nil, 0, err
	}
	var out []wire.DeadLetter
	read := 0
	err = consume(ctx, cl, from, ends, func(r *kgo.Record) {
		read++
		if c.progress != nil {
			c.progress(read, total)
		}
		d, err := wire.ParseDeadLetter(r)
		if err != nil {
			if c.skipped != nil {
				c.skipped(err)
			}
			return
		}
		if (group == "" || d.Group == group) && (c.topic == "" || d.OriginalTopic == c.topic) {
			out = append(out, d)
		}
	})
	slices.SortStableFunc(out, func(a, b wire.DeadLetter) int { return a.FailedAt.Compare(b.FailedAt) })
	return out, read, err
}

// deadLetterTopicOf tells whether name is a dead-letter topic, and of
// which topic and group (see wire.SplitTopicGroup).
func deadLetterTopicOf(name string, exists func(string) bool) (topic, group string, ok bool) {
	base, ok := strings.CutSuffix(name, ".dlt")
	if !ok {
		return "", "", false
	}
	return wire.SplitTopicGroup(base, exists)
}

// partitions returns where to start reading each partition of topics,
// where to stop (the end offsets now), and how many records that is.
func partitions(ctx context.Context, adm *kadm.Client, topics []string) (map[string]map[int32]kgo.Offset, map[string]map[int32]int64, int, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("deadletter: list offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("deadletter: list offsets: %w", err)
	}
	from := make(map[string]map[int32]kgo.Offset)
	until := make(map[string]map[int32]int64)
	total := 0
	starts.Each(func(s kadm.ListedOffset) {
		end, _ := ends.Lookup(s.Topic, s.Partition)
		if end.Offset <= s.Offset {
			return // empty
		}
		if from[s.Topic] == nil {
			from[s.Topic], until[s.Topic] = make(map[int32]kgo.Offset), make(map[int32]int64)
		}
		from[s.Topic][s.Partition] = kgo.NewOffset().At(s.Offset)
		until[s.Topic][s.Partition] = end.Offset
		total += int(end.Offset - s.Offset)
	})
	return from, until, total, nil
}

// consume reads the partitions of from up to their end offsets in ends
// and calls fn with each record, with a client of cl's options.
func consume(ctx context.Context, cl *kgo.Client, from map[string]map[int32]kgo.Offset, ends map[string]map[int32]int64, fn func(*kgo.Record)) error {
	pending := 0
	for _, ps := range from {
		pending += len(ps)
	}
	if pending == 0 {
		return nil
	}
	// Control records (transaction markers) are kept so that a partition
	// whose last offset is one still reaches its end; fn never sees them.
	rd, err := kgo.NewClient(append(cl.Opts(), kgo.ConsumePartitions(from), kgo.KeepControlRecords())...)
	if err != nil {
		return fmt.Errorf("deadletter: reading client (from the options of the client given): %w", err)
	}
	defer rd.Close()
	for pending > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("deadletter: read %s/%d: %w", topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			end := ends[p.Topic][p.Partition]
			for _, r := range p.Records {
				if r.Offset >= end {
					break // written after the read began
				}
				if !r.Attrs.IsControl() {
					fn(r)
				}
				if r.Offset+1 == end {
					pending--
				}
			}
		})
	}
	return nil
}
