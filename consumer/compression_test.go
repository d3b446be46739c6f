package consumer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// TestDeadLetterCompression: dead-letter records are written uncompressed
// by default, which every stock client reads (franz-go's own default is
// snappy, which kafkajs cannot read), and with the codec Compression
// chooses.
func TestDeadLetterCompression(t *testing.T) {
	e := start(t)
	e.topics(1, "orders")
	e.publish(&Order{OrderID: "o-1", Note: strings.Repeat("a compressible note ", 50)})
	// A long, repetitive error: the batch shrinks under any codec, so the
	// client does not fall back to none (it compresses only what shrinks).
	fail := func(context.Context, *Order, bus.Meta) error {
		return consumer.Permanent(errors.New(strings.Repeat("refused ", 100)))
	}
	for _, tc := range []struct {
		group string
		opts  []consumer.Option
		want  uint8
	}{
		{"compress-default", nil, 0},
		{"compress-gzip", []consumer.Option{consumer.Compression(kgo.GzipCompression())}, 1},
		{"compress-lz4", []consumer.Option{consumer.Compression(kgo.Lz4Compression(), kgo.GzipCompression())}, 3},
	} {
		t.Run(tc.group, func(t *testing.T) {
			dlt := wire.DeadLetterTopic("orders", tc.group)
			e.topics(1, dlt)
			c := e.consumer(tc.group, tc.opts...)
			consumer.Handle(c, orderPlaced, fail)
			run(t, c)
			r := e.read(dlt, 1)[0]
			if got := r.Attrs.CompressionType(); got != tc.want {
				t.Errorf("dead-letter record compression %d, want %d", got, tc.want)
			}
		})
	}

	if _, err := consumer.New("g", e.reg, consumer.Compression()); err == nil || !strings.Contains(err.Error(), "Compression()") {
		t.Errorf("Compression() with no codec: New = %v, want an error naming the option", err)
	}
}
