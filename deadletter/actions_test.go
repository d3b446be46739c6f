package deadletter_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// replayRecords reads group's replay topic of orders to its end and
// counts its records by the dead letter they replay.
func replayRecords(t *testing.T, brokers []string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, adm := clients(t, brokers)
	topic := wire.ReplayTopic("orders", group)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int)
	from := make(map[int32]kgo.Offset)
	left := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			from[o.Partition] = kgo.NewOffset().AtStart()
			left += int(o.Offset)
		}
	})
	if left == 0 {
		return out
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: from})
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			left--
			out[wire.ReplayOf(r)]++
		})
	}
	return out
}

var alice = deadletter.Actor{Name: "alice", Reason: "the payment service is back"}

// The selection rules of a replay: in bulk, open letters are replayed,
// the loop guard parks those replayed MaxReplays times, every other state
// is left alone with why; by id, any state the ledger allows. Running a
// replay again sends nothing twice.
func TestManagerReplayRules(t *testing.T) {
	brokers, cl := managerStack(t)
	ctx := context.Background()
	// One cause: open ones, one that looped, and one of each state.
	ls := deadLetters(t, cl, 0, 7, "a", "payment service unavailable", wire.KindRetriesExhausted, 0, at)
	looped := deadLetters(t, cl, 1, 1, "l", "payment service unavailable", wire.KindRetriesExhausted, 3, at.Add(time.Hour))[0]
	open1, open2, parked, resolved, failed, discarded, replaying := ls[0], ls[1], ls[2], ls[3], ls[4], ls[5], ls[6]
	{
		other, otherAdm := clients(t, brokers)
		l := open(t, other, otherAdm)
		record(t, l, parked, wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "hold"})
		record(t, l, resolved, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "bob"})
		record(t, l, resolved, wire.LedgerEntry{Kind: wire.OutcomeHandled, At: at, Actor: "consumer billing"})
		record(t, l, failed, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "bob"})
		record(t, l, failed, wire.LedgerEntry{Kind: wire.OutcomeFailed, At: at, Actor: "consumer billing", Record: "orders.billing.dlt/1/9", Error: "again"})
		record(t, l, discarded, wire.LedgerEntry{Kind: wire.ActionDiscard, At: at, Actor: "bob", Reason: "obsolete"})
		l.Close()
	}
	m := newManager(t, cl)
	first, err := m.Get(ctx, open1)
	if err != nil {
		t.Fatal(err)
	}
	sel := deadletter.Selection{Fingerprint: first.Fingerprint.ID}

	// The replaying one: replayed by another operator, its record sent.
	if _, err := m.Replay(ctx, deadletter.Selection{IDs: []string{replaying}}, deadletter.Actor{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	plan, err := m.Plan(ctx, deadletter.ActionReplay, sel)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		do  deadletter.Action
		why string
	}{
		open1: {deadletter.ActionReplay, ""}, open2: {deadletter.ActionReplay, ""},
		looped:    {deadletter.ActionPark, "loop guard: failed after 3 replays"},
		parked:    {"", "parked: replayed only when selected by id"},
		resolved:  {"", "resolved: replayed only when selected by id"},
		failed:    {"", "failed again: orders.billing.dlt/1/9 carries it on"},
		discarded: {"", "discarded: replayed only when selected by id"},
		replaying: {"", "replaying: its replay was sent, its outcome is awaited"},
	}
	checkSteps := func(name string, steps []deadletter.Step) {
		t.Helper()
		if len(steps) != len(want) {
			t.Fatalf("%s: %d steps, want %d", name, len(steps), len(want))
		}
		for _, s := range steps {
			w := want[s.Letter.ID]
			if s.Do != w.do || !strings.Contains(s.Why, w.why) || (w.why == "") != (s.Why == "") {
				t.Errorf("%s: %s (%s): do %q why %q, want %q %q", name, s.Letter.ID, s.Letter.State, s.Do, s.Why, w.do, w.why)
			}
		}
	}
	checkSteps("plan", plan.Steps)
	if n := replayRecords(t, brokers); len(n) != 1 {
		t.Fatalf("the plan sent something: %v", n)
	}

	var progress []int
	by := alice
	by.Progress = func(done, total int) { progress = append(progress, done, total) }
	rep, err := m.Replay(ctx, sel, by)
	if err != nil {
		t.Fatal(err)
	}
	checkSteps("replay", rep.Steps)
	if rep.Done != 3 || !slices.Equal(progress, []int{3, 3}) || rep.Operation == "" {
		t.Fatalf("report: done %d, progress %v, operation %q", rep.Done, progress, rep.Operation)
	}
	sent := replayRecords(t, brokers)
	if len(sent) != 3 || sent[open1] != 1 || sent[open2] != 1 || sent[replaying] != 1 {
		t.Fatalf("replay records: %v", sent)
	}
	got, err := m.List(ctx, deadletter.Selection{IDs: []string{open1, looped}})
	if err != nil {
		t.Fatal(err)
	}
	e := got[0].Ledger.History[0]
	if got[0].State != wire.LedgerReplaying || got[0].Sent != 1 || e.Operation != rep.Operation || e.Actor != "alice" || e.Reason != alice.Reason || !strings.Contains(e.Selection, "fingerprint "+first.Fingerprint.ID) {
		t.Fatalf("after the replay, %s: %+v", open1, got[0])
	}
	if g := got[1]; g.State != wire.LedgerParked || g.Ledger.History[0].Reason != "loop guard: failed after 3 replays" || g.Sent != 0 {
		t.Fatalf("the looped one: %+v", g)
	}

	// Again: nothing is sent twice.
	rep, err = m.Replay(ctx, sel, alice)
	if err != nil || rep.Done != 0 || rep.Count(deadletter.ActionReplay) != 0 {
		t.Fatalf("replay again: done %d, %v", rep.Done, err)
	}
	// By id, the loop guard and the states give way.
	rep, err = m.Replay(ctx, deadletter.Selection{IDs: []string{looped, resolved, failed, parked, discarded}}, alice)
	if err != nil || rep.Done != 5 {
		t.Fatalf("replay by id: done %d, %+v, %v", rep.Done, rep.Steps, err)
	}
	sent = replayRecords(t, brokers)
	for _, id := range []string{looped, resolved, failed, parked, discarded, open1} {
		if sent[id] != 1 {
			t.Errorf("%s: %d replay records, want 1", id, sent[id])
		}
	}
	if l, _ := m.Get(ctx, looped); l.State != wire.LedgerReplaying || l.Sent != 1 {
		t.Fatalf("the looped one replayed by id: %s, sent %d", l.State, l.Sent)
	}
	if _, err := m.Replay(ctx, deadletter.Selection{}, alice); err != nil {
		t.Fatal(err)
	}
	if n := replayRecords(t, brokers); len(n) != 8 {
		t.Fatalf("an empty selection replayed: %v", n)
	}
}

// A replay interrupted halfway (its context ends while records are in
// flight, paced so that the rest of the batch is still to send) and run
// again by a new Manager sends the rest: one replay record per dead
// letter, every one of them.
func TestManagerReplayResumes(t *testing.T) {
	brokers, cl := managerStack(t)
	ctx := context.Background()
	const n = 300
	all := append(deadLetters(t, cl, 0, n/2, "a", "timeout", wire.KindRetriesExhausted, 0, at),
		deadLetters(t, cl, 1, n/2, "b", "timeout", wire.KindRetriesExhausted, 0, at)...)

	cut, cancel := context.WithCancel(ctx)
	var buffered atomic.Int64
	hook := bufferedHook(func(r *kgo.Record) {
		if r.Topic == wire.ReplayTopic("orders", group) && buffered.Add(1) == 70 {
			cancel()
		}
	})
	killed, _ := clients(t, brokers, kgo.WithHooks(hook))
	m, err := deadletter.NewManager(ctx, killed, group, deadletter.ReplayBatch(50), deadletter.ReplayRate(2000))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Replay(cut, deadletter.Selection{All: true}, alice)
	if err == nil || !strings.Contains(err.Error(), "run the same replay again") {
		t.Fatalf("interrupted replay: %v", err)
	}
	m.Close()
	killed.Close()
	before := replayRecords(t, brokers)
	if len(before) == 0 || len(before) >= n || rep.Done != len(before) {
		t.Fatalf("interrupted after %d records (report: %d), want some, not all", len(before), rep.Done)
	}

	m = newManager(t, cl, deadletter.ReplayBatch(50))
	plan, err := m.Plan(ctx, deadletter.ActionReplay, deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	resumes := 0
	for _, s := range plan.Steps {
		if s.Resume {
			resumes++
			if !strings.Contains(s.Why, "resumes operation "+rep.Operation) {
				t.Fatalf("resume step: %q", s.Why)
			}
		}
	}
	if resumes == 0 {
		t.Fatalf("no resume in the plan (%d sent of %d, batches of 50)", len(before), n)
	}
	rep2, err := m.Replay(ctx, deadletter.Selection{All: true}, alice)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Done != n-len(before) {
		t.Fatalf("second run sent %d, want %d", rep2.Done, n-len(before))
	}
	after := replayRecords(t, brokers)
	for _, id := range all {
		if after[id] != 1 {
			t.Errorf("%s: %d replay records, want exactly 1", id, after[id])
		}
	}
	ls, err := m.List(ctx, deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.State != wire.LedgerReplaying || l.Sent != 1 || l.Ledger.Replays() != 1 {
			t.Fatalf("%s after the resumed replay: %s, sent %d, %d replay entries", l.ID, l.State, l.Sent, l.Ledger.Replays())
		}
	}
}

// Discard and park record, delete nothing, want a reason; reveal records
// who saw which fields and keeps the state.
func TestManagerDiscardParkReveal(t *testing.T) {
	_, cl := managerStack(t)
	ctx := context.Background()
	ls := deadLetters(t, cl, 0, 4, "a", "order 17 not found", wire.KindPermanent, 0, at)
	m := newManager(t, cl)
	if _, err := m.Discard(ctx, deadletter.Selection{All: true}, deadletter.Actor{Name: "alice"}); err == nil || !strings.Contains(err.Error(), "no reason") {
		t.Fatalf("discard without a reason: %v", err)
	}
	if _, err := m.Park(ctx, deadletter.Selection{All: true}, deadletter.Actor{Reason: "x"}); err == nil || !strings.Contains(err.Error(), "no actor") {
		t.Fatalf("park without an actor: %v", err)
	}
	if _, err := m.Replay(ctx, deadletter.Selection{IDs: []string{ls[3]}}, alice); err != nil {
		t.Fatal(err)
	}
	plan, err := m.Plan(ctx, deadletter.ActionPark, deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Count(deadletter.ActionPark) != 3 || !strings.Contains(plan.Steps[3].Why, "replaying: parked only when selected by id") {
		t.Fatalf("park plan: %+v", plan.Steps)
	}
	rep, err := m.Park(ctx, deadletter.Selection{IDs: []string{ls[0], ls[3]}}, deadletter.Actor{Name: "alice", Reason: "fix pending"})
	if err != nil || rep.Done != 2 {
		t.Fatalf("park by id: %d, %v", rep.Done, err)
	}
	rep, err = m.Discard(ctx, deadletter.Selection{Key: "k1"}, deadletter.Actor{Name: "alice", Reason: "order cancelled"})
	if err != nil || rep.Done != 1 {
		t.Fatalf("discard: %d, %v", rep.Done, err)
	}
	rep, err = m.Discard(ctx, deadletter.Selection{All: true}, deadletter.Actor{Name: "alice", Reason: "obsolete"})
	if err != nil || rep.Done != 3 || rep.Count("") != 1 {
		t.Fatalf("discard all: %d, %+v, %v", rep.Done, rep.Steps, err)
	}
	if err := m.Reveal(ctx, ls[2], []string{"customer.email"}, deadletter.Actor{Name: "bob", Reason: "ticket 42"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Reveal(ctx, "orders.billing.dlt/0/77", []string{"x"}, deadletter.Actor{Name: "bob", Reason: "r"}); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("reveal of an unknown id: %v", err)
	}
	if err := m.Reveal(ctx, ls[2], []string{"x"}, deadletter.Actor{Name: "bob"}); err == nil {
		t.Fatal("reveal without a reason is accepted")
	}
	got, err := m.List(ctx, deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	states := make([]wire.LedgerState, len(got))
	for i, l := range got {
		states[i] = l.State
	}
	if !slices.Equal(states, []wire.LedgerState{wire.LedgerDiscarded, wire.LedgerDiscarded, wire.LedgerDiscarded, wire.LedgerDiscarded}) {
		t.Fatalf("states: %v", states)
	}
	h := got[2].Ledger.History
	if len(h) != 2 || h[1].Kind != wire.ActionReveal || h[1].Actor != "bob" || !slices.Equal(h[1].Fields, []string{"customer.email"}) || h[1].To != wire.LedgerDiscarded {
		t.Fatalf("after a reveal: %+v", h)
	}
	// Nothing was deleted: the dead-letter topic holds its four records.
	gs, err := m.Groups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Count != 4 || gs[0].States[wire.LedgerDiscarded] != 4 {
		t.Fatalf("groups after discards: %+v, %v", gs, err)
	}
}

// Reads go on while an action runs, and see its entries as it records
// them (run with -race).
func TestManagerReadsDuringReplay(t *testing.T) {
	_, cl := managerStack(t)
	ctx := context.Background()
	deadLetters(t, cl, 0, 200, "a", "timeout", wire.KindRetriesExhausted, 0, at)
	m := newManager(t, cl, deadletter.ReplayBatch(20), deadletter.ReplayRate(1000))
	done := make(chan struct{})
	reads := make(chan int, 1)
	go func() {
		n := 0
		defer func() { reads <- n }()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := m.Groups(ctx); err != nil {
				t.Error(err)
				return
			}
			if _, err := m.List(ctx, deadletter.Selection{All: true, States: []wire.LedgerState{wire.LedgerReplaying}}); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	rep, err := m.Replay(ctx, deadletter.Selection{All: true}, alice)
	close(done)
	if n := <-reads; n == 0 {
		t.Error("no read completed while the replay ran")
	}
	if err != nil || rep.Done != 200 {
		t.Fatalf("replay: %d, %v", rep.Done, err)
	}
	ls, err := m.List(ctx, deadletter.Selection{States: []wire.LedgerState{wire.LedgerReplaying}})
	if err != nil || len(ls) != 200 {
		t.Fatalf("replaying after the replay: %d, %v", len(ls), err)
	}
}
