package consumer_test

import (
	"context"
	"log/slog"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// OrderRenamed is Order after its Go type was renamed: the inferred
// record name, and so ce_type, changed with it.
type OrderRenamed struct {
	OrderID string `avro:"order_id"`
	Seq     int64  `avro:"seq"`
	Note    string `avro:"note"`
}

var orderRenamed = bus.Event[OrderRenamed]("orders", func(o *OrderRenamed) string { return o.OrderID }, bus.Namespace("com.example.test"))

// A group that does not know a type skips its records, logs a WARN once
// per type and partition assignment naming the types it knows, and counts
// the skips by type in Stats.
func TestUnknownTypeWarnsOncePerAssignment(t *testing.T) {
	e := start(t)
	e.topics(1, "orders", wire.DeadLetterTopic("orders", "billing"))
	renamed, err := bus.NewPublisher(t.Context(), e.cl, e.reg, bus.Source("/test"), bus.Types(orderRenamed))
	if err != nil {
		t.Fatal(err)
	}
	publishRenamed := func(n int) {
		t.Helper()
		for range n {
			if err := renamed.Publish(t.Context(), OrderRenamed{OrderID: "k"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publishRenamed(3)
	e.publish(&Shipped{OrderID: "k"}, &Shipped{OrderID: "k"}, &Order{OrderID: "k", Note: "marker-1"})

	// consume runs a billing consumer until it handled the marker, and
	// returns its logs and stats.
	consume := func(marker string) (string, consumer.Stats) {
		t.Helper()
		var logs logBuffer
		var handled atomic.Bool
		c := e.consumer("billing", consumer.Logger(slog.New(slog.NewTextHandler(&logs, nil))))
		consumer.Handle(c, orderPlaced, func(_ context.Context, o *Order, _ bus.Meta) error {
			if o.Note == marker {
				handled.Store(true)
			}
			return nil
		})
		errc := make(chan error, 1)
		go func() { errc <- c.Run(context.Background()) }()
		waitFor(t, "the marker handled", handled.Load)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return logs.String(), c.Stats()
	}
	warnings := func(logs, typ string) int {
		n := 0
		for l := range strings.Lines(logs) {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "type="+typ+" ") {
				n++
				if !strings.Contains(l, "known_types=com.example.test.Order\n") || !strings.Contains(l, "bus.Schema") {
					t.Errorf("the warning does not name the known types and the fix: %s", l)
				}
			}
		}
		return n
	}

	logs, st := consume("marker-1")
	if a, b := warnings(logs, "com.example.test.OrderRenamed"), warnings(logs, "com.example.test.Shipped"); a != 1 || b != 1 {
		t.Errorf("%d warnings about OrderRenamed, %d about Shipped, want 1 each; logs:\n%s", a, b, logs)
	}
	want := map[string]uint64{"com.example.test.OrderRenamed": 3, "com.example.test.Shipped": 2}
	if st.Skipped != 5 || !maps.Equal(st.SkippedTypes, want) {
		t.Errorf("Skipped %d, SkippedTypes %v; want 5, %v", st.Skipped, st.SkippedTypes, want)
	}

	// A new assignment warns again.
	publishRenamed(2)
	e.publish(&Order{OrderID: "k", Note: "marker-2"})
	logs, st = consume("marker-2")
	if n := warnings(logs, "com.example.test.OrderRenamed"); n != 1 {
		t.Errorf("after a new assignment, %d warnings about OrderRenamed, want 1; logs:\n%s", n, logs)
	}
	if st.SkippedTypes["com.example.test.OrderRenamed"] != 2 {
		t.Errorf("SkippedTypes %v, want OrderRenamed 2", st.SkippedTypes)
	}
}
