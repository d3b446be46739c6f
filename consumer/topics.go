package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// stage says what a consumed topic is: a topic handlers were registered
// for or its replay topic (n 0), or its retry topic n.
type stage struct {
	topic string
	n     int
}

// groupName is what Kafka accepts in a topic name: the group is part of
// the dead-letter and retry topic names.
var groupName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// Topics returns every topic the consumer uses, sorted: the topics of the
// registered handlers, their retry topics, their replay topics and their
// dead-letter topics. Create them before Run (Run checks that the retry
// topics exist; a missing dead-letter or replay topic is logged, and a
// record due in a dead-letter topic waits until it exists). Give retry and
// replay topics the partition count of their topic. The group's
// dead-letter ledger (wire.LedgerTopic) is not among them: it must be
// compacted, and the consumer creates it so (deadletter.OpenLedger) when
// it first settles a replay.
func (c *Consumer) Topics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	consume, retry := c.topicsLocked()
	var out []string
	out = append(out, consume...)
	for _, t := range consume {
		if _, isRetry := retry[t]; !isRetry {
			out = append(out, wire.DeadLetterTopic(t, c.group))
		}
	}
	slices.Sort(out)
	return out
}

// topicsLocked returns the topics to consume (handlers', retry and replay
// topics) and which of them are retry and replay topics. The caller holds
// c.mu.
func (c *Consumer) topicsLocked() ([]string, map[string]stage) {
	retry := make(map[string]stage)
	var topics []string
	for topic, byType := range c.handlers {
		replay := wire.ReplayTopic(topic, c.group)
		retry[replay] = stage{topic: topic}
		topics = append(topics, topic, replay)
		stages := 0
		for _, b := range byType {
			stages = max(stages, len(b.retryTopics))
		}
		for n := 1; n <= stages; n++ {
			name := wire.RetryTopic(topic, c.group, n)
			retry[name] = stage{topic: topic, n: n}
			topics = append(topics, name)
		}
	}
	slices.Sort(topics)
	return topics, retry
}

// stageOf is the stage topic is read as: a retry topic's, else its own.
func (c *Consumer) stageOf(topic string) stage {
	if home, ok := c.retryOf[topic]; ok {
		return home
	}
	return stage{topic: topic}
}

// batching says whether the partitions of stage take records in batches:
// some handler of a home topic has Batch. Retry topics are read one record
// per transaction: their records wait for their due time one by one.
func (c *Consumer) batching(home stage) bool {
	for _, b := range c.handlers[home.topic] {
		if home.n == 0 && b.tx != nil && b.tx.batch > 1 {
			return true
		}
	}
	return false
}

// checkTopics waits until the brokers answer, then fails when a retry
// topic is missing and logs missing topics, replay topics and dead-letter
// topics.
func (c *Consumer) checkTopics(ctx context.Context, topics []string, retryOf map[string]stage) error {
	adm := kadm.NewClient(c.cl)
	var retry, others []string
	for _, t := range topics {
		if st, ok := retryOf[t]; ok && st.n > 0 {
			retry = append(retry, t)
		} else if ok {
			others = append(others, t) // a replay topic
		} else {
			others = append(others, t, wire.DeadLetterTopic(t, c.group))
		}
	}
	if err := c.awaitBrokers(ctx, adm, slices.Concat(retry, others)); err != nil {
		return err
	}
	if err := bus.CheckTopics(ctx, adm, retry...); err != nil {
		return fmt.Errorf("consumer: retry topics: %w", err)
	}
	if err := bus.CheckTopics(ctx, adm, others...); err != nil {
		c.log.Warn("consumer: some topics do not exist yet; records due in a missing dead-letter topic wait until it exists, a replay topic is read once it exists", "error", err)
	}
	c.checkLimits(ctx, adm, topics, retryOf)
	return nil
}

// awaitBrokers reads the topics' metadata until the brokers answer, missing
// topics or not, trying again at the pace of OutageRetry while they
// cannot be reached (waiting fixes that). A lasting failure is logged at a
// bounded rate: by the connection hook when a broker cannot be reached
// (it names the address), else here. An error the broker says retrying
// cannot fix (failed authentication) ends Run.
func (c *Consumer) awaitBrokers(ctx context.Context, adm *kadm.Client, topics []string) error {
	var rep report
	for n := 1; ; n++ {
		err := bus.CheckTopics(ctx, adm, topics...)
		if err == nil || errors.Is(err, bus.ErrTopicMissing) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) && !ke.Retriable {
			return fmt.Errorf("consumer: reading the topics' metadata: %w", err)
		}
		if k, due := rep.due(time.Now()); due && c.health.unreachable() == nil {
			c.log.Error("consumer: cannot read the topics' metadata; Run starts once it can", "error", err, "failures", k)
		}
		t := time.NewTimer(c.cfg.outage.delay(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// MaxDeadLetterBytes is the consumer's default kgo.ProducerBatchMaxBytes:
// large enough for a dead-letter or retry record of any record a topic
// usually lets in, so the broker's max.message.bytes of the dead-letter
// topic decides (franz-go's own default, 1,000,012, is less than Kafka's
// default max.message.bytes).
const MaxDeadLetterBytes = 32 << 20

// checkLimits warns about each dead-letter or retry topic that accepts
// less than its topic plus the headers a consumer adds
// (bus.DeadLetterHeadroom): a record near its topic's limit could not be
// written there, and its partition would wait until the topic's
// max.message.bytes is raised.
func (c *Consumer) checkLimits(ctx context.Context, adm *kadm.Client, topics []string, retryOf map[string]stage) {
	dests := make(map[string]string) // dead-letter or retry topic -> its topic
	for _, t := range topics {
		if st, ok := retryOf[t]; !ok {
			dests[wire.DeadLetterTopic(t, c.group)] = t
		} else if st.n > 0 {
			dests[t] = st.topic
		}
	}
	names := slices.Collect(maps.Keys(dests))
	limits, err := bus.TopicMaxBytes(ctx, adm, append(names, slices.Collect(maps.Values(dests))...)...)
	if err != nil {
		c.log.Warn("consumer: cannot read the topics' max.message.bytes", "error", err)
		return
	}
	slices.Sort(names)
	for _, d := range names {
		have, ok := limits[d]
		need := limits[dests[d]] + bus.DeadLetterHeadroom
		if ok && limits[dests[d]] > 0 && have < need {
			c.log.Warn("consumer: a record near its topic's size limit would not fit its dead-letter or retry topic, and its partition would wait; raise that topic's max.message.bytes (bus.CreateTopics sizes the topics it creates)",
				"topic", d, "max_message_bytes", have, "want_at_least", need)
		}
	}
}
