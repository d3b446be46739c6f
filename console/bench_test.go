package console_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

const benchLetters = 100_000

// benchCauses are the error texts of the benchmark's 5 causes; %d is a
// record's number.
var benchCauses = []string{
	`order o-%d: customer "c%d" not found`,
	`payment %08x-1b2c-4d5e-8f90-a1b2c3d4e5f6 declined after %d attempts`,
	`stock service at 10.0.%d.%d:8080 timed out`,
	`refund %d of order o-%d exceeds the payment`,
	`invoice %d: tax rate %d.5 unknown`,
}

// BenchmarkPages: the console's group page and a fingerprint's page over
// 100,000 dead letters of one group (3 partitions, 5 causes), after the
// first load (the group's Manager is then kept and follows), next to the
// Manager call each page makes (Groups; List of a fingerprint), timed
// alone on a Manager of the benchmark's: what the page adds is the rest.
//
//	go test ./console -run '^$' -bench Pages -benchtime 5x -count 3
func BenchmarkPages(b *testing.B) {
	stack := evbustest.Start(b)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	reg, err := schema.New(stack.RegistryURL())
	if err != nil {
		b.Fatal(err)
	}
	fillDeadLetters(b, cl)
	h, err := console.New(console.Config{Client: cl, Registry: reg, Tokens: []console.Token{{Role: console.Viewer, Secret: viewerSecret}}})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	m, err := deadletter.NewManager(context.Background(), cl, "billing")
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	gs, err := m.Groups(context.Background())
	if err != nil || len(gs) != len(benchCauses) {
		b.Fatalf("%d fingerprints (%v), want %d", len(gs), err, len(benchCauses))
	}
	fp := gs[0].Fingerprint.ID

	get := func(b *testing.B, path string) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+viewerSecret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %.300s", path, rec.Code, rec.Body.String())
		}
	}
	first := time.Now()
	get(b, "/groups/billing")
	b.Logf("first load of the group page (reads the 100,000 dead letters): %v", time.Since(first).Round(time.Millisecond))

	b.Run("group-page", func(b *testing.B) {
		for b.Loop() {
			get(b, "/groups/billing")
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	})
	b.Run("manager-groups", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Groups(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	})
	b.Run("fingerprint-page", func(b *testing.B) {
		for b.Loop() {
			get(b, "/groups/billing/fingerprints/"+fp)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	})
	b.Run("manager-list", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.List(context.Background(), deadletter.Selection{Fingerprint: fp}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
	})
}

// fillDeadLetters writes benchLetters dead letters of group billing.
func fillDeadLetters(b *testing.B, cl *kgo.Client) {
	if err := bus.CreateTopics(context.Background(), kadm.NewClient(cl), bus.TopicSpec{Name: "orders", Partitions: 3, DeadLetterGroups: []string{"billing"}}); err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
	)
	for i := range benchLetters {
		cause := i % len(benchCauses)
		src := &kgo.Record{Key: fmt.Appendf(nil, "o-%d", i), Value: make([]byte, 200),
			Headers: []kgo.RecordHeader{{Key: wire.HeaderType, Value: fmt.Appendf(nil, "com.example.Event%d", cause%3)}}}
		dl := wire.DeadLetterRecord(src, wire.Origin{Topic: "orders", Partition: int32(i % 3), Offset: int64(i), Timestamp: at}, "billing",
			wire.KindPermanent, 1, fmt.Errorf(benchCauses[cause], i, i%251), at.Add(time.Duration(i)*time.Millisecond))
		dl.Partition = int32(i % 3)
		wg.Add(1)
		cl.Produce(context.Background(), dl, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				errs = errors.Join(errs, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if errs != nil {
		b.Fatal(errs)
	}
}
