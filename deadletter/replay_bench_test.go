package deadletter_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/cputime"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
	"github.com/evbus/evbus/wire"
)

const (
	// replayLetters is how many dead letters of one cause one op
	// replays.
	replayLetters = 100_000
	// replayHandledBefore of them had their event handled already (a
	// delivery that dead-lettered a copy, say): the replay must not
	// repeat their effect.
	replayHandledBefore = 1_000
)

var replayOrder = bus.Event[Order]("orders", func(o *Order) string { return o.OrderID }, bus.Namespace("com.example.replay"))

// BenchmarkReplay: Manager.Replay sends replayLetters dead letters of one
// fingerprint back to group billing, whose consumer handles them
// idempotently: consumer.HandleBatchTx on SQLite (file, WAL,
// synchronous=FULL), the processed-message rows and the effect rows (one
// per event) in one transaction per batch of up to 500. The events of
// replayHandledBefore of them were handled before the replay, so their
// replays are duplicates to skip. Each op starts a new stack.
//
// Variants, in turn within one process: evbus (the Manager: ledger
// entries, then replay records; the consumer records each outcome before
// committing) and bare, the hand-written floor: the same dead letters
// read, their replay records built and produced with franz-go in batches
// of 500, without dlt-replay-of (so the consumer writes no outcome) and
// without a ledger. The ratio of the two is what the ledger and its
// resumability cost.
//
//	records/s   replayLetters / (start of the replay -> last effect committed)
//	replay-s    the replay call alone: reading the group, (the ledger
//	            entries,) the replay records
//	cpu-µs/record  CPU time of the whole process (replayer, consumer,
//	            SQLite, the in-process broker) in that window, per record:
//	            what a loaded machine changes least
//
// The op fails unless every event has exactly one effect row, and, for
// evbus, every dead letter is resolved in the ledger.
//
//	go test ./deadletter -run '^$' -bench BenchmarkReplay -benchtime 1x -count 3 -timeout 30m
func BenchmarkReplay(b *testing.B) {
	b.Run("evbus", func(b *testing.B) {
		benchReplay(b, func(r *replayBench) int {
			rep, err := r.m.Replay(context.Background(), deadletter.Selection{Fingerprint: r.fingerprint}, deadletter.Actor{Name: "bench", Reason: "stock service back"})
			if err != nil {
				b.Fatal(err)
			}
			return rep.Done
		}, (*replayBench).checkResolved)
	})
	b.Run("bare", func(b *testing.B) {
		benchReplay(b, func(r *replayBench) int {
			ctx := context.Background()
			ds, _, err := deadletter.Read(ctx, r.cl, "billing")
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]*kgo.Record, 0, 500)
			for i, d := range ds {
				rec, err := wire.ReplayRecord(d, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				rec.Headers = slices.DeleteFunc(rec.Headers, func(h kgo.RecordHeader) bool { return h.Key == wire.HeaderReplayOf })
				batch = append(batch, rec)
				if len(batch) == cap(batch) || i == len(ds)-1 {
					if err := r.cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			return len(ds)
		}, nil)
	})
}

// benchReplay times replay, which returns how many records it replayed,
// through the consumer's last effect, then checks the effects and, when
// check is not nil, what check checks.
func benchReplay(b *testing.B, replay func(*replayBench) int, check func(*replayBench, *testing.B)) {
	var total, call, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		r := startReplayBench(b)
		b.StartTimer()
		start, cpuStart := time.Now(), cputime.Process()
		if n := replay(r); n != replayLetters {
			b.Fatalf("replayed %d, want %d", n, replayLetters)
		}
		call += time.Since(start)
		r.waitEffects(b, replayLetters)
		total += time.Since(start)
		cpu += cputime.Process() - cpuStart
		b.StopTimer()
		r.stop() // the consumer, with what it had in flight
		r.checkOnce(b)
		if check != nil {
			check(r, b)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(replayLetters)*float64(b.N)/total.Seconds(), "records/s")
	b.ReportMetric(call.Seconds()/float64(b.N), "replay-s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(replayLetters*b.N), "cpu-µs/record")
	b.ReportMetric(0, "ns/op")
}

type replayBench struct {
	cl          *kgo.Client
	m           *deadletter.Manager
	db          *sql.DB
	fingerprint string
	stop        func()
}

func startReplayBench(b *testing.B) *replayBench {
	ctx := context.Background()
	stack := evbustest.Start(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	if err := bus.CreateTopics(ctx, kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 4, DeadLetterGroups: []string{"billing"}}); err != nil {
		b.Fatal(err)
	}
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	enc, err := bus.NewEncoder(ctx, reg, bus.Source("/shop"), bus.Types(replayOrder))
	if err != nil {
		b.Fatal(err)
	}
	// The dead letters: the events, as a consumer of billing that gave
	// up on them would have written them.
	failedAt := time.Now().Add(-time.Hour)
	var before []*kgo.Record
	recs := make([]*kgo.Record, 0, 10_000)
	flush := func() {
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		recs = recs[:0]
	}
	for i := range replayLetters {
		rec, err := enc.Record(ctx, &Order{OrderID: fmt.Sprintf("o-%d", i), Customer: "c"})
		if err != nil {
			b.Fatal(err)
		}
		if i < replayHandledBefore {
			before = append(before, rec)
		}
		recs = append(recs, wire.DeadLetterRecord(rec, wire.Origin{Topic: "orders", Offset: int64(i), Timestamp: failedAt}, "billing",
			wire.KindRetriesExhausted, 3, fmt.Errorf("stock service at 10.0.0.7:443 timed out after 30s (order o-%d)", i), failedAt))
		if len(recs) == cap(recs) {
			flush()
		}
	}
	flush()

	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "billing.db"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE effects (order_id TEXT NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	p, err := consumer.NewProcessed(sqldb.DB[*sql.Tx](db))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	c, err := consumer.New("billing", reg, consumer.Kafka(kgo.SeedBrokers(stack.Brokers()...)), consumer.CommitInterval(100*time.Millisecond),
		consumer.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	consumer.HandleBatchTx(c, replayOrder, p, func(ctx context.Context, tx *sql.Tx, evs []*Order, _ []bus.Meta) error {
		for _, o := range evs {
			if _, err := tx.ExecContext(ctx, "INSERT INTO effects VALUES (?)", o.OrderID); err != nil {
				return err
			}
		}
		return nil
	})
	run := make(chan error, 1)
	go func() { run <- c.Run(context.Background()) }()
	r := &replayBench{cl: cl, db: db.Pool(), stop: func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Close(cctx); err != nil {
			b.Error(err)
		}
		if err := <-run; err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
	}}
	b.Cleanup(func() { db.Pool().Close() })
	// Some events were handled before: their effects are there.
	if err := cl.ProduceSync(ctx, before...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	r.waitEffects(b, replayHandledBefore)

	r.m, err = deadletter.NewManager(ctx, cl, "billing")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.m.Close)
	gs, err := r.m.Groups(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Count != replayLetters {
		b.Fatalf("%d causes, the first of %d dead letters; want 1 of %d", len(gs), gs[0].Count, replayLetters)
	}
	r.fingerprint = gs[0].Fingerprint.ID
	return r
}

// waitEffects waits until the effects table holds n distinct events.
func (r *replayBench) waitEffects(b *testing.B, n int) {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var got int
		if err := r.db.QueryRow("SELECT COUNT(DISTINCT order_id) FROM effects").Scan(&got); err != nil {
			b.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events handled after 10 minutes", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOnce fails b unless every event has exactly one effect.
func (r *replayBench) checkOnce(b *testing.B) {
	var rows, distinct int
	if err := r.db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM effects").Scan(&rows, &distinct); err != nil {
		b.Fatal(err)
	}
	if distinct != replayLetters || rows != distinct {
		b.Fatalf("%d effect rows for %d events, want exactly one for each of %d: %d double effects", rows, distinct, replayLetters, rows-distinct)
	}
}

// checkResolved fails b unless the consumer recorded every replay's
// outcome: each dead letter resolved in the ledger.
func (r *replayBench) checkResolved(b *testing.B) {
	gs, err := r.m.Groups(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(gs) != 1 || gs[0].States[wire.LedgerResolved] != replayLetters {
		b.Fatalf("states after the replay: %v, want %d resolved", gs[0].States, replayLetters)
	}
}
