package bench

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/wire"
)

// consumeRecords is how many records every consumer reads in one op.
const consumeRecords = 50_000

// consumeTimeout bounds one op: a consumer that has not handled every
// record by then fails the benchmark (saying how many it handled) rather
// than hanging it.
const consumeTimeout = 2 * time.Minute

// consumeEnv holds consumeRecords records on a topic of 3 partitions.
type consumeEnv struct{ *records }

func startConsumeEnv(b *testing.B) *consumeEnv {
	return &consumeEnv{publishRecords(b, consumeOrder, 3, consumeRecords)}
}

// pass is one consumer reading every record once: when it started, when
// the first and the last record were handled, and the checksum.
type pass struct {
	start, first, last time.Time
	sum                int64
	close              func() // stops the consumer; not timed
}

// tally counts handled records from any goroutine; done is closed when
// want of them were handled, last is when and cpu the process's CPU time
// then.
type tally struct {
	want                     int64
	n, sum, first, last, cpu atomic.Int64
	done                     chan struct{}
}

func newTally(want int) *tally { return &tally{want: int64(want), done: make(chan struct{})} }

func (t *tally) add(cents int64) {
	t.sum.Add(cents)
	n := t.n.Add(1)
	if n == 1 {
		t.first.Store(time.Now().UnixNano())
	}
	if n == t.want {
		t.last.Store(time.Now().UnixNano())
		t.cpu.Store(int64(cputime.Process()))
		close(t.done)
	}
}

// steady is the time from the first record handled to the last.
func (t *tally) steady() time.Duration { return time.Duration(t.last.Load() - t.first.Load()) }

// runUntil runs run on its own goroutine until t is done, failing b when
// run returns first or after consumeTimeout. stop calls closeFn and waits
// for run to return, reporting the errors of both.
func runUntil(b *testing.B, t *tally, run, closeFn func() error) (stop func()) {
	errc := make(chan error, 1)
	go func() { errc <- run() }()
	select {
	case <-t.done:
	case err := <-errc:
		b.Fatalf("consumer stopped after %d records: %v", t.n.Load(), err)
	case <-time.After(consumeTimeout):
		b.Fatalf("handled %d of %d records in %v", t.n.Load(), t.want, consumeTimeout)
	}
	return func() {
		if err := closeFn(); err != nil {
			b.Error(err)
		}
		if err := <-errc; err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkConsume reads the same records with each implementation, each
// op with a new consumer group from the start of the topic, decoding every
// record into the Go struct. One op reads all consumeRecords records:
//
//	sec/op         from creating the consumer to the last record handled (joining the group included)
//	records/s      from the first record handled to the last (steady state)
//	join-ms        from creating the consumer to the first record
//	cpu-ns/record  CPU time of the process in the timed part, per record
//	allocs/record, B/record   the same for allocations
//
// Closing the consumer is not timed.
//
//	impl=franz-go+hamba      kgo group consumer (PollFetches), prefix checked, avro.Unmarshal
//	impl=franz-go+hamba+ce   the same doing by hand what the wire contract asks of every
//	                         consumer: route by ce_type, read the CloudEvents headers
//	                         (ce_time parsed) into the metadata a handler gets, call the
//	                         handler with a new *T, commit only what was handled
//	impl=franz-go+hamba+ce-least   the same with less than the contract asks: header
//	                         strings alias the record's bytes, ce_time is not parsed: a
//	                         lower bound for any consumer that gives handlers their metadata
//	impl=evbus               consumer.New + consumer.Handle (no-op handler), 3 partitions in parallel
//	impl=watermill        watermill-kafka Subscriber (Sarama consumer group), avro.Unmarshal of the payload, Ack
func BenchmarkConsume(b *testing.B) {
	e := startConsumeEnv(b)
	b.Run("impl=franz-go+hamba", func(b *testing.B) { e.run(b, e.raw) })
	b.Run("impl=franz-go+hamba+ce", func(b *testing.B) { e.run(b, e.rawCE(false)) })
	b.Run("impl=franz-go+hamba+ce-least", func(b *testing.B) { e.run(b, e.rawCE(true)) })
	b.Run("impl=evbus", func(b *testing.B) { e.run(b, e.evbus) })
	b.Run("impl=watermill", func(b *testing.B) { e.run(b, e.watermill) })
}

func (e *consumeEnv) run(b *testing.B, consume func(b *testing.B, group string) pass) {
	var (
		cpu, steady, join time.Duration
		ms0, ms1          runtime.MemStats
		mallocs, bytes    uint64
	)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.ReadMemStats(&ms0)
		cpu0 := cputime.Process()
		p := consume(b, fmt.Sprintf("bench-%d", e.groups.Add(1)))
		b.StopTimer()
		cpu += cputime.Process() - cpu0
		runtime.ReadMemStats(&ms1)
		mallocs += ms1.Mallocs - ms0.Mallocs
		bytes += ms1.TotalAlloc - ms0.TotalAlloc
		p.close()
		if p.sum != e.sum {
			b.Fatalf("checksum %d, want %d: records lost, repeated or misdecoded", p.sum, e.sum)
		}
		steady += p.last.Sub(p.first)
		join += p.first.Sub(p.start)
		b.StartTimer()
	}
	b.StopTimer()
	records := float64(b.N * consumeRecords)
	b.ReportMetric(records/steady.Seconds(), "records/s")
	b.ReportMetric(float64(join.Milliseconds())/float64(b.N), "join-ms")
	b.ReportMetric(float64(cpu.Nanoseconds())/records, "cpu-ns/record")
	b.ReportMetric(float64(mallocs)/records, "allocs/record")
	b.ReportMetric(float64(bytes)/records, "B/record")
}

// handWritten runs a hand-written consumer: franz-go's group consumer
// with opts, polling on the benchmark's goroutine, each called per record
// and returning the event it handled, until every record was handled.
func (e *consumeEnv) handWritten(b *testing.B, group string, opts []kgo.Opt, each func(ctx context.Context, cl *kgo.Client, r *kgo.Record) *benchOrder) pass {
	p := pass{start: time.Now()}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(consumeTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	p.close = cl.Close
	ctx, cancel := context.WithTimeout(context.Background(), consumeTimeout)
	defer cancel()
	n := 0
	for n < consumeRecords {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("handled %d of %d records in %v", n, consumeRecords, consumeTimeout)
		}
		if err := fs.Err0(); err != nil {
			b.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			ev := each(ctx, cl, r)
			if n == 0 {
				p.first = time.Now()
			}
			p.sum += ev.Cents
			n++
		})
		cl.AllowRebalance()
	}
	p.last = time.Now()
	return p
}

// raw is the bare hand-written consumer: it decodes each record.
func (e *consumeEnv) raw(b *testing.B, group string) pass {
	return e.handWritten(b, group, nil, func(_ context.Context, _ *kgo.Client, r *kgo.Record) *benchOrder {
		var ev benchOrder
		if err := handDecode(e.schemaID, r.Value, &ev); err != nil {
			b.Fatal(err)
		}
		return &ev
	})
}

// ceMeta is what a hand-rolled consumer hands its handlers besides the
// event: the CloudEvents attributes and the record's place.
type ceMeta struct {
	ID, Source, Type, CorrelationID, CausationID string
	Time                                         time.Time
	Key                                          []byte
	Partition                                    int32
	Offset                                       int64
}

// rawCE is raw plus the work the wire contract asks of any consumer,
// written the plain way a service would: the handler is found by
// ce_type, gets a new *T and the record's metadata (strings copied,
// ce_time parsed), and offsets are committed only once their records were
// handled (AutoCommitMarks), like evbus's. With least, it does less than
// the contract asks: the strings alias the header bytes and ce_time is
// left unparsed.
func (e *consumeEnv) rawCE(least bool) func(b *testing.B, group string) pass {
	text := func(v []byte) string {
		if least {
			return unsafe.String(unsafe.SliceData(v), len(v))
		}
		return string(v)
	}
	handlers := map[string]func(context.Context, *benchOrder, *ceMeta) error{
		consumeOrder.Descriptor().Name(): func(context.Context, *benchOrder, *ceMeta) error { return nil },
	}
	return func(b *testing.B, group string) pass {
		return e.handWritten(b, group, []kgo.Opt{kgo.AutoCommitMarks(), kgo.BlockRebalanceOnPoll()},
			func(ctx context.Context, cl *kgo.Client, r *kgo.Record) *benchOrder {
				m := ceMeta{Key: r.Key, Partition: r.Partition, Offset: r.Offset}
				for _, h := range r.Headers {
					switch h.Key {
					case wire.HeaderID:
						m.ID = text(h.Value)
					case wire.HeaderSource:
						m.Source = text(h.Value)
					case wire.HeaderType:
						m.Type = text(h.Value)
					case wire.HeaderTime:
						if least {
							continue
						}
						t, err := time.Parse(time.RFC3339Nano, string(h.Value))
						if err != nil {
							b.Fatal(err)
						}
						m.Time = t
					case wire.HeaderCorrelationID:
						m.CorrelationID = text(h.Value)
					case wire.HeaderCausationID:
						m.CausationID = text(h.Value)
					}
				}
				handle, ok := handlers[m.Type]
				if !ok {
					b.Fatalf("no handler for %q", m.Type)
				}
				ev := new(benchOrder)
				if err := handDecode(e.schemaID, r.Value, ev); err != nil {
					b.Fatal(err)
				}
				if err := handle(ctx, ev, &m); err != nil {
					b.Fatal(err)
				}
				cl.MarkCommitRecords(r)
				return ev
			})
	}
}

// evbus is the SDK's consumer with a handler that only counts.
func (e *consumeEnv) evbus(b *testing.B, group string) pass {
	p := pass{start: time.Now()}
	c, err := consumer.New(group, e.reg,
		consumer.Kafka(kgo.SeedBrokers(e.brokers...)),
		consumer.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	t := newTally(consumeRecords)
	consumer.Handle(c, consumeOrder, func(_ context.Context, ev *benchOrder, _ bus.Meta) error {
		t.add(ev.Cents)
		return nil
	})
	ctx := context.Background()
	p.close = runUntil(b, t, func() error { return c.Run(ctx) }, func() error { return c.Close(ctx) })
	p.last = time.Now()
	p.first, p.sum = time.Unix(0, t.first.Load()), t.sum.Load()
	return p
}

// watermill is Watermill's Kafka subscriber in a consumer group, reading
// from the oldest offset, with the messages taken from its channel.
func (e *consumeEnv) watermill(b *testing.B, group string) pass {
	p := pass{start: time.Now()}
	sub := e.watermillSubscriber(b, group)
	p.close = func() {
		if err := sub.Close(); err != nil {
			b.Error(err)
		}
	}
	msgs, err := sub.Subscribe(context.Background(), consumeTopic)
	if err != nil {
		b.Fatal(err)
	}
	timeout := time.After(consumeTimeout)
	for n := 0; n < consumeRecords; n++ {
		var m *message.Message
		select {
		case m = <-msgs:
		case <-timeout:
			b.Fatalf("handled %d of %d records in %v", n, consumeRecords, consumeTimeout)
		}
		if m == nil {
			b.Fatalf("subscriber closed after %d messages", n)
		}
		var ev benchOrder
		if err := handDecode(e.schemaID, m.Payload, &ev); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			p.first = time.Now()
		}
		p.sum += ev.Cents
		m.Ack()
	}
	p.last = time.Now()
	return p
}
