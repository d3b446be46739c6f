package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/console"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
)

const benchLetters = 100_000

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
	if err != nil || len(gs) != len(testkit.DeadLetterCauses) {
		b.Fatalf("%d fingerprints (%v), want %d", len(gs), err, len(testkit.DeadLetterCauses))
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
	if err := testkit.FillDeadLetters(context.Background(), cl, "billing", benchLetters); err != nil {
		b.Fatal(err)
	}
}
