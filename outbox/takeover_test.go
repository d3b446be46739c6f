package outbox_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
)

// endTotal returns how many records the topic holds.
func endTotal(t testing.TB, k kafka) int {
	t.Helper()
	offs, err := kadm.NewClient(k.cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	offs.Each(func(o kadm.ListedOffset) { n += int(o.Offset) })
	return n
}

// writers enqueues n events from w concurrent writers, five per
// transaction; writer i owns keys i*10 to i*10+9. It returns the wanted
// per-key order once all are committed.
func writers(t testing.TB, db *sqldb.PgxDB, ob *outbox.Outbox[pgx.Tx], w, n int, pause time.Duration) map[string][]int64 {
	var mu sync.Mutex
	want := map[string][]int64{}
	var wg sync.WaitGroup
	for i := range w {
		wg.Go(func() {
			for j := 0; j < n/w; j += 5 {
				var evs []any
				for e := j; e < j+5; e++ {
					evs = append(evs, OrderEvent{OrderID: key(i*10 + e%10), Seq: int64(e)})
				}
				if err := sqldb.InTx(context.Background(), db, func(tx pgx.Tx) error { return ob.Enqueue(context.Background(), tx, evs...) }); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, ev := range evs {
					e := ev.(OrderEvent)
					want[e.OrderID] = append(want[e.OrderID], e.Seq)
				}
				mu.Unlock()
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
	return want
}

func publishedRows(t testing.TB, db *sqldb.PgxDB) int64 {
	var n int64
	if err := sqldb.QueryRow(context.Background(), db, "SELECT count(*) FROM evbus_outbox_published", nil, &n); err != nil {
		t.Error(err)
	}
	return n
}

// TestTwoRelaysStandbyTakesOver: two relays run against one outbox while
// 10,000 events are written. Only the one holding the shard publishes;
// killed (SIGKILL), the standby takes over. Every event is published, in
// per-key order, and only the dead relay's last two batches can repeat
// (one acknowledged and not yet marked, one in flight).
func TestTwoRelaysStandbyTakesOver(t *testing.T) {
	const n, batch = 10_000, 500
	k := startKafka(t)
	url := evbustest.PostgresDatabase(t)
	db := pgxDB(t, url)
	ob := newOutbox(t, db, k.enc)
	status := func() outbox.RelayStatus {
		s, err := ob.Status(context.Background())
		if err != nil || len(s.Relays) != 1 {
			return outbox.RelayStatus{}
		}
		return s.Relays[0]
	}
	cmd, _ := startChild(t, "A", url, k, batch, false)
	waitFor(t, "relay A to take the shard", func() bool { r := status(); return r.Holder == "A" && r.Active })
	runRelay(t, ob, k.cl, outbox.RelayName("B"), outbox.BatchSize(batch), outbox.TakeoverInterval(200*time.Millisecond))

	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for publishedRows(t, db) < 3000 {
			time.Sleep(10 * time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}()
	want := writers(t, db, ob, 4, n, time.Millisecond)
	<-killed
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	if r := status(); r.Holder != "B" || !r.Active {
		t.Errorf("after the kill the shard is held by %q (active %v), want B", r.Holder, r.Active)
	}
	total := endTotal(t, k)
	got := consume(t, k.stack.Brokers(), atLeast(total))
	if distinct(got) != n {
		t.Errorf("%d distinct events published, want %d", distinct(got), n)
	}
	if dups := checkOrder(t, got, want); dups > 2*batch {
		t.Errorf("%d events published twice, more than the dead relay's last two batches (%d)", dups, 2*batch)
	} else {
		t.Logf("%d events published twice (the killed relay's last batches)", dups)
	}
}

// TestKafkaDown: Kafka refuses produce requests for 5 s under load. The
// relay keeps the rows, records the error, backs off, and publishes
// everything in order once Kafka answers again.
func TestKafkaDown(t *testing.T) {
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc)
	var down atomic.Bool
	kf := k.stack.Kafka()
	kf.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if down.Load() {
			return nil, errors.New("broker down"), true
		}
		return nil, nil, false
	})
	runRelay(t, ob, k.cl, outbox.AckTimeout(300*time.Millisecond), outbox.MaxBackoff(500*time.Millisecond))

	done := make(chan map[string][]int64)
	go func() { done <- writers(t, db, ob, 2, 3000, 4*time.Millisecond) }()
	waitFor(t, "200 events published", func() bool { return publishedRows(t, db) >= 200 })
	down.Store(true)
	waitFor(t, "the relay to record the outage", func() bool {
		s, err := ob.Status(context.Background())
		return err == nil && len(s.Relays) == 1 && s.Relays[0].LastError != ""
	})
	time.Sleep(5 * time.Second)
	s, err := ob.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Backlog == 0 {
		t.Error("backlog empty while Kafka is down")
	}
	t.Logf("during the outage: %+v", s)
	down.Store(false)
	want := <-done
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	got := consume(t, k.stack.Brokers(), atLeast(endTotal(t, k)))
	if distinct(got) != 3000 {
		t.Errorf("%d distinct events published, want 3000", distinct(got))
	}
	dups := checkOrder(t, got, want)
	t.Logf("%d events published more than once", dups)
}
