package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/wire"
)

// TestReplayResumesAfterKill: the built binary replaying 400 dead letters
// is killed (SIGKILL) after some of its records went out; the same
// command run again sends the rest: every dead letter has exactly one
// replay record, and the ledger shows each replaying, with one replay
// entry.
func TestReplayResumesAfterKill(t *testing.T) {
	bin := buildEvbus(t)
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	const n = 400
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = deadLetterRecord(i)
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	replayTopic := wire.ReplayTopic("orders", "billing")

	cmd := exec.Command(bin, "dlt", "replay", "--group", "billing", "--all", "--yes", "--rate", "50")
	cmd.Env = append(os.Environ(), "EVBUS_BROKERS="+strings.Join(stack.Brokers(), ","))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the replay sends 40 records", func() bool { return evbustest.Records(t, stack, replayTopic) >= 40 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	sent := evbustest.Records(t, stack, replayTopic)
	if sent >= n || strings.Contains(out.String(), "replayed ") {
		t.Fatalf("the replay was not killed halfway: %d records sent\n%s", sent, out.String())
	}

	t.Logf("killed after %d of %d records", sent, n)
	again := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all", "--yes").ok(t, "replay again")
	want := "replayed " + itoa(n-sent) + " of " + itoa(n) + " selected dead letters of group billing"
	if !strings.Contains(again.out, want) || !strings.Contains(again.out, "finishing an interrupted replay") {
		t.Errorf("replay after the kill printed %q, want %q", again.out, want)
	}
	perID := map[string]int{}
	for _, r := range testkit.ReadN(t, stack.Brokers(), replayTopic, n) {
		perID[wire.ReplayOf(r)]++
	}
	for i := range n {
		if id := wire.DeadLetterTopic("orders", "billing") + "/0/" + itoa(int64(i)); perID[id] != 1 {
			t.Errorf("%s: %d replay records, want exactly 1", id, perID[id])
		}
	}
	if got := evbustest.Records(t, stack, replayTopic); got != n {
		t.Fatalf("the replay topic holds %d records, want %d", got, n)
	}
	m, err := deadletter.NewManager(t.Context(), cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ls, err := m.List(t.Context(), deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.State != wire.LedgerReplaying || l.Ledger.Replays() != 1 || l.Sent != 1 {
			t.Fatalf("%s: %s with %d replay entries and %d records", l.ID, l.State, l.Ledger.Replays(), l.Sent)
		}
	}
	// Nothing is left to do.
	if r := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--all").ok(t, "third run"); !strings.Contains(r.out, "replayed 0 of 400") {
		t.Errorf("third run: %s", r.out)
	}
}

// TestDeadLetterActions: discard, park and replay by the selection
// flags; --dry-run and --json say what each dead letter gets and why; the
// ledger records actor and reason; a discarded or parked dead letter is
// replayed by --id only; bad selections are usage errors.
func TestDeadLetterActions(t *testing.T) {
	stack := evbustest.Start(t)
	cl, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		produceDeadLetter(t, cl, i)
	}
	id := func(offset int) string { return "orders.billing.dlt/0/" + itoa(int64(offset)) }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"dlt", "replay", "--group", "billing"}, "no dead letter selected: pass --all"},
		{[]string{"dlt", "discard", "--group", "billing", "--all"}, "--reason is required"},
		{[]string{"dlt", "park", "--group", "billing", "--partition", "0"}, "--partition and --offsets go together"},
		{[]string{"dlt", "park", "--group", "billing", "--partition", "0", "--offsets", "5-2", "--reason", "r"}, "--offsets \"5-2\""},
		{[]string{"dlt", "replay", "--group", "billing", "--error-kind", "bad"}, "--error-kind \"bad\""},
		{[]string{"dlt", "reveal", id(0), "--group", "billing", "--reason", "r"}, "--field is required"},
	} {
		if r := cli(t, stack, "", c.args...); r.code != 2 || !strings.Contains(r.err, c.want) {
			t.Errorf("evbus %s: exit %d, stderr %q, want %q", strings.Join(c.args, " "), r.code, r.err, c.want)
		}
	}
	fp := jsonLines(t, cli(t, stack, "", "dlt", "groups", "--group", "billing", "--json").ok(t, "groups").out)[0]["fingerprint"].(string)

	// discard o-1 by key, park offsets 2-3 (a dry run first).
	cli(t, stack, "", "dlt", "discard", "--group", "billing", "--key", "o-1", "--reason", "order cancelled", "--actor", "alice", "--yes").ok(t, "discard")
	dry := cli(t, stack, "", "dlt", "park", "--group", "billing", "--partition", "0", "--offsets", "1-3", "--reason", "tax fix pending", "--dry-run").ok(t, "park dry run")
	for _, want := range []string{"ID", "DO", "WHY", id(1), "discarded: park is legal in open, replaying, failed-again", id(2), "dry run: park 2 of 3 selected dead letters of group billing; 1 left alone (discarded 1)"} {
		if !strings.Contains(dry.out, want) {
			t.Errorf("park --dry-run lacks %q:\n%s", want, dry.out)
		}
	}
	park := cli(t, stack, "", "dlt", "park", "--group", "billing", "--partition", "0", "--offsets", "1-3", "--reason", "tax fix pending", "--yes", "--json").ok(t, "park")
	steps := jsonLines(t, park.out)
	if len(steps) != 3 || steps[0]["dead_letter_id"] != id(1) || steps[0]["do"] != "" || steps[1]["do"] != "park" || steps[1]["state"] != "parked" || steps[1]["fingerprint"] != fp ||
		!strings.Contains(park.err, "parked 2 of 3 selected dead letters of group billing") {
		t.Errorf("park --json: %v\nstderr: %s", steps, park.err)
	}

	// Replaying the fingerprint takes the open ones alone; by id, the
	// parked and the discarded ones go too.
	rep := cli(t, stack, "", "dlt", "replay", "--group", "billing", "--fingerprint", fp, "--until", "2030-01-01T00:00:00Z", "--yes").ok(t, "replay fingerprint")
	if !strings.Contains(rep.out, "replayed 3 of 6 selected dead letters of group billing through orders.billing.replay") ||
		!strings.Contains(rep.out, "3 left alone (discarded 1, parked 2): --dry-run says why") {
		t.Errorf("replay of a fingerprint: %s", rep.out)
	}
	cli(t, stack, "", "dlt", "replay", "--group", "billing", "--id", id(1), "--id", id(2), "--reason", "checked by hand", "--yes").ok(t, "replay by id")
	perID := map[string]int{}
	for _, r := range testkit.ReadN(t, stack.Brokers(), wire.ReplayTopic("orders", "billing"), 5) {
		perID[wire.ReplayOf(r)]++
	}
	if len(perID) != 5 || perID[id(3)] != 0 || perID[id(1)] != 1 {
		t.Errorf("replay records by dead letter: %v", perID)
	}
	ls := jsonLines(t, cli(t, stack, "", "dlt", "ls", "--group", "billing", "--json").ok(t, "ls").out)
	states := map[string]any{}
	for _, l := range ls {
		states[l["key"].(string)] = l["state"]
		if l["key"] == "o-1" && l["dead_letter_id"] != id(1) {
			t.Errorf("dlt ls --json: dead_letter_id %v, want %s", l["dead_letter_id"], id(1))
		}
	}
	if states["o-1"] != "replaying" || states["o-3"] != "parked" || states["o-0"] != "replaying" {
		t.Errorf("states after the actions: %v", states)
	}
	m, err := deadletter.NewManager(t.Context(), cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Get(t.Context(), id(1))
	if err != nil {
		t.Fatal(err)
	}
	h := l.Ledger.History
	if len(h) != 2 || h[0].Kind != wire.ActionDiscard || h[0].Actor != "alice" || h[0].Reason != "order cancelled" || h[0].Selection != `key "o-1"` ||
		h[1].Kind != wire.ActionReplay || h[1].Reason != "checked by hand" || !strings.Contains(h[1].Actor, "@") {
		t.Errorf("history of %s: %+v", id(1), h)
	}
}

// TestDeadLetterReveal: reveal prints the fields asked for from the
// decoded value and records who saw which and why; a field the value
// lacks is an error naming those it has, and records nothing.
func TestDeadLetterReveal(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	if err := bus.CreateTopics(t.Context(), adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"billing"}}); err != nil {
		t.Fatal(err)
	}
	startGroup(t, stack, "billing", newHandled(), func(*Order) bool { return true })
	ids := publish(t, stack, &Order{"o-7", 70})
	dl := evbustest.ExpectDeadLettered(t, stack, "orders", "billing", func(d wire.DeadLetter) bool { return d.ID == ids[0] })
	id := wire.DeadLetterID(dl.Record)

	bad := cli(t, stack, "", "dlt", "reveal", id, "--group", "billing", "--field", "customer.email", "--reason", "ticket 4711")
	if bad.code != 1 || !strings.Contains(bad.err, `the value has no field "customer"; its fields: amount, order_id`) {
		t.Errorf("reveal of a missing field: exit %d, %s", bad.code, bad.err)
	}
	r := cli(t, stack, "", "dlt", "reveal", id, "--group", "billing", "--field", "amount", "--field", "order_id", "--reason", "ticket 4711", "--actor", "bob").ok(t, "reveal")
	var shown map[string]any
	if err := json.Unmarshal([]byte(r.out), &shown); err != nil || shown["amount"] != 70.0 || shown["order_id"] != "o-7" {
		t.Fatalf("reveal printed %q (%v)", r.out, err)
	}
	cl, _ := admin(t, stack)
	m, err := deadletter.NewManager(t.Context(), cl, "billing")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Ledger.History; len(h) != 1 || h[0].Kind != wire.ActionReveal || h[0].Actor != "bob" || h[0].Reason != "ticket 4711" ||
		strings.Join(h[0].Fields, ",") != "amount,order_id" || l.State != wire.LedgerOpen {
		t.Errorf("after the reveal: %s, %+v", l.State, l.Ledger.History)
	}
}
