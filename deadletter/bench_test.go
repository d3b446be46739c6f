package deadletter_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/wire"
)

// BenchmarkGroups: what evbus dlt groups does over 100,000 dead letters
// of one group (3 partitions, 5 causes whose texts differ by ids, numbers,
// quoted values and addresses), next to a bare franz-go read of the same
// records. ms-first-output is the time to the first record read (when
// dlt groups shows its progress on a terminal; the table needs every
// record), ms-total the time to the groups (or to the last record read).
//
// manager-new is a Manager made and grouped from scratch; manager-groups
// is Groups on a Manager that already follows the group (what a console
// page costs).
//
//	go test ./deadletter -run '^$' -bench Groups -benchtime 3x -count 3
func BenchmarkGroups(b *testing.B) {
	brokers := benchTopic(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()

	b.Run("groups", func(b *testing.B) {
		var first, total time.Duration
		for b.Loop() {
			start := time.Now()
			var seen time.Duration
			gs, err := deadletter.Groups(ctx, cl, benchGroup, deadletter.Progress(func(read, _ int) {
				if read == 1 {
					seen = time.Since(start)
				}
			}))
			if err != nil {
				b.Fatal(err)
			}
			first, total = first+seen, total+time.Since(start)
			if n := count(gs); len(gs) != len(testkit.DeadLetterCauses) || n != benchRecords {
				b.Fatalf("%d groups of %d dead letters, want %d of %d", len(gs), n, len(testkit.DeadLetterCauses), benchRecords)
			}
		}
		report(b, first, total)
	})

	// A Manager read from scratch: the dead letters, their replay and
	// ledger topics (here none).
	b.Run("manager-new", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			m, err := deadletter.NewManager(ctx, cl, benchGroup)
			if err != nil {
				b.Fatal(err)
			}
			gs, err := m.Groups(ctx)
			if err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			m.Close()
			if len(gs) != len(testkit.DeadLetterCauses) {
				b.Fatalf("%d groups", len(gs))
			}
		}
		report(b, 0, total)
	})

	// A Manager that follows the group already, as a console holds one:
	// each Groups reads what was written since (nothing) and groups.
	b.Run("manager-groups", func(b *testing.B) {
		m, err := deadletter.NewManager(ctx, cl, benchGroup)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Close()
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			gs, err := m.Groups(ctx)
			if err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			if len(gs) != len(testkit.DeadLetterCauses) {
				b.Fatalf("%d groups", len(gs))
			}
		}
		report(b, 0, total)
	})

	// The hand-written floor: the same partitions read with franz-go,
	// nothing parsed or grouped.
	b.Run("franz-go-read", func(b *testing.B) {
		var first, total time.Duration
		for b.Loop() {
			start := time.Now()
			rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(wire.DeadLetterTopic("orders", benchGroup)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			read := 0
			for read < benchRecords {
				fs := rd.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					b.Fatal(err)
				}
				if read == 0 && fs.NumRecords() > 0 {
					first += time.Since(start)
				}
				read += fs.NumRecords()
			}
			rd.Close()
			total += time.Since(start)
		}
		report(b, first, total)
	})
}

func report(b *testing.B, first, total time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(first.Milliseconds())/n, "ms-first-output")
	b.ReportMetric(float64(total.Milliseconds())/n, "ms-total")
	b.ReportMetric(benchRecords*n/total.Seconds(), "records/s")
	b.ReportMetric(0, "ns/op") // ms-total says it
}

func count(gs []deadletter.Group) int {
	n := 0
	for _, g := range gs {
		n += g.Count
	}
	return n
}

const (
	benchRecords = 100_000
	benchGroup   = "billing"
)

var (
	benchOnce    sync.Once
	benchBrokers []string
	benchErr     error
)

// benchTopic starts a kfake cluster, once per process, holding
// benchRecords dead letters of benchGroup, and returns its brokers.
func benchTopic(b *testing.B) []string {
	benchOnce.Do(func() { benchBrokers, benchErr = fillBenchTopic() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchBrokers
}

func fillBenchTopic() ([]string, error) {
	topic := wire.DeadLetterTopic("orders", benchGroup)
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders", topic))
	if err != nil {
		return nil, err
	}
	// The cluster lives as long as the process: the benchmarks share it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.ListenAddrs()...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return kafka.ListenAddrs(), testkit.FillDeadLetters(context.Background(), cl, benchGroup, benchRecords)
}
