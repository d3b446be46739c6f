package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/internal/testkit"
)

// benchOrder is the same event as bus/bench_test.go's.
type benchOrder = testkit.BenchOrder

const benchOrderAvsc = testkit.BenchOrderSchema

const (
	publishTopic = "bench-publish"
	consumeTopic = "bench-consume"
)

var (
	publishOrder = bus.Event[benchOrder](publishTopic, func(o *benchOrder) string { return o.OrderID }, bus.Schema(benchOrderAvsc))
	consumeOrder = bus.Event[benchOrder](consumeTopic, func(o *benchOrder) string { return o.OrderID }, bus.Schema(benchOrderAvsc))
)

// hambaSchema is the event's schema parsed by hamba, for the hand-rolled
// paths.
var hambaSchema = avro.MustParse(benchOrderAvsc)

// benchEvents returns n distinct events (distinct keys, so every partition
// gets records).
func benchEvents(n int) []*benchOrder {
	evs := make([]*benchOrder, n)
	for i := range evs {
		evs[i] = benchEvent(int64(i))
	}
	return evs
}

var (
	benchNote = strings.Repeat("gift wrap, leave at the door ", 4)[:110]
	benchAt   = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
)

// benchEvent returns event number i; its order id, the key, ends in i
// (eventNumber reads it back).
func benchEvent(i int64) *benchOrder {
	return &benchOrder{
		OrderID:    fmt.Sprintf("0190b7a2-8c1e-7a3b-9f%02d-%012d", i%100, i),
		CustomerID: fmt.Sprintf("customer-%06d", i%500),
		SKU:        "SKU-ABCDEFGH-1234",
		Qty:        int32(1 + i%7),
		Cents:      1000 + i*137,
		Currency:   "EUR",
		PlacedAt:   benchAt.Add(time.Duration(i) * time.Millisecond),
		Note:       benchNote,
	}
}

// eventNumber is the number of the event whose order id (the record key)
// is id.
func eventNumber(id []byte) (int64, error) {
	if len(id) < 12 {
		return 0, fmt.Errorf("order id %q: too short", id)
	}
	return strconv.ParseInt(string(id[len(id)-12:]), 10, 64)
}

// handEncode is what a user hand-rolls: avro.Marshal, then the Confluent
// prefix (magic byte 0, schema id big-endian) in front of it.
func handEncode(id int, ev *benchOrder) []byte {
	body, err := avro.Marshal(hambaSchema, ev)
	if err != nil {
		panic(err)
	}
	v := make([]byte, 5+len(body))
	binary.BigEndian.PutUint32(v[1:5], uint32(id))
	copy(v[5:], body)
	return v
}

// handDecode is the hand-rolled reading: check the prefix, decode the body
// with the one schema the consumer knows.
func handDecode(id int, value []byte, ev *benchOrder) error {
	if len(value) < 5 || value[0] != 0 || int(binary.BigEndian.Uint32(value[1:5])) != id {
		return errors.New("not framed with the expected schema id")
	}
	return avro.Unmarshal(hambaSchema, value[5:], ev)
}

// meter measures, for the b.N records of one benchmark run, records/s
// (wall clock) and cpu-ns/record (CPU time of the whole process: client,
// in-process broker, GC; it moves less than wall time when other work
// shares the machine). With b.ReportAllocs, B/op and allocs/op are per
// record too, counted over every goroutine of the process.
type meter struct {
	cpu0 time.Duration
}

func startMeter(b *testing.B) *meter {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	return &meter{cpu0: cputime.Process()}
}

// stop stops the timer and reports.
func (m *meter) stop(b *testing.B) {
	b.StopTimer()
	cpu := cputime.Process() - m.cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}
