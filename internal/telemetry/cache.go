package telemetry

import (
	"maps"
	"sync"
	"sync/atomic"
)

// cache holds values built once per key and read for every record. A
// read is an atomic load and a map lookup: no lock, no allocation (a
// sync.Map boxes each key it is asked for). Keys are few (one per kind,
// topic, group and outcome), so each addition copies the map.
type cache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

func (c *cache[K, V]) load(k K) (V, bool) {
	v, ok := c.all()[k]
	return v, ok
}

// add keeps v under k unless a value is there already, and returns the
// value kept.
func (c *cache[K, V]) add(k K, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.all()
	if kept, ok := old[k]; ok {
		return kept
	}
	next := make(map[K]V, len(old)+1)
	maps.Copy(next, old)
	next[k] = v
	c.m.Store(&next)
	return v
}

// all returns the entries as they are now; the caller must not change
// the map.
func (c *cache[K, V]) all() map[K]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}
