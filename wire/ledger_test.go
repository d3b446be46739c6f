package wire_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evbus/evbus/wire"
)

const ledgerID = "orders.billing.dlt/2/41"

var ledgerAt = time.Date(2026, 12, 5, 10, 30, 0, 123_000_000, time.UTC)

// The ledger's name is contract, and cannot be a dead-letter, replay or
// retry topic's name.
func TestLedgerTopic(t *testing.T) {
	if got := wire.LedgerTopic("billing"); got != "billing.dlt-ledger" {
		t.Fatalf("LedgerTopic(billing) = %s", got)
	}
	for _, derived := range []string{wire.DeadLetterTopic("x", "g"), wire.ReplayTopic("x", "g"), wire.RetryTopic("x", "g", 1)} {
		if strings.HasSuffix(derived, ".dlt-ledger") {
			t.Errorf("%s ends like a ledger topic", derived)
		}
	}
	if err := wire.ValidLedgerTopic("billing"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"", "bad group", strings.Repeat("g", 239)} {
		if err := wire.ValidLedgerTopic(g); !errors.Is(err, wire.ErrTopicName) {
			t.Errorf("ValidLedgerTopic(%q): %v, want ErrTopicName", g, err)
		}
	}
}

// Every (state, kind) pair: legal ones lead where the contract says,
// illegal ones are refused naming the state and the kind.
func TestLedgerTransitions(t *testing.T) {
	const (
		open, replaying, resolved = wire.LedgerOpen, wire.LedgerReplaying, wire.LedgerResolved
		failed, parked, discarded = wire.LedgerFailedAgain, wire.LedgerParked, wire.LedgerDiscarded
	)
	states := []wire.LedgerState{open, replaying, resolved, failed, parked, discarded}
	legal := map[wire.LedgerEntryKind]map[wire.LedgerState]wire.LedgerState{
		wire.ActionReplay:   {open: replaying, resolved: replaying, failed: replaying, parked: replaying, discarded: replaying},
		wire.ActionDiscard:  {open: discarded, failed: discarded, parked: discarded},
		wire.ActionPark:     {open: parked, replaying: parked, failed: parked},
		wire.ActionReveal:   {open: open, replaying: replaying, resolved: resolved, failed: failed, parked: parked, discarded: discarded},
		wire.OutcomeHandled: {replaying: resolved, parked: resolved},
		wire.OutcomeFailed:  {replaying: failed},
	}
	for kind, moves := range legal {
		for _, from := range states {
			got, err := wire.LedgerTransition(from, kind)
			want, ok := moves[from]
			switch {
			case ok && (err != nil || got != want):
				t.Errorf("%s in %s: %q, %v; want %s", kind, from, got, err, want)
			case !ok && !errors.Is(err, wire.ErrLedgerTransition):
				t.Errorf("%s in %s: %q, %v; want ErrLedgerTransition", kind, from, got, err)
			case !ok && !strings.Contains(err.Error(), string(kind)+" a dead letter in state "+string(from)):
				t.Errorf("%s in %s: %v does not name the kind and the state", kind, from, err)
			}
		}
	}
	if _, err := wire.LedgerTransition(open, "delete"); !errors.Is(err, wire.ErrLedgerTransition) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := wire.LedgerTransition("lost", wire.ActionReplay); !errors.Is(err, wire.ErrLedgerTransition) {
		t.Errorf("unknown state: %v", err)
	}
}

func ledgerHistory(t testing.TB) wire.LedgerRecord {
	t.Helper()
	r := wire.NewLedgerRecord("billing", ledgerID)
	for _, e := range []wire.LedgerEntry{
		{Kind: wire.ActionReveal, At: ledgerAt, Actor: "alice", Reason: "ticket 7", Fields: []string{"customer.email"}},
		{Kind: wire.ActionReplay, At: ledgerAt.Add(time.Minute), Actor: "alice", Operation: "op-1", Selection: "fingerprint 3f9a"},
		{Kind: wire.OutcomeFailed, At: ledgerAt.Add(2 * time.Minute), Actor: "consumer billing", Record: "orders.billing.replay/0/7", Error: "timeout"},
		{Kind: wire.ActionPark, At: ledgerAt.Add(3 * time.Minute), Actor: "evbus dlt replay", Reason: "failed again after 1 replay"},
	} {
		var err error
		if r, err = wire.AppendLedgerEntry(r, e); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// A record encodes and parses back as it was; Append sets seq, from and to.
func TestLedgerRoundTrip(t *testing.T) {
	r := ledgerHistory(t)
	if r.State != wire.LedgerParked || r.Seq != 4 || r.Replays() != 1 {
		t.Fatalf("state %s seq %d replays %d; want parked, 4, 1", r.State, r.Seq, r.Replays())
	}
	if e := r.History[2]; e.Seq != 3 || e.From != wire.LedgerReplaying || e.To != wire.LedgerFailedAgain {
		t.Fatalf("entry 3: seq %d %s -> %s", e.Seq, e.From, e.To)
	}
	rec, err := wire.LedgerKafkaRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Topic != "billing.dlt-ledger" || string(rec.Key) != ledgerID {
		t.Fatalf("record to %s keyed %q", rec.Topic, rec.Key)
	}
	if !strings.Contains(string(rec.Value), `"at":"2026-12-05T10:30:00.123Z"`) {
		t.Fatalf("times not in RFC 3339 UTC with milliseconds: %s", rec.Value)
	}
	got, err := wire.ParseLedgerRecord(rec.Key, rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("parsed back:\n%+v\nwant\n%+v", got, r)
	}
}

// What another language's writer gets wrong is refused, naming it.
func TestParseLedgerRecordRefuses(t *testing.T) {
	rec, err := wire.LedgerKafkaRecord(ledgerHistory(t))
	if err != nil {
		t.Fatal(err)
	}
	good := string(rec.Value)
	for _, c := range []struct{ key, value, want string }{
		{ledgerID, `not json`, "not a JSON object"},
		{ledgerID, `{"id":"x"}`, "no version field"},
		{ledgerID, strings.Replace(good, `"version":1`, `"version":2`, 1), "version 2"},
		// A later version may change a field's type: the version is named, not the type.
		{ledgerID, strings.Replace(strings.Replace(good, `"version":1`, `"version":2`, 1), `"seq":4,`, `"seq":"4",`, 1), "version 2: this reader knows version 1"},
		{ledgerID, strings.Replace(good, `"seq":4,`, `"seq":"4",`, 1), "cannot unmarshal string"},
		{"other/0/1", good, "is not the key"},
		{ledgerID, strings.Replace(good, `"state":"parked"`, `"state":"resolved"`, 1), "history leads to parked"},
		{ledgerID, strings.Replace(good, `"seq":4,"history"`, `"seq":5,"history"`, 1), "seq 5 with 4 history entries"},
		{ledgerID, strings.Replace(good, `"kind":"park"`, `"kind":"discard"`, 1), "leads to discarded"},
		{ledgerID, strings.Replace(good, `"kind":"failed"`, `"kind":"handled"`, 1), "leads to resolved, not \"failed-again\""},
		{ledgerID, strings.Replace(good, `"actor":"alice"`, `"actor":""`, 1), "no actor"},
		{ledgerID, strings.Replace(good, `"group":"billing"`, `"group":""`, 1), "no group"},
		{ledgerID, strings.Replace(good, `"history":[`, `"history":{`, 1), "not a JSON object"},
	} {
		_, err := wire.ParseLedgerRecord([]byte(c.key), []byte(c.value))
		if !errors.Is(err, wire.ErrLedgerRecord) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s: %v; want ErrLedgerRecord naming %q", c.value, err, c.want)
		}
	}
	for _, id := range []string{"orders", "o.billing.dlt/0", "o.billing.dlt/-1/3", "o.billing.dlt/0/+3", "bad topic/0/3", "o.billing.dlt/0/x", "orders/0/1", "o.shipping.dlt/0/1"} {
		r := wire.NewLedgerRecord("billing", id)
		if _, err := wire.AppendLedgerValue(nil, r); err == nil || !strings.Contains(err.Error(), "id ") {
			t.Errorf("id %q: %v; want an error naming the id", id, err)
		}
	}
}

// An entry lacking what its kind needs, or that its state refuses, is
// refused and the record is left as it was.
func TestAppendLedgerEntryRefuses(t *testing.T) {
	r := wire.NewLedgerRecord("billing", ledgerID)
	for _, c := range []struct {
		e    wire.LedgerEntry
		want string
	}{
		{wire.LedgerEntry{Kind: wire.ActionReplay, Actor: "a"}, "no time"},
		{wire.LedgerEntry{Kind: wire.ActionReplay, At: ledgerAt}, "no actor"},
		{wire.LedgerEntry{Kind: wire.ActionDiscard, At: ledgerAt, Actor: "a"}, "no reason"},
		{wire.LedgerEntry{Kind: wire.OutcomeHandled, At: ledgerAt, Actor: "c"}, "handled a dead letter in state open"},
		{wire.LedgerEntry{Kind: wire.ActionReplay, At: ledgerAt, Actor: "a", Selection: strings.Repeat("s", wire.MaxErrorLen+1)}, "longer than"},
	} {
		got, err := wire.AppendLedgerEntry(r, c.e)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(got.History) != 0 || got.State != wire.LedgerOpen {
			t.Errorf("%s: %v (state %s); want an error naming %q and the record unchanged", c.e.Kind, err, got.State, c.want)
		}
	}
	for range wire.MaxLedgerEntries {
		var err error
		if r, err = wire.AppendLedgerEntry(r, wire.LedgerEntry{Kind: wire.ActionReveal, At: ledgerAt, Actor: "a", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := wire.AppendLedgerEntry(r, wire.LedgerEntry{Kind: wire.ActionReveal, At: ledgerAt, Actor: "a", Reason: "r"}); err == nil {
		t.Fatalf("entry %d accepted", wire.MaxLedgerEntries+1)
	}
}

// Hostile bytes never panic; what parses re-encodes to what parses the same.
func FuzzParseLedgerRecord(f *testing.F) {
	rec, err := wire.LedgerKafkaRecord(ledgerHistory(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec.Key, rec.Value)
	f.Add([]byte(ledgerID), []byte(`{"version":1,"id":"orders.billing.dlt/2/41","group":"billing","state":"open","seq":0,"history":[]}`))
	f.Add([]byte("k"), []byte(`{"version":1e400}`))
	f.Add([]byte{}, []byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, err := wire.ParseLedgerRecord(key, value)
		if err != nil {
			if !errors.Is(err, wire.ErrLedgerRecord) || !strings.Contains(err.Error(), "key ") {
				t.Fatalf("error %v does not wrap ErrLedgerRecord or name the key", err)
			}
			return
		}
		again, err := wire.AppendLedgerValue(nil, r)
		if err != nil {
			t.Fatalf("parsed, but does not encode: %v", err)
		}
		if _, err := wire.ParseLedgerRecord(key, again); err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
	})
}

// The example in docs/wire-format.md is a valid ledger record.
func TestLedgerDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/wire-format.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Dead-letter ledger")
	_, block, ok2 := strings.Cut(section, "```json\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no json block in the ledger section of docs/wire-format.md")
	}
	r, err := wire.ParseLedgerRecord([]byte("orders.billing.dlt/2/41"), []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != wire.LedgerParked || len(r.History) != 3 {
		t.Fatalf("state %s with %d entries", r.State, len(r.History))
	}
}

// BenchmarkParseLedgerRecord parses a record of three entries, as each
// writer of a ledger does for every record the other writes.
//
//	go test ./wire -run '^$' -bench ParseLedgerRecord -count 6
func BenchmarkParseLedgerRecord(b *testing.B) {
	rec, err := wire.LedgerKafkaRecord(ledgerHistory(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.ParseLedgerRecord(rec.Key, rec.Value); err != nil {
			b.Fatal(err)
		}
	}
}
