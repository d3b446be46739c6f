// Package uuid7 makes the UUIDv7 event ids of the publisher (RFC 9562)
// straight into a record's buffer. It exists because it pays: against
// github.com/google/uuid's NewV7 plus String, it saves a system call and
// a clock read per id and two allocations (BenchmarkAppend, and
// BENCHMARKS.md for its share of a publish).
package uuid7

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Len is the length of an id's text form.
const Len = 36

// Generator makes ids: 48 bits of Unix milliseconds, 12 bits of
// sub-millisecond time that keep the ids of one Generator strictly
// increasing (RFC 9562 method 3), and 62 random bits from crypto/rand,
// read 4 KiB at a time rather than with a system call per id. The zero
// value is ready; it is safe for concurrent use.
type Generator struct {
	mu   sync.Mutex // guards the fields below
	last int64      // milliseconds<<12 | sequence of the last id
	rnd  [4096]byte
	off  int
}

// Append appends the text form of a new id made at now (the caller's clock
// read, shared with the record's other times) and returns it as its own
// full slice too.
func (g *Generator) Append(buf []byte, now time.Time) ([]byte, []byte, error) {
	nano := now.UnixNano()
	ms := nano / int64(time.Millisecond)
	t := ms<<12 | (nano-ms*int64(time.Millisecond))>>8 // 0..3906 fits 12 bits
	var u [16]byte
	g.mu.Lock()
	if t <= g.last {
		t = g.last + 1
	}
	g.last = t
	if g.off == 0 || g.off+8 > len(g.rnd) {
		if _, err := rand.Read(g.rnd[:]); err != nil {
			g.mu.Unlock()
			return buf, nil, err
		}
		g.off = 0
	}
	copy(u[8:], g.rnd[g.off:g.off+8])
	g.off += 8
	g.mu.Unlock()
	ms = t >> 12
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(t>>8)&0x0f
	u[7] = byte(t)
	u[8] = u[8]&0x3f | 0x80 // variant 10
	n := len(buf)
	buf = hex.AppendEncode(buf, u[0:4])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, u[4:6])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, u[6:8])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, u[8:10])
	buf = append(buf, '-')
	buf = hex.AppendEncode(buf, u[10:16])
	return buf, buf[n:len(buf):len(buf)], nil
}
