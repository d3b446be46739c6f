package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/wire"
)

// TestDeadLetterGroups: dlt groups prints one line per cause, largest
// first, as a table or JSON lines; --topic keeps one topic's; a group
// without a dead-letter topic is an error naming the groups with one.
func TestDeadLetterGroups(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm,
		bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing", "com.acme.ship"}},
		bus.TopicSpec{Name: "payments", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, stack, "", "dlt", "groups", "--group", "shipping"); r.code != 1 || r.out != "" ||
		!strings.Contains(r.err, "group shipping has no dead-letter topic") || !strings.Contains(r.err, "groups with one: billing, com.acme.ship") {
		t.Errorf("dlt groups of a group without dead-letter topics: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	if r := cli(t, stack, "", "dlt", "groups"); r.code != 2 || !strings.Contains(r.err, "--group is required") {
		t.Errorf("dlt groups without --group: exit %d, stderr %q", r.code, r.err)
	}
	if r := cli(t, stack, "", "dlt", "groups", "--group", "billing", "--registry", "http://x"); r.code != 2 || !strings.Contains(r.err, "it talks to Kafka only") {
		t.Errorf("dlt groups --registry: exit %d, stderr %q", r.code, r.err)
	}

	at := time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)
	deadLetter := func(topic, typ string, kind wire.FailureKind, msg string, minute int) {
		t.Helper()
		rec := &kgo.Record{Key: []byte("k"), Value: []byte{0}, Headers: []kgo.RecordHeader{{Key: wire.HeaderType, Value: []byte(typ)}}}
		dl := wire.DeadLetterRecord(rec, wire.Origin{Topic: topic, Offset: int64(minute), Timestamp: at}, "billing", kind, 1, errors.New(msg), at.Add(time.Duration(minute)*time.Minute))
		if err := cl.ProduceSync(t.Context(), dl).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		deadLetter("orders", "com.example.OrderPlaced", wire.KindPermanent, fmt.Sprintf(`order o-%d: customer "c%d" not found`, i, i*3), i)
	}
	deadLetter("orders", "com.example.OrderPlaced", wire.KindRetriesExhausted, "stock service at 10.0.0.4:8080 timed out after 2s", 5)
	deadLetter("payments", "com.example.PaymentTaken", wire.KindPermanent, "card 3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6 declined", 4)
	deadLetter("payments", "com.example.PaymentTaken", wire.KindPermanent, "card 00000000-1b2c-4d5e-8f90-a1b2c3d4e5f6 declined", 6)

	table := cli(t, stack, "", "dlt", "groups", "--group", "billing").ok(t, "dlt groups").out
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 5 || strings.Join(strings.Fields(rows[0]), " ") != "FINGERPRINT COUNT FIRST-FAILED LAST-FAILED KIND TYPE SAMPLE STATES ERROR" ||
		rows[4] != "6 dead letters of group billing by 3 fingerprints" {
		t.Fatalf("dlt groups printed:\n%s", table)
	}
	for i, want := range []string{
		"3 2026-01-02T15:04:00Z 2026-01-02T15:06:00Z permanent com.example.OrderPlaced orders.billing.dlt/0/2 open 3 order o-<n>: customer <str> not found",
		"2 2026-01-02T15:08:00Z 2026-01-02T15:10:00Z permanent com.example.PaymentTaken payments.billing.dlt/0/1 open 2 card <uuid> declined",
		"1 2026-01-02T15:09:00Z 2026-01-02T15:09:00Z retries-exhausted com.example.OrderPlaced orders.billing.dlt/0/3 open 1 stock service at <addr> timed out after <dur>",
	} {
		f := strings.Fields(rows[i+1])
		if len(f[0]) != 12 || strings.Join(f[1:], " ") != want {
			t.Errorf("row %d: %q, want <fingerprint> %s", i+1, rows[i+1], want)
		}
	}

	js := cli(t, stack, "", "dlt", "groups", "--group", "billing", "--json").ok(t, "dlt groups --json")
	lines := jsonLines(t, js.out)
	if len(lines) != 3 || !strings.Contains(js.err, "6 dead letters of group billing by 3 fingerprints") {
		t.Fatalf("dlt groups --json: %v, stderr %q", lines, js.err)
	}
	first := lines[0]
	sample, _ := first["sample"].(map[string]any)
	if first["fingerprint"] != strings.Fields(rows[1])[0] || first["count"] != 3.0 || first["error_kind"] != "permanent" ||
		first["type"] != "com.example.OrderPlaced" || first["error"] != "order o-<n>: customer <str> not found" ||
		first["first_failed_at"] != "2026-01-02T15:04:00Z" || first["last_failed_at"] != "2026-01-02T15:06:00Z" ||
		sample["topic"] != "orders.billing.dlt" || sample["offset"] != 2.0 || sample["error"] != `order o-2: customer "c6" not found` {
		t.Errorf("dlt groups --json, first line: %v", first)
	}

	// --topic: one topic's dead letters.
	only := cli(t, stack, "", "dlt", "groups", "--group", "billing", "--topic", "payments", "--json").ok(t, "dlt groups --topic payments")
	if lines := jsonLines(t, only.out); len(lines) != 1 || lines[0]["count"] != 2.0 || lines[0]["type"] != "com.example.PaymentTaken" {
		t.Errorf("dlt groups --topic payments: %v", lines)
	}
	if r := cli(t, stack, "", "dlt", "groups", "--group", "com.acme.ship", "--topic", "payments"); r.code != 1 ||
		!strings.Contains(r.err, "group com.acme.ship has no dead-letter topic of payments") || !strings.Contains(r.err, "groups with one: billing") {
		t.Errorf("dlt groups --group com.acme.ship --topic payments: exit %d, stderr %q", r.code, r.err)
	}
	if r := cli(t, stack, "", "dlt", "groups", "--group", "com.acme.ship").ok(t, "dlt groups of an empty dead-letter topic"); r.out != "FINGERPRINT  COUNT  FIRST-FAILED  LAST-FAILED  KIND  TYPE  SAMPLE  STATES  ERROR\n0 dead letters of group com.acme.ship by 0 fingerprints\n" {
		t.Errorf("dlt groups of an empty dead-letter topic:\n%s", r.out)
	}
}
