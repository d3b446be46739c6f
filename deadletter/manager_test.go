package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// deadLetters writes n dead letters of group's for topic "orders" to
// partition p of its dead-letter topic, failed at failedAt plus i
// minutes, with key "k<i>", ce_id "<prefix>-<i>", the error text errText
// and kind; replays is their dlt-replay-count (0: none). It returns
// their ids.
func deadLetters(t *testing.T, cl *kgo.Client, p int32, n int, prefix, errText string, kind wire.FailureKind, replays int, failedAt time.Time) []string {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		hs := []kgo.RecordHeader{{Key: wire.HeaderID, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}, {Key: wire.HeaderType, Value: []byte("com.example.OrderPlaced")}}
		if replays > 0 {
			hs = append(hs, kgo.RecordHeader{Key: wire.HeaderReplayCount, Value: fmt.Append(nil, replays)})
		}
		failed := &kgo.Record{Topic: "orders", Partition: p, Offset: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"), Headers: hs}
		recs[i] = wire.DeadLetterRecord(failed, wire.Origin{Topic: "orders", Partition: p, Offset: int64(i), Timestamp: failedAt},
			group, kind, 3, errors.New(errText), failedAt.Add(time.Duration(i)*time.Minute))
		recs[i].Partition = p
	}
	rs := cl.ProduceSync(context.Background(), recs...)
	if err := rs.FirstErr(); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i, r := range rs {
		ids[i] = wire.DeadLetterID(r.Record)
	}
	return ids
}

// managerStack starts a broker with topic orders (2 partitions) and its
// dead-letter and replay topics for group, and returns a client writing
// to chosen partitions.
func managerStack(t *testing.T) ([]string, *kgo.Client) {
	t.Helper()
	brokers := startKafka(t)
	cl, adm := clients(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := bus.CreateTopics(context.Background(), adm, bus.TopicSpec{Name: "orders", Partitions: 2, DeadLetterGroups: []string{group}}); err != nil {
		t.Fatal(err)
	}
	return brokers, cl
}

func newManager(t *testing.T, cl *kgo.Client, opts ...deadletter.ManagerOption) *deadletter.Manager {
	t.Helper()
	m, err := deadletter.NewManager(context.Background(), cl, group, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func ids(ls []deadletter.Letter) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

// The Manager follows the group's dead letters, its ledger and its
// replays: what another client writes after NewManager shows in the next
// call. Reading creates no ledger topic.
func TestManagerFollows(t *testing.T) {
	brokers, cl := managerStack(t)
	ctx := context.Background()
	timeouts := deadLetters(t, cl, 0, 3, "t", "call to 10.0.0.7:443 timed out after 30s", wire.KindRetriesExhausted, 0, at)
	m := newManager(t, cl)
	gs, err := m.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 1 || gs[0].Count != 3 || gs[0].States[wire.LedgerOpen] != 3 {
		t.Fatalf("Groups: %+v", gs)
	}
	if tds, err := kadm.NewClient(cl).ListTopics(ctx, wire.LedgerTopic(group)); err != nil || tds.Has(wire.LedgerTopic(group)) {
		t.Fatalf("reading created the ledger topic (%v)", err)
	}

	// Written after NewManager, by others: a dead letter of a new cause,
	// a ledger entry, a replay record.
	poison := deadLetters(t, cl, 1, 1, "p", "avro: bad union index 7", wire.KindPoison, 0, at.Add(time.Hour))
	other, otherAdm := clients(t, brokers)
	l := open(t, other, otherAdm)
	record(t, l, timeouts[1], wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "hold"})
	record(t, l, timeouts[2], wire.LedgerEntry{Kind: wire.ActionReplay, At: at, Actor: "bob", Operation: "op-1"})
	ls, err := m.List(ctx, deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(timeouts), poison...); !slices.Equal(ids(ls), want) {
		t.Fatalf("List(All) = %v, want %v (oldest failure first)", ids(ls), want)
	}
	if ls[1].State != wire.LedgerParked || ls[1].Ledger.History[0].Actor != "bob" || ls[0].State != wire.LedgerOpen || ls[3].Fingerprint.Kind != wire.KindPoison {
		t.Fatalf("states: %+v", ls)
	}
	if ls[2].Sent != 0 {
		t.Fatalf("no replay record yet, Sent %d", ls[2].Sent)
	}
	var d wire.DeadLetter
	for _, x := range ls {
		if x.ID == timeouts[2] {
			d = x.DeadLetter
		}
	}
	rec, err := wire.ReplayRecord(d, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, timeouts[2])
	if err != nil {
		t.Fatal(err)
	}
	if got.State != wire.LedgerReplaying || got.Sent != 1 || got.Replays != 1 || string(got.Record.Key) != "k2" {
		t.Fatalf("Get after a replay record: state %s, sent %d, replays %d", got.State, got.Sent, got.Replays)
	}
	gs, err = m.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs[0].Count != 3 || gs[1].Count != 1 ||
		gs[0].States[wire.LedgerOpen] != 1 || gs[0].States[wire.LedgerParked] != 1 || gs[0].States[wire.LedgerReplaying] != 1 {
		t.Fatalf("Groups after: %+v", gs)
	}
	if _, err := m.Get(ctx, "orders.billing.dlt/0/99"); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v", err)
	}
}

// Each criterion of a Selection narrows it; the zero Selection selects
// nothing; unknown ids are ErrNotFound.
func TestManagerSelection(t *testing.T) {
	_, cl := managerStack(t)
	ctx := context.Background()
	a := deadLetters(t, cl, 0, 4, "a", "order 17 not found", wire.KindPermanent, 0, at)
	b := deadLetters(t, cl, 1, 2, "b", "avro: bad union index 7", wire.KindPoison, 2, at.Add(10*time.Minute))
	m := newManager(t, cl)
	fp, err := m.Get(ctx, a[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sel  deadletter.Selection
		want []string
	}{
		{"zero", deadletter.Selection{}, nil},
		{"all", deadletter.Selection{All: true}, []string{a[0], a[1], a[2], a[3], b[0], b[1]}},
		{"fingerprint", deadletter.Selection{Fingerprint: fp.Fingerprint.ID}, a},
		{"kind", deadletter.Selection{Kind: wire.KindPoison}, b},
		{"key", deadletter.Selection{Key: "k1"}, []string{a[1], b[1]}},
		{"type and topic", deadletter.Selection{Type: "com.example.OrderPlaced", Topic: "orders", Kind: wire.KindPermanent}, a},
		{"other topic", deadletter.Selection{Topic: "payments"}, nil},
		{"window", deadletter.Selection{FailedFrom: at.Add(time.Minute), FailedTo: at.Add(3 * time.Minute)}, []string{a[1], a[2]}},
		{"offsets", deadletter.Selection{Offsets: &deadletter.OffsetRange{Topic: "orders.billing.dlt", Partition: 0, From: 1, To: 2}}, []string{a[1], a[2]}},
		{"offsets of every topic", deadletter.Selection{Offsets: &deadletter.OffsetRange{Partition: 1, From: 0, To: 0}}, []string{b[0]}},
		{"ids", deadletter.Selection{IDs: []string{b[1], a[3], b[1]}}, []string{a[3], b[1]}},
		{"ids narrowed", deadletter.Selection{IDs: []string{b[1], a[3]}, Kind: wire.KindPoison}, []string{b[1]}},
		{"states", deadletter.Selection{Kind: wire.KindPoison, States: []wire.LedgerState{wire.LedgerParked}}, nil},
	} {
		ls, err := m.List(ctx, c.sel)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !slices.Equal(ids(ls), c.want) {
			t.Errorf("%s: List = %v, want %v", c.name, ids(ls), c.want)
		}
	}
	if _, err := m.List(ctx, deadletter.Selection{IDs: []string{a[0], "orders.billing.dlt/1/99"}}); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("an unknown id: %v", err)
	}
	if _, err := m.List(ctx, deadletter.Selection{Offsets: &deadletter.OffsetRange{From: 5, To: 2}}); err == nil {
		t.Fatal("an empty offset range is accepted")
	}
	if ls, _ := m.List(ctx, deadletter.Selection{IDs: []string{b[0]}}); len(ls) != 1 || ls[0].Replays != 2 {
		t.Fatalf("replay count of a letter replayed twice: %+v", ls)
	}
}

// A group without a dead-letter topic is a NoTopicError naming those
// with one; the Manager starts all the same, and sees the topic once
// created.
func TestManagerNoTopic(t *testing.T) {
	brokers := startKafka(t)
	cl, adm := clients(t, brokers)
	ctx := context.Background()
	if err := bus.CreateTopics(ctx, adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{"shipping"}}); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, cl)
	var nt *deadletter.NoTopicError
	if _, err := m.Groups(ctx); !errors.As(err, &nt) || !slices.Equal(nt.Groups, []string{"shipping"}) {
		t.Fatalf("Groups without a dead-letter topic: %v", err)
	}
	if err := bus.CreateTopics(ctx, adm, bus.TopicSpec{Name: "orders", Partitions: 1, DeadLetterGroups: []string{group}}); err != nil {
		t.Fatal(err)
	}
	deadLetters(t, cl, 0, 1, "x", "boom", wire.KindPermanent, 0, at)
	gs, err := m.Groups(ctx)
	if err != nil || len(gs) != 1 {
		t.Fatalf("Groups once the topic exists: %+v, %v", gs, err)
	}
}

// Warn reports a ledger record written on a stale base as it is read,
// and a ledger record that does not parse.
func TestManagerWarnsStaleAndBadLedgerRecords(t *testing.T) {
	_, cl := managerStack(t)
	ids := deadLetters(t, cl, 0, 1, "e", "boom", wire.KindPermanent, 0, at)
	open(t, cl, kadm.NewClient(cl)) // the ledger topic
	var warns []error
	m := newManager(t, cl, deadletter.Warn(func(err error) { warns = append(warns, err) }))
	r, err := wire.AppendLedgerEntry(wire.NewLedgerRecord(group, ids[0]), wire.LedgerEntry{Kind: wire.ActionPark, At: at, Actor: "bob", Reason: "hold"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := wire.LedgerKafkaRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	again := *rec // a second writer on the same, empty base: seq 1 after seq 1
	bad := &kgo.Record{Topic: wire.LedgerTopic(group), Key: []byte(ids[0] + "x"), Value: []byte("not json")}
	if err := cl.ProduceSync(context.Background(), rec, &again, bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(context.Background(), ids[0]); err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 || !errors.Is(warns[0], deadletter.ErrStaleWrite) || !errors.Is(warns[1], wire.ErrLedgerRecord) {
		t.Fatalf("warnings %v, want a stale write and a record that does not parse", warns)
	}
}

// A dead letter of a transaction that aborted was never written: the
// Manager does not list it, and a transaction still open does not hold
// up its reads.
func TestManagerSkipsAbortedDeadLetters(t *testing.T) {
	brokers, cl := managerStack(t)
	want := deadLetters(t, cl, 0, 1, "e", "boom", wire.KindPermanent, 0, at)
	txn, _ := clients(t, brokers, kgo.TransactionalID("dlt-writer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	for _, abort := range []bool{true, false} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		deadLetters(t, txn, 0, 2, "aborted", "boom", wire.KindPermanent, 0, at)
		if abort {
			if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := newManager(t, cl)
	ls, err := m.List(ctx, deadletter.Selection{All: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ls); !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
}
