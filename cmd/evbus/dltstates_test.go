package main

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/wire"
)

// TestDeadLetterStates: dlt ls and dlt groups show each dead letter's
// state from its group's ledger, open when the ledger has no record of it;
// they read without writing (a missing ledger topic stays missing), and a
// damaged ledger record is a warning, not a failure.
func TestDeadLetterStates(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		produceDeadLetter(t, cl, i)
	}
	ledger := wire.LedgerTopic("billing")
	ledgerExists := func() bool {
		t.Helper()
		tds, err := adm.ListTopics(t.Context(), ledger)
		if err != nil {
			t.Fatal(err)
		}
		return tds.Has(ledger)
	}
	// stateColumn returns, by offset, the STATE cell of dlt ls's table.
	stateColumn := func(out string) map[string]string {
		t.Helper()
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if f := strings.Fields(rows[0]); len(f) != 10 || f[8] != "STATE" {
			t.Fatalf("dlt ls header: %q", rows[0])
		}
		got := make(map[string]string)
		for _, row := range rows[1 : len(rows)-1] {
			f := strings.Fields(row)
			got[f[2]] = f[8]
		}
		return got
	}
	jsonStates := func(out string) map[float64]any {
		t.Helper()
		got := make(map[float64]any)
		for _, l := range jsonLines(t, out) {
			got[l["offset"].(float64)] = l["state"]
		}
		return got
	}

	// No ledger topic: every dead letter is open, and no topic is created.
	if got := stateColumn(cli(t, stack, "", "dlt", "ls").ok(t, "dlt ls").out); len(got) != 4 || got["0"] != "open" || got["3"] != "open" {
		t.Errorf("dlt ls without a ledger: states %v, want 4 open", got)
	}
	if got := jsonStates(cli(t, stack, "", "dlt", "ls", "--json").ok(t, "dlt ls --json").out); len(got) != 4 || got[0] != "open" || got[3] != "open" {
		t.Errorf("dlt ls --json without a ledger: states %v, want 4 open", got)
	}
	groups := cli(t, stack, "", "dlt", "groups", "--group", "billing").ok(t, "dlt groups")
	if rows := strings.Split(groups.out, "\n"); !strings.Contains(rows[0], "  STATES  ") || !strings.Contains(rows[1], "  open 4  ") {
		t.Errorf("dlt groups without a ledger:\n%s", groups.out)
	}
	if l := jsonLines(t, cli(t, stack, "", "dlt", "groups", "--group", "billing", "--json").ok(t, "dlt groups --json").out); len(l) != 1 ||
		len(l[0]["states"].(map[string]any)) != 1 || l[0]["states"].(map[string]any)["open"] != 4.0 || l[0]["sample"].(map[string]any)["state"] != "open" {
		t.Errorf("dlt groups --json without a ledger: %v", l)
	}
	if ledgerExists() {
		t.Fatalf("dlt ls or dlt groups created the ledger topic %s", ledger)
	}

	// Offset 1 parked, offset 3 (the newest, the sample) discarded; a
	// damaged record for offset 2 leaves it open and is reported once.
	// A client of its own: adm's has cached the topic as missing.
	lcl, ladm := admin(t, stack)
	l, err := deadletter.OpenLedger(t.Context(), lcl, ladm, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	at := time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC)
	id := func(offset string) string { return wire.DeadLetterTopic("orders", "billing") + "/0/" + offset }
	if _, err := l.Record(t.Context(), id("1"), wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "alice", Reason: "looping"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(t.Context(), id("3"), wire.LedgerEntry{Kind: wire.ActionDiscard, At: at, Actor: "bob", Reason: "test order"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: ledger, Key: []byte(id("2")), Value: []byte("{not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const warning = "ledger: deadletter: ledger billing.dlt-ledger: 1 records do not parse: partition 0 offset 2: "

	ls := cli(t, stack, "", "dlt", "ls").ok(t, "dlt ls with a ledger")
	if got := stateColumn(ls.out); len(got) != 4 || got["0"] != "open" || got["1"] != "parked" || got["2"] != "open" || got["3"] != "discarded" {
		t.Errorf("dlt ls with a ledger: states %v, want open, parked, open, discarded", got)
	}
	if strings.Count(ls.err, warning) != 1 || strings.Count(ls.err, "\n") != 1 {
		t.Errorf("dlt ls with a damaged ledger record: stderr %q, want one line with %q", ls.err, warning)
	}
	lsJSON := cli(t, stack, "", "dlt", "ls", "--json").ok(t, "dlt ls --json with a ledger")
	if got := jsonStates(lsJSON.out); len(got) != 4 || got[0] != "open" || got[1] != "parked" || got[2] != "open" || got[3] != "discarded" {
		t.Errorf("dlt ls --json with a ledger: states %v", got)
	}
	if strings.Count(lsJSON.err, warning) != 1 {
		t.Errorf("dlt ls --json with a damaged ledger record: stderr %q", lsJSON.err)
	}

	groups = cli(t, stack, "", "dlt", "groups", "--group", "billing").ok(t, "dlt groups with a ledger")
	if rows := strings.Split(groups.out, "\n"); !strings.Contains(rows[1], "  open 2, parked 1, discarded 1  ") || strings.Count(groups.err, warning) != 1 {
		t.Errorf("dlt groups with a ledger:\n%s\nstderr %q", groups.out, groups.err)
	}
	gj := cli(t, stack, "", "dlt", "groups", "--group", "billing", "--json").ok(t, "dlt groups --json with a ledger")
	if l := jsonLines(t, gj.out); len(l) != 1 || len(l[0]["states"].(map[string]any)) != 3 || l[0]["states"].(map[string]any)["open"] != 2.0 ||
		l[0]["states"].(map[string]any)["parked"] != 1.0 || l[0]["states"].(map[string]any)["discarded"] != 1.0 ||
		l[0]["sample"].(map[string]any)["state"] != "discarded" {
		t.Errorf("dlt groups --json with a ledger: %v", l)
	}
	if strings.Count(gj.err, warning) != 1 {
		t.Errorf("dlt groups --json with a damaged ledger record: stderr %q", gj.err)
	}
}
