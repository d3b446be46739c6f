package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

// TestRetryTopics: a handler failing twice then succeeding goes through
// both retry topics while its partition goes on, and one that always
// fails ends in the dead-letter topic with the original coordinates.
func TestRetryTopics(t *testing.T) {
	e := start(t)
	const group = "shipping"
	retry1, retry2 := wire.RetryTopic("orders", group, 1), wire.RetryTopic("orders", group, 2)
	dlt := wire.DeadLetterTopic("orders", group)
	e.topics(3, "orders", retry1, retry2, dlt)

	type call struct {
		attempt int
		m       bus.Meta
		late    bool // ran at or after the due time its record carried
	}
	var (
		mu    sync.Mutex
		runs  = map[string][]call{}
		later = make(chan struct{})
	)
	c := e.consumer(group)
	consumer.Handle(c, orderPlaced, func(ctx context.Context, ev *Order, m bus.Meta) error {
		now := time.Now()
		r := call{attempt: consumer.Attempt(ctx), m: m, late: true}
		for _, h := range m.Headers {
			if h.Key == wire.HeaderRetryDue {
				due, err := time.Parse(time.RFC3339Nano, string(h.Value))
				r.late = err == nil && !now.Before(due)
			}
		}
		mu.Lock()
		runs[ev.Note] = append(runs[ev.Note], r)
		mu.Unlock()
		switch ev.Note {
		case "flaky":
			if r.attempt < 3 {
				return errors.New("not yet")
			}
			// The record after it in the partition must have been
			// handled by now: its retries did not stall the partition.
			select {
			case <-later:
			case <-time.After(guard):
				return consumer.Permanent(errors.New("the later record was never handled"))
			}
		case "doomed":
			return errors.New("doomed to fail")
		case "later":
			close(later)
		}
		return nil
	}, consumer.RetryTopics(20*time.Millisecond, 30*time.Millisecond))
	if got := c.Topics(); len(got) != 5 || got[0] != "orders" || got[1] != dlt || got[2] != wire.ReplayTopic("orders", c.Group()) || got[3] != retry1 || got[4] != retry2 {
		t.Errorf("Topics() = %v", got)
	}
	e.publish(
		&Order{OrderID: "o-1", Seq: 0, Note: "flaky"},
		&Order{OrderID: "o-1", Seq: 1, Note: "doomed"},
		&Order{OrderID: "o-1", Seq: 2, Note: "later"},
	)
	errc := run(t, c)
	waitFor(t, "the dead letter", func() bool { return e.count(dlt) == 1 })
	waitFor(t, "flaky handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs["flaky"]) == 3
	})
	select {
	case err := <-errc:
		t.Fatalf("Run: %v", err)
	default:
	}

	origs := e.read("orders", 3)
	mu.Lock()
	for _, note := range []string{"flaky", "doomed"} {
		rs := runs[note]
		if len(rs) != 3 {
			t.Fatalf("%s ran %d times, want 3", note, len(rs))
		}
		orig := origs[0]
		if note == "doomed" {
			orig = origs[1]
		}
		for i, r := range rs {
			if r.attempt != i+1 {
				t.Errorf("%s run %d: Attempt %d", note, i+1, r.attempt)
			}
			if !r.late {
				t.Errorf("%s run %d ran before its record was due", note, i+1)
			}
			if r.m.Topic != "orders" || r.m.Partition != orig.Partition || r.m.Offset != orig.Offset {
				t.Errorf("%s run %d: meta names %s/%d@%d, want the original record", note, i+1, r.m.Topic, r.m.Partition, r.m.Offset)
			}
			if i > 0 {
				h := map[string]string{}
				for _, hh := range r.m.Headers {
					h[hh.Key] = string(hh.Value)
				}
				if h[wire.HeaderRetryAttempts] != strconv.Itoa(i) || h[wire.HeaderRetryOriginalTopic] != "orders" ||
					h[wire.HeaderRetryOriginalOffset] != strconv.FormatInt(orig.Offset, 10) || h[wire.HeaderRetryError] == "" {
					t.Errorf("%s run %d: retry headers %v", note, i+1, h)
				}
			}
		}
	}
	if len(runs["later"]) != 1 {
		t.Errorf("later ran %d times", len(runs["later"]))
	}
	mu.Unlock()

	d := e.read(dlt, 1)[0]
	checkDeadLetter(t, d, origs[1], group, wire.KindRetriesExhausted, 3, "doomed to fail")
	for _, h := range d.Headers {
		if wire.IsRetryHeader(h.Key) {
			t.Errorf("dead letter keeps retry header %s", h.Key)
		}
	}
	if n1, n2 := e.count(retry1), e.count(retry2); n1 != 2 || n2 != 2 {
		t.Errorf("retry topics hold %d and %d records, want 2 and 2", n1, n2)
	}
	st := c.Stats()
	if st.RetryTopic != 4 || st.Handled != 2 || st.Retried != 0 || st.DeadLettered[wire.KindRetriesExhausted] != 1 {
		t.Errorf("stats %+v", st)
	}
}
