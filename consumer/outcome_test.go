package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

// replayGroup is a group of the orders topic with its dead-letter and
// replay topics, and the test's own view of the group's ledger (an
// operator's).
type replayGroup struct {
	*env
	group, dlt, replay string
}

func (e *env) replayGroup(group string, partitions int32) *replayGroup {
	e.t.Helper()
	g := &replayGroup{env: e, group: group, dlt: wire.DeadLetterTopic("orders", group), replay: wire.ReplayTopic("orders", group)}
	e.topics(partitions, "orders", g.dlt, g.replay)
	return g
}

// ledger opens the group's ledger, creating its topic.
func (g *replayGroup) ledger() *deadletter.Ledger {
	g.t.Helper()
	l, err := deadletter.OpenLedger(context.Background(), g.cl, g.adm, g.group)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(l.Close)
	return l
}

// replayOf records an operator's replay of the dead letter dl in l, then
// sends its replay record, which it returns as written.
func (g *replayGroup) replayOf(l *deadletter.Ledger, dl *kgo.Record) *kgo.Record {
	g.t.Helper()
	if l != nil {
		g.record(l, wire.DeadLetterID(dl), wire.ActionReplay, "")
	}
	d, err := wire.ParseDeadLetter(dl)
	if err != nil {
		g.t.Fatal(err)
	}
	rec, err := wire.ReplayRecord(d, time.Now())
	if err != nil {
		g.t.Fatal(err)
	}
	if err := g.cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
		g.t.Fatal(err)
	}
	return rec
}

// record appends an operator's entry to the dead letter id.
func (g *replayGroup) record(l *deadletter.Ledger, id string, kind wire.LedgerEntryKind, reason string) {
	g.t.Helper()
	if _, err := l.Record(context.Background(), id, wire.LedgerEntry{Kind: kind, At: time.Now(), Actor: "alice", Reason: reason}); err != nil {
		g.t.Fatal(err)
	}
}

// state returns the dead letter id's ledger record (state open, no
// history, when it has none).
func state(t testing.TB, l *deadletter.Ledger, id string) wire.LedgerRecord {
	t.Helper()
	st, err := l.States(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := st[id]; ok {
		return r
	}
	return wire.LedgerRecord{State: wire.LedgerOpen}
}

// last returns the last entry of r's history.
func last(t testing.TB, r wire.LedgerRecord) wire.LedgerEntry {
	t.Helper()
	if len(r.History) == 0 {
		t.Fatalf("%s: no history", r.ID)
	}
	return r.History[len(r.History)-1]
}

// doomed is a handler of orders that fails the "doomed" orders
// permanently while broken is set (it is at first), and counts their
// runs.
type doomed struct {
	broken atomic.Bool
	runs   atomic.Int32
}

func newDoomed() *doomed {
	d := new(doomed)
	d.broken.Store(true)
	return d
}

// doomedConsumer returns a consumer of the group with d's handler.
func (g *replayGroup) doomedConsumer(d *doomed, opts ...consumer.Option) *consumer.Consumer {
	c := g.consumer(g.group, opts...)
	consumer.Handle(c, orderPlaced, func(_ context.Context, o *Order, _ bus.Meta) error {
		if o.Note != "doomed" {
			return nil
		}
		d.runs.Add(1)
		if d.broken.Load() {
			return consumer.Permanent(errors.New("account 42 frozen"))
		}
		return nil
	})
	return c
}

// deadLetters publishes n doomed orders and returns their dead letters
// (a running doomedConsumer writes them).
func (g *replayGroup) deadLetters(n int) []*kgo.Record {
	g.t.Helper()
	var evs []any
	for i := range n {
		evs = append(evs, &Order{OrderID: orderKey(i), Note: "doomed"})
	}
	g.publish(evs...)
	return g.read(g.dlt, n)[:n]
}

// TestReplayOutcomesInLedger: the consumer writes what became of each
// replay to the group's ledger. A replay that fails again marks its dead
// letter failed-again, naming the new dead letter (open); at the third
// replay (MaxReplays' default) the new dead letter is parked; a replay
// handled resolves its dead letter. Offsets are committed past them all.
func TestReplayOutcomesInLedger(t *testing.T) {
	g := start(t).replayGroup("billing", 1)
	d := newDoomed()
	c := g.doomedConsumer(d)
	run(t, c)
	l := g.ledger()

	dls := g.deadLetters(1)
	for round := 1; round <= 3; round++ {
		old := wire.DeadLetterID(dls[round-1])
		g.replayOf(l, dls[round-1])
		waitFor(t, "the replay failed again", func() bool { return state(t, l, old).State == wire.LedgerFailedAgain })
		dls = g.read(g.dlt, round+1)
		next := wire.DeadLetterID(dls[round])
		e := last(t, state(t, l, old))
		if e.Kind != wire.OutcomeFailed || e.Record != next || e.Error != "account 42 frozen" || e.Actor != "consumer billing" {
			t.Fatalf("round %d: %s's last entry %+v; want failed by consumer billing, record %s, error account 42 frozen", round, old, e, next)
		}
		if round < 3 {
			if r := state(t, l, next); r.State != wire.LedgerOpen {
				t.Fatalf("round %d: new dead letter %s is %s, want open (replayed %d times, fewer than 3)", round, next, r.State, round)
			}
			continue
		}
		waitFor(t, "the loop guard's park", func() bool { return state(t, l, next).State == wire.LedgerParked })
		if e := last(t, state(t, l, next)); e.Kind != wire.ActionPark || e.Reason != "loop guard: failed after 3 replays" || e.Actor != "consumer billing" {
			t.Fatalf("parked %s with %+v", next, e)
		}
	}

	// Fixed: the parked one, replayed by id, is handled.
	d.broken.Store(false)
	parked := wire.DeadLetterID(dls[3])
	rep := g.replayOf(l, dls[3])
	waitFor(t, "the replay resolved", func() bool { return state(t, l, parked).State == wire.LedgerResolved })
	if e := last(t, state(t, l, parked)); e.Kind != wire.OutcomeHandled || e.Record != wire.DeadLetterID(rep) || e.Reason != "" {
		t.Errorf("resolved %s with %+v; want handled, record %s", parked, e, wire.DeadLetterID(rep))
	}
	waitFor(t, "the replay topic committed", func() bool { return g.committed(g.group, g.replay)[0] == 4 })
	if n := d.runs.Load(); n != 5 {
		t.Errorf("the doomed order ran %d times, want 5 (once, then 4 replays)", n)
	}
}

// TestReplayOutcomeMaxReplays: MaxReplays sets the loop guard's limit;
// with static membership the actor names the instance.
func TestReplayOutcomeMaxReplays(t *testing.T) {
	g := start(t).replayGroup("guarded", 1)
	d := newDoomed()
	c := g.doomedConsumer(d, consumer.MaxReplays(1), consumer.Kafka(kgo.InstanceID("host-1")))
	run(t, c)
	l := g.ledger()
	g.replayOf(l, g.deadLetters(1)[0])
	next := wire.DeadLetterID(g.read(g.dlt, 2)[1])
	waitFor(t, "the new dead letter parked", func() bool { return state(t, l, next).State == wire.LedgerParked })
	if e := last(t, state(t, l, next)); e.Reason != "loop guard: failed after 1 replays" || e.Actor != "consumer guarded/host-1" {
		t.Errorf("parked with %+v", e)
	}
}

// TestReplayOutcomeRedelivered: a replay record delivered again (its
// offset not committed when its consumer stopped) writes no second
// entry.
func TestReplayOutcomeRedelivered(t *testing.T) {
	g := start(t).replayGroup("again", 1)
	d := newDoomed()
	c := g.doomedConsumer(d)
	run(t, c)
	l := g.ledger()
	dl := g.deadLetters(1)[0]
	id := wire.DeadLetterID(dl)
	d.broken.Store(false)
	g.replayOf(l, dl)
	waitFor(t, "the replay resolved", func() bool { return state(t, l, id).State == wire.LedgerResolved })
	waitFor(t, "the replay topic committed", func() bool { return g.committed(g.group, g.replay)[0] == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	written := g.count(wire.LedgerTopic(g.group))

	// As if the consumer had crashed before its commit.
	var back kadm.Offsets
	back.Add(kadm.Offset{Topic: g.replay, Partition: 0, At: 0, LeaderEpoch: -1})
	if resp, err := g.adm.CommitOffsets(ctx, g.group, back); err != nil || resp.Error() != nil {
		t.Fatalf("rewinding the group: %v, %v", err, resp.Error())
	}
	c2 := g.doomedConsumer(d)
	run(t, c2)
	waitFor(t, "the replay handled again and committed", func() bool {
		return d.runs.Load() == 3 && g.committed(g.group, g.replay)[0] == 1
	})
	if n := g.count(wire.LedgerTopic(g.group)); n != written {
		t.Errorf("the ledger holds %d records after the redelivery, %d before", n, written)
	}
	if r := state(t, l, id); r.Seq != 2 || r.State != wire.LedgerResolved {
		t.Errorf("%s: seq %d, state %s; want 2 entries (replay, handled), resolved", id, r.Seq, r.State)
	}
	if s := c2.Stats(); s.LedgerRefused != 0 {
		t.Errorf("Stats.LedgerRefused = %d, want 0: a repeat is no refusal", s.LedgerRefused)
	}
}

// TestReplayOutcomeRefused: an outcome the ledger's state machine refuses
// (the dead letter was discarded meanwhile) is logged at WARN with the
// dead letter's id and left out; the partition goes on.
func TestReplayOutcomeRefused(t *testing.T) {
	g := start(t).replayGroup("refused", 1)
	var logs logBuffer
	d := newDoomed()
	c := g.doomedConsumer(d, consumer.Logger(slog.New(slog.NewTextHandler(&logs, nil))))
	run(t, c)
	l := g.ledger()
	dls := g.deadLetters(2)
	discarded, other := wire.DeadLetterID(dls[0]), wire.DeadLetterID(dls[1])
	d.broken.Store(false)
	g.record(l, discarded, wire.ActionDiscard, "test order")
	g.replayOf(nil, dls[0]) // sent around the ledger
	// A replay record naming no dead letter of the group.
	forged := g.replayOf(nil, dls[0])
	forged.Headers = slices.DeleteFunc(forged.Headers, func(h kgo.RecordHeader) bool { return h.Key == wire.HeaderReplayOf })
	forged.Headers = append(forged.Headers, kgo.RecordHeader{Key: wire.HeaderReplayOf, Value: []byte("orders.other.dlt/0/0")})
	g.produce(g.replay, forged)
	g.replayOf(l, dls[1])
	waitFor(t, "the next replay resolved", func() bool { return state(t, l, other).State == wire.LedgerResolved })
	waitFor(t, "the replay topic committed past them all", func() bool { return g.committed(g.group, g.replay)[0] == 4 })
	if r := state(t, l, discarded); r.State != wire.LedgerDiscarded || r.Seq != 1 {
		t.Errorf("%s: %s after %d entries, want discarded after 1", discarded, r.State, r.Seq)
	}
	if s := c.Stats(); s.LedgerRefused != 3 {
		t.Errorf("Stats.LedgerRefused = %d, want 3 (the discarded one twice, the forged one)", s.LedgerRefused)
	}
	if st, err := l.States(context.Background()); err != nil || len(st) != 2 {
		t.Errorf("the ledger holds %d dead letters (%v), want 2", len(st), err)
	}
	out := logs.String()
	if !strings.Contains(out, "level=WARN msg=\"consumer: the dead-letter ledger refuses the replay's outcome; left out\"") ||
		!strings.Contains(out, "dead_letter="+discarded) || !strings.Contains(out, "state=discarded") ||
		!strings.Contains(out, "dead_letter=orders.other.dlt/0/0") {
		t.Errorf("no WARN naming %s and the forged id:\n%s", discarded, out)
	}
}

// TestReplayOutcomeLedgerDown: while the ledger cannot be written (its
// topic is not compacted, so no writer opens it), a handled replay's
// outcome waits, its offset is not committed, and the other partitions go
// on; once the topic is fixed, the outcome is written and the offset
// committed.
func TestReplayOutcomeLedgerDown(t *testing.T) {
	g := start(t).replayGroup("down", 2)
	d := newDoomed()
	c := g.doomedConsumer(d)
	run(t, c)
	l := g.ledger()
	dl := g.deadLetters(1)[0]
	id := wire.DeadLetterID(dl)
	d.broken.Store(false)
	g.record(l, id, wire.ActionReplay, "")
	policy := func(p string) {
		t.Helper()
		rs, err := g.adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: &p}}, wire.LedgerTopic(g.group))
		if err == nil {
			_, err = rs.On(wire.LedgerTopic(g.group), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	policy("delete")
	g.replayOf(nil, dl)
	waitFor(t, "the replay handled and its outcome retried", func() bool { return d.runs.Load() == 2 && c.Stats().LedgerWaits >= 2 })

	before := g.committed(g.group, "orders")
	g.publish(orders(8, 1)...) // both partitions
	waitFor(t, "the orders committed meanwhile", func() bool {
		now := g.committed(g.group, "orders")
		return now[0]+now[1] == before[0]+before[1]+8
	})
	if n := g.committed(g.group, g.replay); n[0]+n[1] != 0 {
		t.Fatalf("replay topic committed %v before its outcome was written", n)
	}
	if r := state(t, l, id); r.State != wire.LedgerReplaying {
		t.Fatalf("%s is %s while the ledger is down", id, r.State)
	}

	policy("compact")
	waitFor(t, "the replay resolved", func() bool { return state(t, l, id).State == wire.LedgerResolved })
	waitFor(t, "the replay topic committed", func() bool {
		n := g.committed(g.group, g.replay)
		return n[0]+n[1] == 1
	})
	if n := d.runs.Load(); n != 2 {
		t.Errorf("the doomed order ran %d times, want 2: the outcome waits, not the record", n)
	}
}

// TestReplayOutcomeBatch: batched transactional handlers report the
// outcome of every replay they settle: handled, a duplicate the
// processed-message table skipped, and one that failed again.
func TestReplayOutcomeBatch(t *testing.T) {
	g := start(t).replayGroup("batch", 1)
	db := openDB(t, sqliteDB)
	var fixed atomic.Bool
	c := g.consumer(g.group)
	eff := effect(db.d, g.group)
	db.handle(c, func(ctx context.Context, q sqldb.Querier, o *Order, m bus.Meta) error {
		if o.Note == "never" || o.Note == "doomed" && !fixed.Load() {
			return consumer.Permanent(errors.New("account 42 frozen"))
		}
		return eff(ctx, q, o, m)
	}, consumer.Batch(10))
	run(t, c)
	l := g.ledger()
	g.publish(&Order{OrderID: "o-1", Note: "fine"}, &Order{OrderID: "o-2", Note: "doomed"}, &Order{OrderID: "o-3", Note: "never"})
	g.read(g.dlt, 2)
	// A dead letter of a record its group had processed (dead-lettered
	// by a version that failed after its transaction, say).
	fine := g.read("orders", 1)[0]
	stale := wire.DeadLetterRecord(fine, wire.Origin{Topic: "orders", Partition: fine.Partition, Offset: fine.Offset, Timestamp: fine.Timestamp},
		g.group, wire.KindPermanent, 1, errors.New("lost its answer"), time.Now())
	if err := g.cl.ProduceSync(context.Background(), stale).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dls := g.read(g.dlt, 3)
	fixed.Store(true)
	var ids []string
	for _, dl := range dls[:3] {
		id := wire.DeadLetterID(dl)
		ids = append(ids, id)
		g.record(l, id, wire.ActionReplay, "")
	}
	var reps []*kgo.Record
	for _, dl := range dls[:3] {
		d, err := wire.ParseDeadLetter(dl)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := wire.ReplayRecord(d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		reps = append(reps, rep)
	}
	if err := g.cl.ProduceSync(context.Background(), reps...).FirstErr(); err != nil { // one fetch, one batch
		t.Fatal(err)
	}
	waitFor(t, "every replay's outcome", func() bool {
		st, err := l.States(context.Background())
		return err == nil && st[ids[0]].State == wire.LedgerResolved && st[ids[1]].State == wire.LedgerFailedAgain && st[ids[2]].State == wire.LedgerResolved
	})
	if e := last(t, state(t, l, ids[0])); e.Kind != wire.OutcomeHandled || e.Record != wire.DeadLetterID(reps[0]) || e.Reason != "" {
		t.Errorf("handled: %+v", e)
	}
	again := g.read(g.dlt, 4)[3]
	if e := last(t, state(t, l, ids[1])); e.Kind != wire.OutcomeFailed || e.Record != wire.DeadLetterID(again) || e.Error != "account 42 frozen" {
		t.Errorf("failed again: %+v; want record %s", e, wire.DeadLetterID(again))
	}
	if e := last(t, state(t, l, ids[2])); e.Kind != wire.OutcomeHandled || e.Record != wire.DeadLetterID(reps[2]) || e.Reason != "processed before: skipped as a duplicate" {
		t.Errorf("duplicate: %+v", e)
	}
	waitFor(t, "the replay topic committed", func() bool { return g.committed(g.group, g.replay)[0] == 3 })
	if s := c.Stats(); s.Duplicates != 1 {
		t.Errorf("Stats.Duplicates = %d, want 1", s.Duplicates)
	}
}

// TestReplayOutcomeNoLedger: a group that reads no replay record never
// creates its ledger, even for records of its topic that carry a
// dlt-replay-of header (only replay and retry topics carry replays).
func TestReplayOutcomeNoLedger(t *testing.T) {
	g := start(t).replayGroup("plain", 1)
	d := newDoomed()
	c := g.doomedConsumer(d)
	run(t, c)
	rec, err := g.encoder().Record(context.Background(), &Order{OrderID: "o-2", Note: "forged"})
	if err != nil {
		t.Fatal(err)
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: wire.HeaderReplayOf, Value: []byte(g.dlt + "/0/0")})
	g.publish(&Order{OrderID: "o-1", Note: "doomed"})
	g.produce("orders", rec)
	waitFor(t, "both settled and committed", func() bool { return g.committed(g.group, "orders")[0] == 2 })
	if s := c.Stats(); s.Handled != 1 || s.DeadLettered[wire.KindPermanent] != 1 {
		t.Fatalf("stats %+v", s)
	}
	tds, err := g.adm.ListTopics(context.Background(), wire.LedgerTopic(g.group))
	if err != nil {
		t.Fatal(err)
	}
	if tds.Has(wire.LedgerTopic(g.group)) {
		t.Errorf("%s exists: a group without replays created its ledger", wire.LedgerTopic(g.group))
	}
}

// TestReplayOutcomeThroughRetryTopic: a replay its handler gives up on
// goes to the retry topic, carrying its dead letter's id on; its outcome
// is written when the retry record settles.
func TestReplayOutcomeThroughRetryTopic(t *testing.T) {
	g := start(t).replayGroup("retried", 1)
	retry1 := wire.RetryTopic("orders", g.group, 1)
	g.topics(1, retry1)
	var replayed atomic.Bool
	c := g.consumer(g.group)
	consumer.Handle(c, orderPlaced, func(_ context.Context, o *Order, m bus.Meta) error {
		for _, h := range m.Headers {
			if wire.IsRetryHeader(h.Key) {
				return nil // handled in the retry topic
			}
		}
		if !replayed.Load() {
			return consumer.Permanent(errors.New("account 42 frozen"))
		}
		return errors.New("flaky")
	}, consumer.RetryTopics(10*time.Millisecond))
	run(t, c)
	l := g.ledger()
	dl := g.deadLetters(1)[0]
	id := wire.DeadLetterID(dl)
	replayed.Store(true)
	g.replayOf(l, dl)
	waitFor(t, "the replay resolved", func() bool { return state(t, l, id).State == wire.LedgerResolved })
	rec := g.read(retry1, 1)[0]
	if e := last(t, state(t, l, id)); e.Kind != wire.OutcomeHandled || e.Record != wire.DeadLetterID(rec) {
		t.Errorf("resolved with %+v; want handled, record %s (the retry record)", e, wire.DeadLetterID(rec))
	}
	if s := c.Stats(); s.RetryTopic != 1 || s.Handled != 1 {
		t.Errorf("stats %+v; want the replay sent to the retry topic once, then handled", s)
	}
}

// TestReplayOutcomeCloseDuringOutage: Close does not wait for a ledger
// that cannot be written longer than DrainTimeout; the replay's offset
// stays uncommitted, so the next member writes its outcome.
func TestReplayOutcomeCloseDuringOutage(t *testing.T) {
	g := start(t).replayGroup("closing", 1)
	if err := bus.CreateTopics(context.Background(), g.adm, bus.TopicSpec{
		Name: wire.LedgerTopic(g.group), Partitions: 1, Configs: map[string]string{"cleanup.policy": "delete"},
	}); err != nil {
		t.Fatal(err)
	}
	d := newDoomed()
	c := g.doomedConsumer(d, consumer.DrainTimeout(100*time.Millisecond))
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	dl := g.deadLetters(1)[0]
	d.broken.Store(false)
	g.replayOf(nil, dl)
	waitFor(t, "the replay handled, its outcome waiting", func() bool { return d.runs.Load() == 2 && c.Stats().LedgerWaits >= 1 })
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := g.committed(g.group, g.replay); n[0] != 0 {
		t.Errorf("the replay topic committed at %d without its outcome", n[0])
	}
	if n := g.committed(g.group, "orders"); n[0] != 1 {
		t.Errorf("orders committed at %d, want 1", n[0])
	}
}

// TestReplayOutcomeSkipped: a replay of a type the group has no handler
// for is skipped (Unhandled's default), and that settles its dead letter:
// handled, saying so.
func TestReplayOutcomeSkipped(t *testing.T) {
	g := start(t).replayGroup("skipping", 1)
	c := g.doomedConsumer(newDoomed())
	run(t, c)
	l := g.ledger()
	g.publish(&Shipped{OrderID: "o-1"})
	shipped := g.read("orders", 1)[0]
	// Dead-lettered by a version that handled the type.
	dl := wire.DeadLetterRecord(shipped, wire.Origin{Topic: "orders", Partition: shipped.Partition, Offset: shipped.Offset, Timestamp: shipped.Timestamp},
		g.group, wire.KindPermanent, 1, errors.New("carrier down"), time.Now())
	if err := g.cl.ProduceSync(context.Background(), dl).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := wire.DeadLetterID(dl)
	rep := g.replayOf(l, dl)
	waitFor(t, "the replay resolved", func() bool { return state(t, l, id).State == wire.LedgerResolved })
	if e := last(t, state(t, l, id)); e.Kind != wire.OutcomeHandled || e.Record != wire.DeadLetterID(rep) || e.Reason != "skipped: no handler for its type" {
		t.Errorf("resolved with %+v", e)
	}
	if s := c.Stats(); s.Skipped != 2 {
		t.Errorf("Stats.Skipped = %d, want 2 (the record, its replay)", s.Skipped)
	}
}

// TestReplayOutcomeForgedThroughRetryTopic: a record of the topic itself
// is no replay, whatever dlt-replay-of it carries, and it stays none on
// its way through a retry topic: handling it there writes nothing to the
// ledger of the dead letter it names.
func TestReplayOutcomeForgedThroughRetryTopic(t *testing.T) {
	g := start(t).replayGroup("forged", 1)
	retry1 := wire.RetryTopic("orders", g.group, 1)
	g.topics(1, retry1)
	d := newDoomed()
	c := g.consumer(g.group)
	consumer.Handle(c, orderPlaced, func(_ context.Context, o *Order, m bus.Meta) error {
		for _, h := range m.Headers {
			if wire.IsRetryHeader(h.Key) {
				return nil // handled in the retry topic
			}
		}
		if d.broken.Load() {
			return consumer.Permanent(errors.New("account 42 frozen"))
		}
		return errors.New("flaky")
	}, consumer.RetryTopics(10*time.Millisecond))
	run(t, c)
	l := g.ledger()
	dl := g.deadLetters(1)[0]
	id := wire.DeadLetterID(dl)
	d.broken.Store(false)
	g.record(l, id, wire.ActionReplay, "") // its replay is awaited
	// Another producer's record of orders naming the dead letter.
	dd, err := wire.ParseDeadLetter(dl)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := wire.ReplayRecord(dd, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged.Topic = "orders"
	g.produce("orders", forged)
	waitFor(t, "the forged record handled in the retry topic", func() bool {
		return c.Stats().Handled == 1 && g.committed(g.group, retry1)[0] == 1
	})
	if r := state(t, l, id); r.State != wire.LedgerReplaying || r.Seq != 1 {
		t.Errorf("%s: %s after %d entries, want replaying after 1 (the forged record's outcome left out)", id, r.State, r.Seq)
	}
	if rec := g.read(retry1, 1)[0]; wire.ReplayOf(rec) != "" {
		t.Errorf("the retry record carries %s %q, want none", wire.HeaderReplayOf, wire.ReplayOf(rec))
	}
}
