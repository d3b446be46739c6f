package consumer

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maxUnknownTypes bounds what a stream of made-up ce_type values can cost:
// the names Stats.SkippedTypes counts apiece, and the warnings a partition
// assignment logs.
const maxUnknownTypes = 100

// OtherTypes is the key of Stats.SkippedTypes that counts the records of
// the types beyond the first 100 it names.
const OtherTypes = "(other types)"

// skippedTypes counts skipped records by type, without a lock: on a
// topic whose types the group mostly does not handle, every lane skips.
type skippedTypes struct {
	counts sync.Map     // type -> *atomic.Uint64
	named  atomic.Int64 // types in counts, OtherTypes aside
}

func (s *skippedTypes) add(typ string) {
	v, ok := s.counts.Load(typ)
	if !ok {
		if s.named.Add(1) > maxUnknownTypes {
			s.named.Add(-1)
			typ = OtherTypes
		}
		var loaded bool
		if v, loaded = s.counts.LoadOrStore(typ, new(atomic.Uint64)); loaded && typ != OtherTypes {
			s.named.Add(-1)
		}
	}
	v.(*atomic.Uint64).Add(1)
}

func (s *skippedTypes) snapshot() map[string]uint64 {
	var m map[string]uint64
	s.counts.Range(func(k, v any) bool {
		if m == nil {
			m = make(map[string]uint64)
		}
		m[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return m
}

// skip settles a record whose type has no handler: counted, and the
// first of its type in this partition assignment logged at WARN, since a
// type nobody handles is often a producer's renamed Go type whose inferred
// record name changed.
func (r *call) skip() {
	c, p := r.c, r.p
	c.stats.skipped.Add(1)
	c.stats.skippedTypes.add(r.meta.Type)
	r.report(Outcome{Result: Skipped})
	if !p.firstUnknown(r.meta.Type) {
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.LogAttrs(context.Background(), slog.LevelDebug, "consumer: no handler for the type; skipped", r.attrs()...)
		}
		return
	}
	known := slices.Sorted(maps.Keys(p.handlers))
	c.log.LogAttrs(context.Background(), slog.LevelWarn,
		"consumer: no handler for this type on the topic: its records are skipped (logged once per type and partition assignment, counted in Stats.SkippedTypes). "+
			"A producer that renamed its Go type renamed the inferred record: keep the name with an explicit schema (bus.Schema), handle the new name, or dead-letter such records (consumer.Unhandled)",
		r.attrs(slog.String("known_types", strings.Join(known, ", ")))...)
}

// firstUnknown tells whether typ is the first type without a handler of
// its name seen since the partition was assigned, up to maxUnknownTypes.
func (p *partition) firstUnknown(typ string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.unknown[typ]; seen || len(p.unknown) >= maxUnknownTypes {
		return false
	}
	if p.unknown == nil {
		p.unknown = make(map[string]struct{})
	}
	p.unknown[typ] = struct{}{}
	return true
}
