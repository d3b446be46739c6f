package outbox_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/outbox"
)

// TestFailedBatchIsNotOvertaken: the relay reads the next batch while
// Kafka takes the current one. Kafka refuses one produce request for good
// (a batch's records of some partitions fail) while the next batch is
// already read: the next batch must not be sent, and the failed rows are
// published before the later rows of their keys.
func TestFailedBatchIsNotOvertaken(t *testing.T) {
	const n, batch = 300, 20
	k := startKafka(t)
	db := pgxDB(t, evbustest.PostgresDatabase(t))
	ob := newOutbox(t, db, k.enc)
	want := map[string][]int64{}
	for i := 0; i < n; i += 10 {
		var evs []any
		for j := i; j < i+10; j++ {
			kk := key(j % 6)
			evs = append(evs, OrderEvent{OrderID: kk, Seq: int64(j)})
			want[kk] = append(want[kk], int64(j))
		}
		enqueue(t, db, ob, evs...)
	}
	var produced, refused atomic.Int32
	kf := k.stack.Kafka()
	kf.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if produced.Add(1) != 3 {
			return nil, nil, false
		}
		// The third produce request: every partition in it refused, with
		// an error the client does not retry.
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.InvalidRecord.Code
				st.Partitions = append(st.Partitions, sp)
				refused.Add(1)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	runRelay(t, ob, k.cl, outbox.BatchSize(batch))
	waitFor(t, "an empty backlog", func() bool { return backlog(t, ob) == 0 })
	if refused.Load() == 0 {
		t.Fatal("no produce request was refused")
	}
	st, err := ob.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Relays) != 1 || !strings.Contains(st.Relays[0].LastError, "publish row") || st.Relays[0].LastErrorAt.IsZero() {
		t.Fatalf("status %+v, want the refused row as the shard's last error", st)
	}
	got := consume(t, k.stack.Brokers(), atLeast(n))
	if dups := checkOrder(t, got, want); dups != 0 {
		t.Errorf("%d events published twice, want none", dups)
	}
	t.Logf("%d partitions refused; last error: %s", refused.Load(), st.Relays[0].LastError)
}
