package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb"
)

// defaultMaxEventBytes is MaxEventBytes's default: franz-go's default
// kgo.ProducerBatchMaxBytes.
const defaultMaxEventBytes = 1_000_012

// batchOverhead is the size of a record batch with no record, as
// franz-go counts it against kgo.ProducerBatchMaxBytes (Kafka counts 4
// bytes less against max.message.bytes).
const batchOverhead = 65

// batchBytes returns the size of a batch that holds rec alone, as
// franz-go counts it: what must fit kgo.ProducerBatchMaxBytes and the
// topic's max.message.bytes for rec to be published at all.
func batchBytes(rec *kgo.Record) int {
	n := 3 + // attributes, timestamp delta and offset delta, each one byte alone in a batch
		varintLen(len(rec.Key)) + len(rec.Key) +
		varintLen(len(rec.Value)) + len(rec.Value) +
		varintLen(len(rec.Headers))
	for _, h := range rec.Headers {
		n += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
	}
	return batchOverhead + varintLen(n) + n
}

// varintLen is the length of n as a zigzag varint.
func varintLen(n int) int {
	u := uint64(n)<<1 ^ uint64(n>>63)
	l := 1
	for ; u >= 0x80; u >>= 7 {
		l++
	}
	return l
}

// tooLarge returns Enqueue's error for event i of n when its record does
// not fit MaxEventBytes.
func (o *Outbox[Tx]) tooLarge(ev any, rec *kgo.Record, i, n int) error {
	size := batchBytes(rec)
	if size <= o.cfg.maxEvent {
		return nil
	}
	return fmt.Errorf("outbox: enqueue event %d of %d: %w: %T for topic %s takes %d bytes in a batch of its own, over MaxEventBytes(%d), the most a relay publishes",
		i, n, bus.ErrTooLarge, ev, rec.Topic, size, o.cfg.maxEvent)
}

// topicLimits are the max.message.bytes of the topics a relay publishes
// to, as Kafka described them; mu guards topics.
type topicLimits struct {
	mu     sync.Mutex
	topics map[string]topicLimit
}

type topicLimit struct {
	bytes int // 0: unknown
	at    time.Time
}

// Topic limits are described again after limitsAge, or after
// limitsRetry when Kafka did not describe them.
const (
	limitsAge   = 10 * time.Minute
	limitsRetry = time.Minute
)

// limit is the largest batch a relay can publish to a topic, and what
// sets it.
type limit struct {
	bytes int
	by    string
	known bool // the topic's own limit is known, not the client's alone
}

// limit returns the largest batch of one record the relay can publish to
// topic: the smaller of its client's kgo.ProducerBatchMaxBytes and the
// topic's max.message.bytes, which it asks Kafka for now and then.
func (r *Relay) limit(ctx context.Context, topic string) limit {
	l := limit{int(r.batchMax(topic)), "bytes the relay's Kafka client (kgo.ProducerBatchMaxBytes)", false}
	ls := &r.limits
	ls.mu.Lock()
	t, ok := ls.topics[topic]
	ls.mu.Unlock()
	if age := time.Since(t.at); !ok || t.bytes > 0 && age > limitsAge || t.bytes == 0 && age > limitsRetry {
		t = topicLimit{at: time.Now()}
		dctx, cancel := context.WithTimeout(ctx, r.cfg.ackTimeout)
		limits, err := bus.TopicMaxBytes(dctx, kadm.NewClient(r.cl), topic)
		cancel()
		t.bytes = limits[topic]
		switch {
		case err != nil || t.bytes == 0:
			r.ocfg.log.Warn("outbox: the topic's max.message.bytes is unknown; the relay checks records against its client's limit alone", "topic", topic, "err", err)
		case t.bytes < r.ocfg.maxEvent:
			r.ocfg.log.Warn("outbox: the topic takes smaller records than Enqueue accepts: a larger event would be stuck; lower MaxEventBytes or raise the topic's max.message.bytes",
				"topic", topic, "max.message.bytes", t.bytes, "MaxEventBytes", r.ocfg.maxEvent)
		case t.bytes < l.bytes:
			r.ocfg.log.Warn("outbox: the relay's Kafka client builds batches larger than the topic takes; set kgo.ProducerBatchMaxBytes to the topic's max.message.bytes",
				"topic", topic, "max.message.bytes", t.bytes, "ProducerBatchMaxBytes", l.bytes)
		}
		ls.mu.Lock()
		ls.topics[topic] = t
		ls.mu.Unlock()
	}
	l.known = t.bytes > 0
	if t.bytes > 0 && t.bytes < l.bytes {
		l = limit{t.bytes, "bytes the topic takes (max.message.bytes)", true}
	}
	return l
}

// permanent reports whether Kafka refused a record for its size: sending
// it again would fail again, until the limit is raised.
func permanent(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// StuckRow is an outbox row the relay cannot publish: Kafka or the
// relay's client refuses its record for good (larger than they take).
// The later rows of its key wait behind it, so that the key's order
// holds; the other keys go on. Delete the row, or raise the limit, and
// its key goes on within a minute (the relay looks again every 30
// seconds, and at the topic's limit every 10 minutes).
type StuckRow struct {
	ID     int64  `json:"id"`
	Topic  string `json:"topic"`
	Key    []byte `json:"key"`
	Reason string `json:"reason"`
}

// maxStuckListed is how many stuck rows per shard Status lists.
const maxStuckListed = 100

// stuck is a shard's rows that cannot be published, oldest first, with
// their sizes, and the keys they hold back.
type stuck struct {
	shard   int
	rows    []StuckRow
	sizes   []int
	keys    map[string]bool // topic, NUL, key
	checked time.Time
}

func stuckKey(topic string, key []byte) string { return topic + "\x00" + string(key) }

func (s *stuck) holds(topic string, key []byte) bool { return s.keys[stuckKey(topic, key)] }

// setStuck adds x, whose record takes size bytes in a batch, to st's
// stuck rows for reason: the later rows of its key wait behind it. It
// logs it at ERROR and records it for Status and Ready.
func (r *Relay) setStuck(ctx context.Context, st *stuck, x row, size int, reason error) error {
	k := stuckKey(x.topic, x.key)
	if st.keys[k] {
		return nil
	}
	if st.keys == nil {
		st.keys = make(map[string]bool)
	}
	st.keys[k] = true
	st.rows = append(st.rows, StuckRow{ID: x.id, Topic: x.topic, Key: slices.Clone(x.key), Reason: reason.Error()})
	st.sizes = append(st.sizes, size)
	st.checked = time.Now()
	r.ocfg.log.Error("outbox: a row cannot be published; the later rows of its key wait behind it until it is deleted or the limit raised",
		"table", r.ocfg.table, "shard", st.shard, "row", x.id, "topic", x.topic, "key", string(x.key), "err", reason)
	return r.saveStuck(ctx, st)
}

// saveStuck records st's rows for Status and Ready.
func (r *Relay) saveStuck(ctx context.Context, st *stuck) error {
	r.health.setStuck(st.shard, slices.Clone(st.rows))
	v := ""
	if len(st.rows) > 0 {
		b, err := json.Marshal(st.rows[:min(len(st.rows), maxStuckListed)])
		if err != nil {
			return err
		}
		v = string(b)
	}
	return r.exec(ctx, r.sql.saveStuck, v, st.shard)
}

// recheck, every 30 seconds, lets go of the stuck rows that are gone
// or now fit the limits: their keys go on.
func (r *Relay) recheck(ctx context.Context, st *stuck) error {
	if len(st.rows) == 0 || time.Since(st.checked) < r.stuckRecheck {
		return nil
	}
	st.checked = time.Now()
	ids := make([]int64, len(st.rows))
	for i, x := range st.rows {
		ids[i] = x.ID
	}
	there := make(map[int64]bool, len(ids))
	err := r.inTx(ctx, func(q sqldb.Querier) error {
		rows, err := q.Query(ctx, r.sql.recheck, r.sql.rowsArgs(st.shard, ids)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			there[id] = true
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	n := 0
	for i, x := range st.rows {
		// Without the topic's own limit, a row Kafka refused would fit the
		// client's and go again, after the later rows of its key: it stays.
		if l := r.limit(ctx, x.Topic); there[x.ID] && (!l.known || st.sizes[i] > l.bytes) {
			st.rows[n], st.sizes[n] = x, st.sizes[i]
			n++
			continue
		}
		delete(st.keys, stuckKey(x.Topic, x.Key))
		r.ocfg.log.Info("outbox: a stuck row is gone or fits the limits now; its key goes on", "table", r.ocfg.table, "shard", st.shard, "row", x.ID, "topic", x.Topic)
	}
	if n == len(st.rows) {
		return nil
	}
	st.rows, st.sizes = st.rows[:n], st.sizes[:n]
	return r.saveStuck(ctx, st)
}
