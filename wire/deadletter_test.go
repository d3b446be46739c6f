package wire_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// A dead-letter record reads back as what was written, keeps the
// original headers and the replay count, and drops the dead-letter and
// retry headers of an earlier failure.
func TestDeadLetterRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 123e6, time.UTC)
	rec := &kgo.Record{Key: []byte("o-1"), Value: []byte{0, 0, 0, 0, 1}, Headers: []kgo.RecordHeader{
		{Key: wire.HeaderID, Value: []byte("id-1")},
		{Key: wire.HeaderType, Value: []byte("com.example.T")},
		{Key: wire.HeaderReplayCount, Value: []byte("2")},
		{Key: wire.HeaderDLTError, Value: []byte("an earlier failure")},
		{Key: wire.HeaderRetryAttempts, Value: []byte("3")},
		{Key: "x-own", Value: []byte("kept")},
	}}
	o := wire.Origin{Topic: "orders", Partition: 3, Offset: 41, Timestamp: at}
	dl := wire.DeadLetterRecord(rec, o, "billing", wire.KindRetriesExhausted, 4, errors.New(strings.Repeat("é", wire.MaxErrorLen)), at.Add(time.Second))
	if dl.Topic != "orders.billing.dlt" || string(dl.Key) != "o-1" || len(dl.Value) != 5 {
		t.Fatalf("dead letter to %s, key %q", dl.Topic, dl.Key)
	}
	seen := map[string]int{}
	for _, h := range dl.Headers {
		seen[h.Key]++
	}
	if seen[wire.HeaderRetryAttempts] != 0 || seen[wire.HeaderDLTError] != 1 || seen[wire.HeaderReplayCount] != 1 || seen["x-own"] != 1 {
		t.Errorf("headers %v: want the retry header and the earlier dlt-error dropped, the replay count and x-own kept", seen)
	}
	d, err := wire.ParseDeadLetter(dl)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "id-1" || d.Type != "com.example.T" || d.OriginalTopic != "orders" || d.OriginalPartition != 3 || d.OriginalOffset != 41 ||
		!d.OriginalTimestamp.Equal(at) || d.Group != "billing" || d.Kind != wire.KindRetriesExhausted || d.Attempts != 4 ||
		!d.FailedAt.Equal(at.Add(time.Second)) || len(d.Error) > wire.MaxErrorLen || !strings.HasSuffix(d.Error, "…") {
		t.Errorf("read back as %+v", d)
	}
	if n, err := wire.ReplayCount(dl); n != 2 || err != nil {
		t.Errorf("ReplayCount: %d, %v; want 2", n, err)
	}

	dl.Headers = dl.Headers[:len(dl.Headers)-1] // no dlt-failed-at
	if _, err := wire.ParseDeadLetter(dl); err == nil || !strings.Contains(err.Error(), "no "+wire.HeaderDLTFailedAt+" header") {
		t.Errorf("without %s: %v", wire.HeaderDLTFailedAt, err)
	}
}

// A retry record goes to the named stage and carries what the stage
// reading it needs: the attempts so far, when it is due, and the origin.
func TestRetryRecord(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	rec := &kgo.Record{Key: []byte("o-1"), Headers: []kgo.RecordHeader{
		{Key: wire.HeaderID, Value: []byte("id-1")},
		{Key: wire.HeaderRetryAttempts, Value: []byte("1")},
	}}
	o := wire.Origin{Topic: "orders", Partition: 1, Offset: 7, Timestamp: at}
	r := wire.RetryRecord(rec, o, "billing", 2, 3, errors.New("boom"), at.Add(1500*time.Millisecond))
	if r.Topic != "orders.billing.retry-2" {
		t.Errorf("retry record to %s", r.Topic)
	}
	got := map[string]string{}
	for _, h := range r.Headers {
		if _, dup := got[h.Key]; dup {
			t.Errorf("header %s twice", h.Key)
		}
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{
		wire.HeaderID:                     "id-1",
		wire.HeaderRetryAttempts:          "3",
		wire.HeaderRetryDue:               "2026-01-02T15:04:06.5Z",
		wire.HeaderRetryOriginalTopic:     "orders",
		wire.HeaderRetryOriginalPartition: "1",
		wire.HeaderRetryOriginalOffset:    "7",
		wire.HeaderRetryOriginalTimestamp: "2026-01-02T15:04:05.000Z",
		wire.HeaderRetryError:             "boom",
	}
	if len(got) != len(want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
}
