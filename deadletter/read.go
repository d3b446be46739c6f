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
	f, err := newFollower(cl)
	if err != nil {
		return nil, 0, err
	}
	defer f.close()
	var out []wire.DeadLetter
	read := 0
	err = f.catchUp(ctx, topics, func(r *kgo.Record) {
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
	}, func(n, total int) {
		read = n
		if c.progress != nil {
			c.progress(n, total)
		}
	})
	if err != nil {
		err = fmt.Errorf("deadletter: %w", err)
	}
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
