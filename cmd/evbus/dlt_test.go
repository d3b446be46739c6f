package main

import (
	"strings"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/wire"
)

// TestDeadLetterListing: ls shows the replay count of a record replayed
// without failing again, ends with a summary, and --limit keeps the
// newest; a group or a cluster without a dead-letter topic is an error for
// ls and replay alike; replay without a terminal needs --yes.
func TestDeadLetterListing(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)

	// No dead-letter topic at all: wrong brokers, or none created.
	if r := cli(t, stack, "", "dlt", "ls"); r.code != 1 || !strings.Contains(r.err, "no dead-letter topic (<topic>.<group>.dlt) on "+stack.Brokers()[0]) {
		t.Errorf("dlt ls without dead-letter topics: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing", "com.acme.ship"}}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"dlt", "ls", "--group", "shipping"}, {"dlt", "replay", "--group", "shipping", "--all", "--yes"}} {
		r := cli(t, stack, "", args...)
		if r.code != 1 || !strings.Contains(r.err, "group shipping has no dead-letter topic") || !strings.Contains(r.err, "groups with one: billing, com.acme.ship") || r.out != "" {
			t.Errorf("evbus %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
	for _, args := range [][]string{{"--group", "billing"}, {"--group", "com.acme.ship"}, {"--group", "com.acme.ship", "--topic", "orders"}} {
		if r := cli(t, stack, "", append([]string{"dlt", "ls"}, args...)...).ok(t, "dlt ls of an empty dead-letter topic"); !strings.HasSuffix(r.out, "\n0 dead letters selected of 0 read\n") {
			t.Errorf("dlt ls %s of an empty dead-letter topic:\n%s", strings.Join(args, " "), r.out)
		}
	}

	for i := range 5 {
		produceDeadLetter(t, cl, i)
	}
	// Not on a terminal, replay asks nobody: it needs --yes.
	if r := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all"); r.code != 2 || !strings.Contains(r.err, "pass --yes to replay") {
		t.Errorf("replay without --yes, not on a terminal: exit %d, stderr %q", r.code, r.err)
	}
	if n := evbustest.Records(t, stack, wire.ReplayTopic("orders", "billing")); n != 0 {
		t.Fatalf("replay without --yes sent %d records", n)
	}
	cli(t, stack, "", "dlt", "replay", "--group", "billing", "--yes", "--since", "2026-01-02T15:04:06Z").ok(t, "replay")

	// The replays went through (nothing failed again): each record shows
	// its replay, in the table and the JSON lines.
	table := cli(t, stack, "", "dlt", "ls").ok(t, "dlt ls").out
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 7 || rows[6] != "5 dead letters selected of 5 read" {
		t.Fatalf("dlt ls printed:\n%s", table)
	}
	for _, row := range rows[1:6] {
		if f := strings.Fields(row); len(f) < 8 || f[7] != "1" {
			t.Errorf("REPLAYS of %q is not 1:\n%s", row, table)
		}
	}
	all := jsonLines(t, cli(t, stack, "", "dlt", "ls", "--json").ok(t, "dlt ls --json").out)
	if len(all) != 5 {
		t.Fatalf("dlt ls --json printed %d lines, want 5", len(all))
	}
	for _, l := range all {
		if l["replays"] != 1.0 {
			t.Errorf("replayed record %v: replays %v, want 1", l["offset"], l["replays"])
		}
	}

	// --limit keeps the newest; the summary says how many were left out.
	limited := cli(t, stack, "", "dlt", "ls", "--limit", "2").ok(t, "dlt ls --limit 2").out
	rows = strings.Split(strings.TrimSpace(limited), "\n")
	if len(rows) != 4 || !strings.Contains(rows[1], "o-4") || !strings.Contains(rows[2], "o-3") ||
		rows[3] != "5 dead letters selected of 5 read; showing the newest 2: --limit 0 shows all" {
		t.Errorf("dlt ls --limit 2:\n%s", limited)
	}
	js := cli(t, stack, "", "dlt", "ls", "--json", "--limit", "2").ok(t, "dlt ls --json --limit 2")
	if got := jsonLines(t, js.out); len(got) != 2 || got[0]["key"] != "o-4" || !strings.Contains(js.err, "showing the newest 2") {
		t.Errorf("dlt ls --json --limit 2: %v, stderr %q", got, js.err)
	}
	if r := cli(t, stack, "", "dlt", "ls", "--limit", "-2"); r.code != 2 || !strings.Contains(r.err, "--limit -2") {
		t.Errorf("dlt ls --limit -2: exit %d, stderr %q", r.code, r.err)
	}
}
