package evbustest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// client returns a Kafka client of c with extra options; the caller closes
// it. It fails t when the options are bad.
func client(t testing.TB, c Cluster, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers()...)}
	if k, ok := c.(interface{ KafkaOpts() []kgo.Opt }); ok {
		opts = k.KafkaOpts()
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatalf("evbustest: %v", err)
	}
	return cl
}

// Records returns how many records topic holds in c: the sum of its
// partitions' end offsets.
func Records(t testing.TB, c Cluster, topic string) int64 {
	t.Helper()
	cl := client(t, c)
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(t.Context(), topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("evbustest: end offsets of %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// Committed returns the offsets group has committed for topic, by
// partition: where the group resumes.
func Committed(t testing.TB, c Cluster, group, topic string) map[int32]int64 {
	t.Helper()
	cl := client(t, c)
	defer cl.Close()
	offsets, err := kadm.NewClient(cl).FetchOffsets(t.Context(), group)
	if err == nil {
		err = offsets.Error()
	}
	if err != nil {
		t.Fatalf("evbustest: offsets of group %s: %v", group, err)
	}
	out := make(map[int32]int64)
	offsets.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}
