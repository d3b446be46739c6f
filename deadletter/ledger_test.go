package deadletter_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

const group = "billing"

var at = time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC)

// startKafka starts an in-process broker and returns its addresses.
func startKafka(t *testing.T) []string {
	t.Helper()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	return kafka.ListenAddrs()
}

// clients returns a client and its admin client, closed when t ends.
func clients(t *testing.T, brokers []string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func open(t *testing.T, cl *kgo.Client, adm *kadm.Client) *deadletter.Ledger {
	t.Helper()
	l, err := deadletter.OpenLedger(context.Background(), cl, adm, group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func record(t *testing.T, l *deadletter.Ledger, id string, e wire.LedgerEntry) wire.LedgerRecord {
	t.Helper()
	r, err := l.Record(context.Background(), id, e)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// OpenLedger creates the group's ledger compacted, with one partition.
func TestOpenLedgerCreatesCompactedTopic(t *testing.T) {
	cl, adm := clients(t, startKafka(t))
	l := open(t, cl, adm)
	if l.Topic() != "billing.dlt-ledger" {
		t.Fatalf("topic %s", l.Topic())
	}
	ctx := context.Background()
	rcs, err := adm.DescribeTopicConfigs(ctx, l.Topic())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(l.Topic(), nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("cleanup.policy %q, want compact", policy)
	}
	details, err := adm.ListTopics(ctx, l.Topic())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[l.Topic()].Partitions); n != 1 {
		t.Fatalf("%d partitions, want 1", n)
	}
	// Opening again leaves the topic as it is.
	open(t, cl, adm)
}

// A ledger topic that would delete its records is refused, naming the fix.
func TestOpenLedgerRefusesDeletePolicy(t *testing.T) {
	cl, adm := clients(t, startKafka(t))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, wire.LedgerTopic(group)); err != nil {
		t.Fatal(err)
	}
	_, err := deadletter.OpenLedger(ctx, cl, adm, group)
	if err == nil || !strings.Contains(err.Error(), "cleanup.policy=delete") || !strings.Contains(err.Error(), "needs cleanup.policy=compact") {
		t.Fatalf("OpenLedger on a deleting topic: %v", err)
	}
	if _, err := deadletter.OpenLedger(ctx, cl, adm, "bad group"); !errors.Is(err, wire.ErrTopicName) {
		t.Fatalf("OpenLedger(bad group): %v, want ErrTopicName", err)
	}
}

// What is recorded survives a reopen with new clients: the latest state
// of each dead letter, with its history; the state machine still holds.
func TestLedgerRecordAndStatesAcrossReopen(t *testing.T) {
	brokers := startKafka(t)
	const a, b = "orders.billing.dlt/0/3", "orders.billing.dlt/1/8"
	{
		cl, adm := clients(t, brokers)
		l := open(t, cl, adm)
		record(t, l, a, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice", Operation: "op-1"})
		if r := record(t, l, a, wire.LedgerEntry{Kind: wire.OutcomeHandled, At: at.Add(time.Second), Actor: "consumer billing", Record: "orders.billing.replay/0/0"}); r.State != wire.LedgerResolved || r.Seq != 2 {
			t.Fatalf("after handled: %s seq %d", r.State, r.Seq)
		}
		record(t, l, b, wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "looping"})
		l.Close()
	}
	cl, adm := clients(t, brokers)
	l := open(t, cl, adm)
	states, err := l.States(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states[a].State != wire.LedgerResolved || len(states[a].History) != 2 || states[b].State != wire.LedgerParked {
		t.Fatalf("after reopen: %+v", states)
	}
	if e := states[a].History[0]; e.Actor != "alice" || e.Operation != "op-1" || !e.At.Equal(at) {
		t.Fatalf("first entry of %s: %+v", a, e)
	}
	_, err = l.Record(context.Background(), a, wire.LedgerEntry{Kind: wire.ActionDiscard, At: at, Actor: "bob", Reason: "done"})
	if !errors.Is(err, wire.ErrLedgerTransition) || !strings.Contains(err.Error(), "discard a dead letter in state resolved") {
		t.Fatalf("discard of a resolved dead letter: %v", err)
	}
	if r := record(t, l, b, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "bob"}); r.State != wire.LedgerReplaying || r.Seq != 2 {
		t.Fatalf("replay of the parked one: %s seq %d", r.State, r.Seq)
	}
}

// A foreign record (not JSON) in the ledger is reported with its place;
// the read goes on past it, and its dead letter takes no entry until a
// valid record replaces it.
func TestLedgerForeignRecord(t *testing.T) {
	brokers := startKafka(t)
	cl, adm := clients(t, brokers)
	l := open(t, cl, adm)
	const good, foreign = "orders.billing.dlt/0/1", "orders.billing.dlt/0/2"
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: l.Topic(), Key: []byte(foreign), Value: []byte("{not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	record(t, l, good, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"})
	states, err := l.States(ctx)
	if !errors.Is(err, wire.ErrLedgerRecord) || !strings.Contains(err.Error(), "partition 0 offset 0") || !strings.Contains(err.Error(), foreign) {
		t.Fatalf("States over a foreign record: %v", err)
	}
	if len(states) != 1 || states[good].State != wire.LedgerReplaying {
		t.Fatalf("States past the foreign record: %+v", states)
	}
	_, err = l.Record(ctx, foreign, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"})
	if err == nil || !strings.Contains(err.Error(), "does not parse") {
		t.Fatalf("Record on the foreign record's key: %v", err)
	}
	// A tombstone forgets it: the dead letter is open again.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: l.Topic(), Key: []byte(foreign)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.States(ctx); err != nil {
		t.Fatalf("after the tombstone: %v", err)
	}
	record(t, l, foreign, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"})
}

// Two writers on the same base: the later one's Record says its record
// replaced the other's entry, and a reader sees it too.
func TestLedgerStaleWrite(t *testing.T) {
	brokers := startKafka(t)
	const id = "orders.billing.dlt/0/5"
	rivalCl, rivalAdm := clients(t, brokers)
	rival := open(t, rivalCl, rivalAdm)
	// The rival writes once the first writer has read the ledger but
	// before its record is sent: when its record is buffered.
	var once sync.Once
	hook := bufferedHook(func(r *kgo.Record) {
		if r.Topic != wire.LedgerTopic(group) {
			return
		}
		once.Do(func() {
			record(t, rival, id, wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "hold"})
		})
	})
	cl, adm := clients(t, brokers, kgo.WithHooks(hook))
	l := open(t, cl, adm)
	r, err := l.Record(context.Background(), id, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"})
	if !errors.Is(err, deadletter.ErrStaleWrite) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "seq 1 after seq 1") {
		t.Fatalf("Record on a stale base: %v", err)
	}
	if r.State != wire.LedgerReplaying {
		t.Fatalf("record written: %s", r.State)
	}
	states, err := rival.States(context.Background())
	if !errors.Is(err, deadletter.ErrStaleWrite) {
		t.Fatalf("rival's States: %v, want ErrStaleWrite", err)
	}
	if states[id].State != wire.LedgerReplaying || states[id].History[0].Actor != "alice" {
		t.Fatalf("last write wins: %+v", states[id])
	}
}

type bufferedHook func(*kgo.Record)

func (h bufferedHook) OnProduceRecordBuffered(r *kgo.Record) { h(r) }

// An id that is not a dead letter of the group is refused, naming it,
// and nothing is written.
func TestLedgerRecordRefusesForeignID(t *testing.T) {
	cl, adm := clients(t, startKafka(t))
	l := open(t, cl, adm)
	ctx := context.Background()
	for _, id := range []string{"orders.shipping.dlt/0/1", "orders/0/1", "orders.billing.dlt/0"} {
		_, err := l.Record(ctx, id, wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"})
		if err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("Record(%q): %v, want an error naming the id", id, err)
		}
	}
	if states, err := l.States(ctx); err != nil || len(states) != 0 {
		t.Fatalf("after refused writes: %v, %v", states, err)
	}
}

// A partition added to the ledger topic after it was opened is read too,
// and does not leave the read waiting for it.
func TestLedgerAddedPartition(t *testing.T) {
	brokers := startKafka(t)
	// (About 5 s: the reader's fetch in flight, kgo's FetchMaxWait,
	// ends before the new partition is fetched.)
	cl, adm := clients(t, brokers)
	l := open(t, cl, adm)
	ctx := context.Background()
	record(t, l, "orders.billing.dlt/0/1", wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"})
	if _, err := adm.CreatePartitions(ctx, 1, l.Topic()); err != nil {
		t.Fatal(err)
	}
	manual, _ := clients(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r, err := wire.AppendLedgerEntry(wire.NewLedgerRecord(group, "orders.billing.dlt/0/2"), wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := wire.LedgerKafkaRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	rec.Partition = 1
	if err := manual.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	states, err := l.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 2 || states["orders.billing.dlt/0/2"].State != wire.LedgerParked {
		t.Fatalf("after a partition was added: %+v", states)
	}
}

// RecordAll writes a batch: changes of one dead letter in order, each on
// the one before; a refused change is left out, named by its index, and
// the others are written; another Ledger reads them all.
func TestLedgerRecordAll(t *testing.T) {
	brokers := startKafka(t)
	cl, adm := clients(t, brokers)
	l := open(t, cl, adm)
	const a, b, c = "orders.billing.dlt/0/1", "orders.billing.dlt/0/2", "orders.billing.dlt/1/3"
	record(t, l, c, wire.LedgerEntry{Kind: wire.ActionDiscard, At: at, Actor: "bob", Reason: "obsolete"})
	ctx := context.Background()
	rs, err := l.RecordAll(ctx, []deadletter.Change{
		{ID: a, Entry: wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice", Operation: "op-7"}},
		{ID: c, Entry: wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "alice", Reason: "hold"}}, // discarded: refused
		{ID: b, Entry: wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice", Operation: "op-7"}},
		{ID: a, Entry: wire.LedgerEntry{Kind: wire.OutcomeHandled, At: at.Add(time.Second), Actor: "consumer billing", Record: "orders.billing.replay/0/0"}},
	})
	var ce *deadletter.ChangeError
	if !errors.As(err, &ce) || ce.Index != 1 || ce.ID != c || !errors.Is(err, wire.ErrLedgerTransition) || !strings.Contains(err.Error(), "park a dead letter in state discarded") {
		t.Fatalf("RecordAll with a refused change: %v", err)
	}
	if len(rs) != 4 || rs[0].State != wire.LedgerReplaying || rs[1].ID != "" || rs[2].State != wire.LedgerReplaying || rs[3].State != wire.LedgerResolved || rs[3].Seq != 2 {
		t.Fatalf("records: %+v", rs)
	}
	other, otherAdm := clients(t, brokers)
	states, err := open(t, other, otherAdm).States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if states[a].State != wire.LedgerResolved || len(states[a].History) != 2 || states[a].History[0].Operation != "op-7" ||
		states[b].State != wire.LedgerReplaying || states[c].State != wire.LedgerDiscarded || len(states[c].History) != 1 {
		t.Fatalf("read by another ledger: %+v", states)
	}
	// The writer takes its own records back from what it wrote, not by
	// parsing them: its view must be the one a reader parses.
	own, err := l.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(own, states) {
		t.Fatalf("the writer's view differs from a reader's:\n%+v\n%+v", own, states)
	}
	// Nothing to write is no error; nothing is written.
	if rs, err := l.RecordAll(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("RecordAll(nil): %v, %v", rs, err)
	}
}

// RecordAll sees a stale write as Record does, on the change concerned.
func TestLedgerRecordAllStaleWrite(t *testing.T) {
	brokers := startKafka(t)
	const id, other = "orders.billing.dlt/0/5", "orders.billing.dlt/0/6"
	rivalCl, rivalAdm := clients(t, brokers)
	rival := open(t, rivalCl, rivalAdm)
	var once sync.Once
	hook := bufferedHook(func(r *kgo.Record) {
		if r.Topic != wire.LedgerTopic(group) {
			return
		}
		once.Do(func() {
			record(t, rival, id, wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "hold"})
		})
	})
	cl, adm := clients(t, brokers, kgo.WithHooks(hook))
	l := open(t, cl, adm)
	rs, err := l.RecordAll(context.Background(), []deadletter.Change{
		{ID: other, Entry: wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"}},
		{ID: id, Entry: wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "alice"}},
	})
	var ce *deadletter.ChangeError
	if !errors.Is(err, deadletter.ErrStaleWrite) || !errors.As(err, &ce) || ce.Index != 1 || ce.ID != id {
		t.Fatalf("RecordAll on a stale base: %v", err)
	}
	if rs[0].State != wire.LedgerReplaying || rs[1].State != wire.LedgerReplaying {
		t.Fatalf("records written: %+v", rs)
	}
}
