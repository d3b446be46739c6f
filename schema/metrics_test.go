package schema_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/tracing"
)

func TestCacheHitsAndMissesAreMetrics(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	tel, err := tracing.New(tracing.MeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, startRegistry(t), schema.Telemetry(tel))
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
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "evbus.registry.lookups" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(tracing.CacheKey)
				got[v.AsString()] += dp.Value
			}
		}
	}
	if hits < 1 || misses < 1 || got["hit"] != int64(hits) || got["miss"] != int64(misses) {
		t.Fatalf("cache stats hits=%d misses=%d, metric %v", hits, misses, got)
	}
}
