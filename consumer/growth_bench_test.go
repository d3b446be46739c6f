package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/sqldb"
)

// The cost of idempotent consumption as a service's processed table grows
// over months. Figures are for people to read; nothing is asserted. Run:
//
//	go test ./consumer -run '^$' -bench ProcessedGrowth -benchtime 3x -timeout 90m
//	go test ./consumer -run '^$' -bench CleanupPause -benchtime 1x -timeout 60m

// grownDatabase returns a PostgreSQL database whose processed table holds
// rows rows of earlier messages, processed at before and later, one
// millisecond apart: UUIDv7-like ids in time order, over eight other
// groups, as a table shared by a service's groups holds them. It is
// vacuumed and analysed, as autovacuum leaves a table at rest.
func grownDatabase(b *testing.B, rows int, before time.Duration) string {
	b.Helper()
	url := evbustest.PostgresDatabase(b)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	p, err := consumer.NewProcessed(sqldb.Pgx(pool))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	const step = 1_000_000
	for from := 0; from < rows; from += step {
		if _, err := pool.Exec(ctx, `INSERT INTO `+p.Table()+` (consumer_group, message_id, processed_at)
			SELECT 'earlier-' || (i % 8),
			       lpad(to_hex(1700000000000 + i), 12, '0') || '-7' || substr(md5(i::text), 1, 19),
			       now() - $3::interval + i * interval '1 millisecond'
			FROM generate_series($1::bigint, $2::bigint) AS i`, from, min(from+step, rows)-1, before.String()); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+p.Table()); err != nil {
		b.Fatal(err)
	}
	b.Logf("processed table filled with %d rows in %v", rows, time.Since(start).Round(time.Second))
	return url
}

// idempotentRound consumes the events of BenchmarkIdempotent once with a
// new group on the database at url: HandleBatchTx, Batch(500), the
// handler's rows in one statement (BenchmarkIdempotent's batch-handler).
func idempotentRound(b *testing.B, url, group string) *span {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS orders"); err != nil {
		b.Fatal(err)
	}
	db := sqldb.Pgx(pool)
	return benchTx(b, group, db, db.In, []consumer.HandlerOption{consumer.Batch(500)}, true, true)
}

// BenchmarkProcessedGrowth: idempotent consumption (PostgreSQL,
// HandleBatchTx) with the processed table holding 0, 1 million and 10
// million rows of earlier messages. One op is a round of the three sizes
// in turn; it reports the median over the rounds of the records/s of each
// size and of the ratios of the grown tables to the empty one, each taken
// within its round.
func BenchmarkProcessedGrowth(b *testing.B) {
	idemBenchSetup(b)
	sizes := []int{0, 1_000_000, 10_000_000}
	urls := make([]string, len(sizes))
	for i, rows := range sizes {
		urls[i] = grownDatabase(b, rows, time.Hour)
	}
	var rounds [][]float64 // records/s of each size, per round
	for b.Loop() {
		rates := make([]float64, len(sizes))
		for i := range sizes {
			s := idempotentRound(b, urls[i], fmt.Sprintf("bench-%d", bench.groups.Add(1)))
			wall, _ := s.elapsed()
			rates[i] = float64(s.want) / wall.Seconds()
		}
		b.Logf("round %d: records/s %.0f; x-empty %.3f, %.3f", len(rounds)+1, rates, rates[1]/rates[0], rates[2]/rates[0])
		rounds = append(rounds, rates)
	}
	// The medians of the rounds, each ratio taken within its round.
	median := func(f func(r []float64) float64) float64 {
		v := make([]float64, len(rounds))
		for i, r := range rounds {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for i, rows := range sizes {
		b.ReportMetric(median(func(r []float64) float64 { return r[i] }), fmt.Sprintf("records/s@%d", rows))
		if i > 0 {
			b.ReportMetric(median(func(r []float64) float64 { return r[i] / r[0] }), fmt.Sprintf("x-empty@%d", rows))
		}
	}
}

// BenchmarkCleanupPause: Processed.Cleanup of 10 million expired rows
// while a consumer handles, one new group after another until Cleanup
// returns. It reports how long Cleanup took and the longest gap between
// two handled records while it ran (pause-ms), beside the longest gap of
// one round without Cleanup (quiet-pause-ms).
func BenchmarkCleanupPause(b *testing.B) {
	idemBenchSetup(b)
	const rows = 10_000_000
	for b.Loop() {
		url := grownDatabase(b, rows, 48*time.Hour)
		quiet := idempotentRound(b, url, fmt.Sprintf("bench-%d", bench.groups.Add(1)))
		pool, err := pgxpool.New(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		p, err := consumer.NewProcessed(sqldb.Pgx(pool))
		if err != nil {
			b.Fatal(err)
		}
		type result struct {
			n   int64
			err error
			d   time.Duration
		}
		done := make(chan result, 1)
		go func() {
			start := time.Now()
			n, err := p.Cleanup(context.Background(), 24*time.Hour)
			done <- result{n, err, time.Since(start)}
		}()
		var pause time.Duration
		var rounds int
		var res result
		for finished := false; !finished; {
			s := idempotentRound(b, url, fmt.Sprintf("bench-%d", bench.groups.Add(1)))
			pause = max(pause, s.longestGap())
			rounds++
			select {
			case res = <-done:
				finished = true
			default:
			}
		}
		pool.Close()
		if res.err != nil {
			b.Fatal(res.err)
		}
		if res.n < rows {
			b.Fatalf("Cleanup deleted %d rows, want %d", res.n, rows)
		}
		b.ReportMetric(res.d.Seconds(), "cleanup-s")
		b.ReportMetric(float64(res.n)/res.d.Seconds(), "deleted/s")
		b.ReportMetric(float64(pause.Microseconds())/1000, "pause-ms")
		b.ReportMetric(float64(quiet.longestGap().Microseconds())/1000, "quiet-pause-ms")
		b.ReportMetric(float64(rounds), "rounds")
	}
}
