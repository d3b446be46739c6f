package schema_test

import (
	"context"
	"testing"

	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
)

func TestCacheHitsAndMissesAreMetrics(t *testing.T) {
	ctx := context.Background()
	o := testkit.NewOTel(t)
	reg := newRegistry(t, startRegistry(t), schema.Telemetry(o.Telemetry))
	v1 := mustParse(t, placedV1)
	w, err := reg.Writer(ctx, "orders", v1) // miss: registers
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Writer(ctx, "orders", v1); err != nil { // hit
		t.Fatal(err)
	}
	if _, err := reg.SchemaByID(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	hits, misses := reg.CacheStats()
	got := testkit.Counts(t, o.Reader)
	if hits < 1 || misses < 1 || got["evbus.registry.lookups/hit"] != int64(hits) || got["evbus.registry.lookups/miss"] != int64(misses) {
		t.Fatalf("cache stats hits=%d misses=%d, metric %v", hits, misses, got)
	}
}
