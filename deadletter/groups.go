package deadletter

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// Group is the dead letters of one cause.
type Group struct {
	Fingerprint Fingerprint
	Count       int
	FirstFailed time.Time       // the earliest dlt-failed-at
	LastFailed  time.Time       // the latest dlt-failed-at
	Sample      wire.DeadLetter // the dead letter that failed last
}

// Groups reads the dead letters of group (see Read) and returns them
// grouped by fingerprint, the largest group first, and of groups of one
// size the one that failed last first.
func Groups(ctx context.Context, cl *kgo.Client, group string, opts ...Option) ([]Group, error) {
	c, err := newConfig("Groups", opts)
	if err != nil {
		return nil, err
	}
	if group == "" {
		return nil, errors.New("deadletter: Groups: empty group: name the consumer group whose dead letters to group")
	}
	ds, _, err := c.read(ctx, cl, group)
	if err != nil {
		return nil, err
	}
	return GroupBy(ds), nil
}

// GroupBy groups ds by fingerprint, in the order Groups returns.
func GroupBy(ds []wire.DeadLetter) []Group {
	return groupBy(len(ds), func(i int) (wire.DeadLetter, Fingerprint) { return ds[i], FingerprintOf(ds[i]) })
}

// groupBy is GroupBy of n dead letters, the i-th of which, with its
// fingerprint, at returns.
func groupBy(n int, at func(i int) (wire.DeadLetter, Fingerprint)) []Group {
	index := make(map[string]int) // fingerprint ID -> index in out
	var out []Group
	for j := range n {
		d, f := at(j)
		i, ok := index[f.ID]
		if !ok {
			i = len(out)
			index[f.ID] = i
			out = append(out, Group{Fingerprint: f, FirstFailed: d.FailedAt, LastFailed: d.FailedAt, Sample: d})
		}
		g := &out[i]
		g.Count++
		if d.FailedAt.Before(g.FirstFailed) {
			g.FirstFailed = d.FailedAt
		}
		if !d.FailedAt.Before(g.LastFailed) {
			g.LastFailed, g.Sample = d.FailedAt, d
		}
	}
	slices.SortStableFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := b.LastFailed.Compare(a.LastFailed); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint.ID, b.Fingerprint.ID)
	})
	return out
}
