package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/outbox"
)

// The kill matrix: one part of the system is killed with SIGKILL at one
// point, and the promise holds (system.check). Each test first proves
// that the kill landed where it says.

const group = "effects"

// TestServiceKilledBeforeCommit: the service is killed with a
// transaction open that wrote business rows and outbox rows. The relay
// publishes what committed after those rows got their ids, passing over
// them; they never reach Kafka, and their effects are never applied.
func TestServiceKilledBeforeCommit(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.relay()
	s.consumer(group)

	doomed := keys(0, 3) // writer 0 writes them too, and waits for their locks
	open := s.child(childConfig{Role: "open", Keys: doomed, Seq: 1_000_000})
	var first, n int64
	line := open.next("that its transaction is open")
	if _, err := fmt.Sscanf(line, "open %d %d", &first, &n); err != nil || n != int64(len(doomed)) {
		t.Fatalf("the child said %q", line)
	}
	written := s.writing(4, 10, 0, 60) // 2,400 steps
	waitFor(t, "the relay to publish rows written after the open transaction's", func() (bool, string) {
		p := s.count("SELECT coalesce(max(id), 0) FROM evbus_outbox_published")
		return p > first, fmt.Sprintf("published up to id %d, the open transaction's first id is %d", p, first)
	})
	if n := s.sessions("open", "idle in transaction"); n != 1 {
		t.Fatalf("%d sessions of the child idle in a transaction, want 1: the kill would not land before the commit", n)
	}
	open.kill()
	<-written

	var never []Step
	for _, k := range doomed {
		never = append(never, Step{Key: k, Seq: 1_000_000})
	}
	out := s.check(group, never...)
	if out.Steps != 2400 {
		t.Errorf("%d steps committed, want 2400", out.Steps)
	}
	t.Logf("killed with %d outbox rows open (first id %d) while later rows were published; %+v", n, first, out)
}

// TestServiceKilledAfterCommit: the service commits while no relay runs
// and is killed mid-stream; a relay started later publishes every
// committed event, and nothing of the transaction the kill cut short.
func TestServiceKilledAfterCommit(t *testing.T) {
	t.Parallel()
	s := start(t)
	w := s.child(childConfig{Role: "writer", Keys: keys(0, 40), Seq: 1000}) // far more than it gets to write
	var n int
	for n < 2000 {
		line := w.next("how much it committed")
		if _, err := fmt.Sscanf(line, "committed %d", &n); err != nil {
			t.Fatalf("the writer said %q", line)
		}
	}
	w.kill()
	steps := s.count("SELECT count(*) FROM steps")
	if backlog := s.count("SELECT count(*) FROM evbus_outbox"); steps < 2000 || backlog != steps || s.records() != 0 {
		t.Fatalf("after the kill: %d steps, %d outbox rows unpublished, %d records in Kafka; want at least 2000, all unpublished, none", steps, backlog, s.records())
	}

	s.relay()
	s.consumer(group)
	out := s.check(group)
	if int64(out.Steps) != steps {
		t.Errorf("%d steps after the restart, %d when the writer was killed", out.Steps, steps)
	}
	t.Logf("the writer committed %d steps before the kill; %+v", steps, out)
}

// TestRelayKilledAfterAckBeforeMark: the relay is killed (SIGKILL, from a
// franz-go hook) once Kafka acknowledged a record of a batch it has not
// marked. The next relay publishes that batch again; the consumer skips
// what it already applied, and nothing is lost.
func TestRelayKilledAfterAckBeforeMark(t *testing.T) {
	t.Parallel()
	s := start(t)
	c := s.consumer(group)
	s.write(4, 10, 0, 75) // 3,000 steps
	const batch, killAt = 500, 1250
	r := s.child(childConfig{Role: "relay", BatchSize: batch, KillAfterAcks: killAt})
	if line := r.next("that Kafka acknowledged"); line != fmt.Sprint("acked ", killAt) {
		t.Fatalf("the relay said %q", line)
	}
	r.kill()
	marked := s.count("SELECT count(*) FROM evbus_outbox_published")
	inKafka := s.records()
	if marked >= killAt || inKafka < killAt {
		t.Fatalf("after the kill: %d rows marked, %d records in Kafka; want fewer than %d marked and at least %d acknowledged", marked, inKafka, killAt, killAt)
	}

	s.relay(outbox.BatchSize(batch))
	out := s.check(group)
	dups := out.Records - int64(out.Steps)
	if dups < inKafka-marked {
		t.Errorf("%d records published twice; the killed relay left %d acknowledged and unmarked", dups, inKafka-marked)
	}
	if st := c.Stats(); st.Duplicates != uint64(dups) {
		t.Errorf("the consumer skipped %d duplicates, want the %d records published twice", st.Duplicates, dups)
	}
	t.Logf("killed with %d records in Kafka and %d rows marked; %d published again, skipped by the consumer; %+v", inKafka, marked, dups, out)
}

// TestConsumerKilledAfterCommitBeforeOffsets: the consumer commits its
// effects (and processed rows) but, with an hour's commit interval, no
// offset, and is killed. The member that takes over gets those records
// again and applies none of them twice.
func TestConsumerKilledAfterCommitBeforeOffsets(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.relay()
	written := s.writing(4, 10, 0, 75) // 3,000 steps
	c := s.child(childConfig{Role: "consumer", Group: group, ClientID: "e2e-doomed", CommitInterval: time.Hour})
	s.waitEffects("the child consumer to apply 1,000 effects", 1000)
	c.kill()
	byChild := s.count("SELECT count(*) FROM effects")
	offsets := sum(s.committed(group))
	if offsets >= byChild {
		t.Fatalf("the child committed offsets up to %d records for %d effects: the kill was not between the two commits", offsets, byChild)
	}

	next := s.consumer(group)
	<-written
	out := s.check(group)
	if st := next.Stats(); int64(st.Duplicates) != byChild-offsets {
		t.Errorf("the next member skipped %d duplicates; the child had applied %d records past its committed offsets", st.Duplicates, byChild-offsets)
	}
	t.Logf("the child applied %d effects and committed offsets for %d records; %+v", byChild, offsets, out)
}

// TestConsumerKilledDuringRebalance: a second member joins the group,
// and the first is killed the moment it rejoins for that rebalance. The
// second takes over once the dead member's session times out.
func TestConsumerKilledDuringRebalance(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.relay()
	written := s.writing(4, 10, 0, 75) // 3,000 steps
	a := s.child(childConfig{Role: "consumer", Group: group, ClientID: "e2e-doomed", CommitInterval: 200 * time.Millisecond})
	s.waitEffects("the child consumer to apply 500 effects", 500)
	kf := s.stack.Kafka()
	info := kf.GroupInfo(group)
	if info == nil || len(info.Members) != 1 || info.Members[0].ClientID != "e2e-doomed" {
		t.Fatalf("the group before the rebalance: %+v", info)
	}
	member := info.Members[0].MemberID
	rejoined := make(chan struct{}, 1)
	observe := kf.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.JoinGroup}, Group: group, Observe: true,
		When: func(req kmsg.Request) bool {
			if jr, ok := req.(*kmsg.JoinGroupRequest); ok && jr.MemberID == member {
				select {
				case rejoined <- struct{}{}:
				default:
				}
				return true
			}
			return false
		},
	})
	b := s.consumer(group) // its join starts the rebalance
	select {
	case <-rejoined:
	case <-time.After(90 * time.Second):
		t.Fatal("the child never rejoined the group for the rebalance")
	}
	a.kill()
	observe.Remove()
	// The rebalance is unfinished: the group is still joining or syncing,
	// or (cooperative-sticky: two rounds) it finished the first round, in
	// which the new member gets nothing, and waits for the dead member to
	// give up partitions in the second.
	during := kf.GroupInfo(group)
	if during == nil {
		t.Fatal("the group is gone after the kill")
	}
	unfinished := during.State != "Stable"
	for _, m := range during.Members {
		if m.MemberID != member && len(m.Assignment) == 0 {
			unfinished = true
		}
	}
	if !unfinished {
		t.Fatalf("the group after the kill: %+v; want the rebalance unfinished, waiting for the dead member", during)
	}
	byA, offsets := s.count("SELECT count(*) FROM effects"), sum(s.committed(group))

	<-written
	out := s.check(group)
	t.Logf("killed while rejoining (generation %d, group %s); it had applied %d effects, offsets committed for %d; the survivor skipped %d duplicates; %+v",
		info.Epoch, during.State, byA, offsets, b.Stats().Duplicates, out)
}
