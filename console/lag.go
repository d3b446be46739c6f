package console

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset, -1 when it has none (it
	// starts from the partition's start then).
	Committed int64
	// End is the partition's end offset: the offset of its next record.
	End int64
	// Records is the lag in records: End minus the committed offset (or
	// minus the start offset without one).
	Records int64
	// Oldest is the timestamp of the first record the group has not
	// consumed, and Age how long before the call it was written: the lag
	// in time. Both are zero when the group is caught up (or the records
	// left are transaction markers only).
	Oldest time.Time
	Age    time.Duration
}

// GroupLag returns the lag of group on every partition it has a commit on
// or is assigned, sorted by topic and partition: in records from the
// committed and end offsets (kadm's Lag), and in time from the timestamp
// of the record at the committed offset, which it reads with a client of
// cl's connection options. A group Kafka does not know has no partitions:
// GroupLag returns none and no error.
func GroupLag(ctx context.Context, cl *kgo.Client, group string) ([]PartitionLag, error) {
	if cl == nil {
		return nil, errors.New("console: GroupLag: nil client")
	}
	if group == "" {
		return nil, errors.New("console: GroupLag: empty group")
	}
	lags, err := kadm.NewClient(cl).Lag(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("console: lag of group %s: %w", group, err)
	}
	gl, ok := lags[group]
	if !ok {
		return nil, nil
	}
	if err := gl.Error(); err != nil {
		if errors.Is(err, kadm.ErrEmpty) || errors.Is(err, kerr.GroupIDNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("console: lag of group %s: %w", group, err)
	}
	var out []PartitionLag
	from := make(map[string]map[int32]kgo.Offset)
	var ferr error
	for _, l := range gl.Lag.Sorted() {
		if l.Err != nil {
			ferr = errors.Join(ferr, fmt.Errorf("console: lag of group %s on %s/%d: %w", group, l.Topic, l.Partition, l.Err))
			continue
		}
		pl := PartitionLag{Topic: l.Topic, Partition: l.Partition, Committed: l.Commit.At, End: l.End.Offset}
		at := l.Commit.At
		if at < 0 {
			at = l.Start.Offset
		}
		pl.Records = max(pl.End-at, 0)
		if pl.Records > 0 {
			if from[l.Topic] == nil {
				from[l.Topic] = make(map[int32]kgo.Offset)
			}
			from[l.Topic][l.Partition] = kgo.NewOffset().At(at)
		}
		out = append(out, pl)
	}
	if ferr != nil {
		return nil, ferr
	}
	if len(from) == 0 {
		return out, nil
	}
	oldest, err := firstRecords(ctx, cl, from, out)
	if err != nil {
		return nil, fmt.Errorf("console: lag of group %s in time: %w", group, err)
	}
	now := time.Now()
	for i := range out {
		if t, ok := oldest[out[i].Topic][out[i].Partition]; ok {
			out[i].Oldest, out[i].Age = t, max(now.Sub(t), 0)
		}
	}
	return out, nil
}

// firstRecords reads, from each partition of from, the first record that
// is not a transaction marker, up to the partition's end offset in lags,
// and returns its timestamp.
func firstRecords(ctx context.Context, cl *kgo.Client, from map[string]map[int32]kgo.Offset, lags []PartitionLag) (map[string]map[int32]time.Time, error) {
	end := make(map[string]map[int32]int64)
	pending := 0
	for _, l := range lags {
		if _, ok := from[l.Topic][l.Partition]; ok {
			if end[l.Topic] == nil {
				end[l.Topic] = make(map[int32]int64)
			}
			end[l.Topic][l.Partition] = l.End
			pending++
		}
	}
	rd, err := kgo.NewClient(append(connOpts(cl), kgo.ConsumePartitions(from), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	out := make(map[string]map[int32]time.Time)
	for pending > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("read %s/%d: %w", t, p, err))
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			e, ok := end[p.Topic][p.Partition]
			if !ok {
				return
			}
			for _, r := range p.Records {
				done := r.Offset+1 >= e
				if !r.Attrs.IsControl() {
					if out[p.Topic] == nil {
						out[p.Topic] = make(map[int32]time.Time)
					}
					out[p.Topic][p.Partition] = r.Timestamp
					done = true
				}
				if done {
					delete(end[p.Topic], p.Partition)
					rd.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
					pending--
					return
				}
			}
		})
	}
	return out, nil
}

// connOpts are cl's options but its producer, consumer and group ones: a
// reader's connection (seeds, TLS, SASL, dialer).
func connOpts(cl *kgo.Client) []kgo.Opt {
	var out []kgo.Opt
	for _, o := range cl.Opts() {
		switch o.(type) {
		case kgo.ProducerOpt, kgo.ConsumerOpt, kgo.GroupOpt:
			continue
		}
		out = append(out, o)
	}
	return out
}
