package deadletter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// follower reads topics from the start of each partition and, on each
// catchUp, up to the end offsets the partitions have then; the next
// catchUp goes on from there. It is the one bounded read of the package:
// Read, the Ledger and the Manager read through it. It is not safe for
// concurrent use: its owner serializes the calls.
type follower struct {
	adm    *kadm.Client
	reader *kgo.Client // of the given client's connection options
	// next is the offset to read next in each partition followed.
	next map[string]map[int32]int64
	// held are records fetched past the end of the last catchUp: they
	// are handed out by the next one.
	held map[string]map[int32][]*kgo.Record
}

// newFollower returns a follower with a client of its own made of cl's
// connection options (seeds, TLS, SASL, dialer), but none of its
// producer, consumer or group options.
func newFollower(cl *kgo.Client) (*follower, error) {
	var opts []kgo.Opt
	for _, o := range cl.Opts() {
		if !isRole(o) {
			opts = append(opts, o)
		}
	}
	// Only committed records are read: a record of an aborted or open
	// transaction was not written, as far as a reader knows. Control
	// records are kept so the offsets read reach the end offset even when
	// the last record is a transaction marker; they are never handed out.
	reader, err := kgo.NewClient(append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return nil, fmt.Errorf("deadletter: reading client (from the options of the client given): %w", err)
	}
	return &follower{
		adm:    kadm.NewClient(cl),
		reader: reader,
		next:   make(map[string]map[int32]int64),
		held:   make(map[string]map[int32][]*kgo.Record),
	}, nil
}

// isRole reports a producer, consumer or group option: those of the
// caller's client that a reader must not copy.
func isRole(o kgo.Opt) bool {
	switch o.(type) {
	case kgo.ProducerOpt, kgo.ConsumerOpt, kgo.GroupOpt:
		return true
	}
	return false
}

func (f *follower) close() { f.reader.Close() }

// catchUp reads topics (each of which must exist) to the end offsets
// they have now (the last stable offsets: an open transaction's records
// wait for its end) and calls apply with each record, in offset order per
// partition; transaction markers are skipped. A partition seen for the
// first time is read from its start, so are topics not followed before.
// progress, when not nil, is called after each record with how many were
// handed out and how many the read holds.
func (f *follower) catchUp(ctx context.Context, topics []string, apply func(*kgo.Record), progress func(read, total int)) error {
	if len(topics) == 0 {
		return nil
	}
	ends, err := f.adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	if err := f.follow(ctx, ends); err != nil {
		return err
	}
	end := func(topic string, p int32) int64 {
		o, ok := ends.Lookup(topic, p)
		if !ok {
			return -1 // not part of this catch-up
		}
		return o.Offset
	}
	total, read := 0, 0
	ends.Each(func(o kadm.ListedOffset) { total += int(max(0, o.Offset-f.next[o.Topic][o.Partition])) })
	take := func(r *kgo.Record) {
		f.next[r.Topic][r.Partition] = r.Offset + 1
		if r.Attrs.IsControl() {
			return
		}
		read++
		apply(r)
		if progress != nil {
			progress(read, total)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(f.held)) {
		for p, rs := range f.held[t] {
			e := end(t, p)
			keep := rs[:0]
			for _, r := range rs {
				if e >= 0 && r.Offset < e {
					take(r)
				} else {
					keep = append(keep, r)
				}
			}
			f.held[t][p] = keep
		}
	}
	behind := func() bool {
		b := false
		ends.Each(func(o kadm.ListedOffset) { b = b || f.next[o.Topic][o.Partition] < o.Offset })
		return b
	}
	for behind() {
		fs := f.reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("read %s/%d: %w", topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			e := end(p.Topic, p.Partition)
			for _, r := range p.Records {
				if e < 0 || r.Offset >= e { // written after this catch-up began
					if f.held[r.Topic] == nil {
						f.held[r.Topic] = make(map[int32][]*kgo.Record)
					}
					f.held[r.Topic][r.Partition] = append(f.held[r.Topic][r.Partition], r)
					continue
				}
				take(r)
			}
		})
	}
	return nil
}

// follow starts reading the partitions of ends that are not followed
// yet, from their start offsets.
func (f *follower) follow(ctx context.Context, ends kadm.ListedOffsets) error {
	var topics []string
	ends.Each(func(o kadm.ListedOffset) {
		if _, ok := f.next[o.Topic][o.Partition]; !ok && !slices.Contains(topics, o.Topic) {
			topics = append(topics, o.Topic)
		}
	})
	if len(topics) == 0 {
		return nil
	}
	starts, err := f.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("start offsets of %v: %w", topics, err)
	}
	added := make(map[string]map[int32]kgo.Offset)
	ends.Each(func(o kadm.ListedOffset) {
		if _, ok := f.next[o.Topic][o.Partition]; ok {
			return
		}
		s, ok := starts.Lookup(o.Topic, o.Partition)
		if !ok {
			return
		}
		if f.next[o.Topic] == nil {
			f.next[o.Topic] = make(map[int32]int64)
		}
		if added[o.Topic] == nil {
			added[o.Topic] = make(map[int32]kgo.Offset)
		}
		f.next[o.Topic][o.Partition] = s.Offset
		added[o.Topic][o.Partition] = kgo.NewOffset().At(s.Offset)
	})
	f.reader.AddConsumePartitions(added)
	return nil
}
