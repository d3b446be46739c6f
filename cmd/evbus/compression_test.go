package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
)

// compressionOf reads the records of topic from offset on and returns
// their batches' compression codecs (0 none, 1 gzip, 2 snappy, 3 lz4,
// 4 zstd).
func compressionOf(t *testing.T, stack *devstack.Stack, topic string, from int64, n int) []uint8 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	var out []uint8
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: got %d records, want %d", topic, len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r.Attrs.CompressionType()) })
	}
	return out
}

// TestPublishCompression: evbus publish writes uncompressed records by
// default (franz-go's default, snappy, is not read by kafkajs), and what
// --compression or EVBUS_COMPRESSION names.
func TestPublishCompression(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "invoices", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	avsc := filepath.Join(t.TempDir(), "invoiced.avsc")
	if err := os.WriteFile(avsc, []byte(invoiceV1), 0o644); err != nil {
		t.Fatal(err)
	}
	// A long, repetitive memo: the batch shrinks under any codec, so the
	// client does not fall back to none (it compresses only what shrinks).
	line := fmt.Sprintf(`{"invoice_id":"i-1","total":5,"currency":"EUR","memo":%q}`+"\n", strings.Repeat("compressible ", 100))
	args := []string{"publish", "--topic", "invoices", "--schema", avsc, "--key-field", "invoice_id"}

	var offset int64
	for _, tc := range []struct {
		name  string
		env   map[string]string
		extra []string
		want  uint8
	}{
		{"default", nil, nil, 0},
		{"--compression gzip", nil, []string{"--compression", "gzip"}, 1},
		{"EVBUS_COMPRESSION=zstd", map[string]string{"EVBUS_COMPRESSION": "zstd"}, nil, 4},
	} {
		env := map[string]string{"EVBUS_BROKERS": strings.Join(stack.Brokers(), ","), "EVBUS_REGISTRY": stack.RegistryURL()}
		for k, v := range tc.env {
			env[k] = v
		}
		cliEnv(t, env, line, append(args, tc.extra...)...).ok(t, "publish "+tc.name)
		if got := compressionOf(t, stack, "invoices", offset, 1); got[0] != tc.want {
			t.Errorf("publish %s: compression %d, want %d", tc.name, got[0], tc.want)
		}
		offset++
	}

	r := cli(t, stack, line, append(args, "--compression", "brotli")...)
	if r.code != 2 || !strings.Contains(r.err, `--compression "brotli"`) || !strings.Contains(r.err, "gzip") {
		t.Errorf("--compression brotli: exit %d, stderr %q; want 2 naming the flag and the choices", r.code, r.err)
	}
}
