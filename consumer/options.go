package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/tracing"
)

// Options only record values: New validates them and names the option at
// fault, and so does Handle (through Run) for handler options.

// UnhandledPolicy says what happens to records nobody handles.
type UnhandledPolicy int

const (
	// Skip counts the record as skipped and moves on: a topic may carry
	// event types this service does not care about. The default.
	Skip UnhandledPolicy = iota
	// DeadLetter writes the record to the dead-letter topic, with
	// dlt-error-kind "permanent" and dlt-attempts 0.
	DeadLetter
)

// Option configures a Consumer.
type Option func(*config)

type config struct {
	kafka          []kgo.Opt
	concurrency    int
	perKey         int
	unhandled      UnhandledPolicy
	logger         *slog.Logger
	commitInterval time.Duration
	drainTimeout   time.Duration
	retry          Backoff // handlers'
	outage         Backoff // waits for what is not a record's fault
	observe        func(Outcome)
	maxValueBytes  int
	maxBuffered    int64
	telOpt         telemetry.Choice // as given; New resolves it into tel
	tel            *telemetry.T
	compression    []kgo.CompressionCodec
	maxReplays     int
}

// The defaults of the options, documented on each.
const (
	defaultConcurrency    = 8
	defaultCommitInterval = time.Second
	defaultDrainTimeout   = 20 * time.Second
	defaultMaxBuffered    = 128 << 20
	defaultMaxReplays     = 3
	// fetchMaxWait is the client's kgo.FetchMaxWait unless Kafka sets
	// one: how long the broker may hold a fetch when it has nothing new
	// (Kafka's Java client's default; franz-go's own is 5 s). It also
	// bounds back-pressure's waits: a full partition holds the poll at
	// most this long before it is paused, and a paused partition, once
	// resumed, is fetched again only when the fetch in flight returns,
	// which the broker holds this long when the other partitions are
	// idle.
	fetchMaxWait = 500 * time.Millisecond
)

func defaultConfig() config {
	return config{
		concurrency:    defaultConcurrency,
		perKey:         1,
		unhandled:      Skip,
		logger:         slog.Default(),
		commitInterval: defaultCommitInterval,
		drainTimeout:   defaultDrainTimeout,
		retry:          defaultBackoff,
		outage:         defaultBackoff,
		maxBuffered:    defaultMaxBuffered,
		compression:    []kgo.CompressionCodec{kgo.NoCompression()},
		maxReplays:     defaultMaxReplays,
	}
}

// newConfig applies opts to the defaults and validates the result.
func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			return config{}, fmt.Errorf("consumer: New: option %d is nil", i+1)
		}
		o(&cfg)
	}
	return cfg, cfg.validate()
}

// validate checks the values the options recorded and completes the
// back-offs.
func (c *config) validate() error {
	tel, err := c.telOpt.Resolve("consumer")
	if err != nil {
		return err
	}
	c.tel = tel
	switch {
	case c.logger == nil:
		return errors.New("consumer: Logger(nil): pass a logger, or leave the option out for slog.Default()")
	case c.concurrency < 1:
		return fmt.Errorf("consumer: Concurrency(%d): want at least 1", c.concurrency)
	case c.perKey < 1:
		return fmt.Errorf("consumer: PerKey(%d): want 1 or more (1 keeps each partition in offset order)", c.perKey)
	case c.unhandled != Skip && c.unhandled != DeadLetter:
		return fmt.Errorf("consumer: Unhandled(%d): want consumer.Skip or consumer.DeadLetter", c.unhandled)
	case c.commitInterval <= 0:
		return fmt.Errorf("consumer: CommitInterval(%v): want a positive interval", c.commitInterval)
	case c.drainTimeout <= 0:
		return fmt.Errorf("consumer: DrainTimeout(%v): want a positive duration", c.drainTimeout)
	case c.maxValueBytes < 0:
		return fmt.Errorf("consumer: MaxValueBytes(%d): want 0 (no limit) or more", c.maxValueBytes)
	case c.maxBuffered < 1<<20:
		return fmt.Errorf("consumer: MaxBufferedBytes(%d): want 1 MiB (1048576) or more", c.maxBuffered)
	case c.maxReplays < 1:
		return fmt.Errorf("consumer: MaxReplays(%d): want 1 or more", c.maxReplays)
	case len(c.compression) == 0:
		return errors.New("consumer: Compression(): pass at least one codec, e.g. kgo.NoCompression() or kgo.GzipCompression()")
	}
	if err := c.retry.validate("HandlerRetry"); err != nil {
		return err
	}
	if err := c.outage.validate("OutageRetry"); err != nil {
		return err
	}
	c.retry, c.outage = c.retry.or(defaultBackoff), c.outage.or(defaultBackoff)
	return nil
}

// Telemetry sets where the consumer's spans and metrics go. Each settled
// record gets a "process <topic>" span, a child of (or linked to) the
// producer's; the handler's context carries it, so the handler's own
// spans nest under it and events it publishes continue the trace.
// Default: tracing.Default() (the global OpenTelemetry providers).
func Telemetry(t *tracing.Telemetry) Option {
	return func(c *config) { c.telOpt.Set((*telemetry.T)(t)) }
}

// Kafka passes options to the franz-go client the consumer runs on:
// brokers (kgo.SeedBrokers), TLS, SASL, client id, fetch sizes (the
// consumer lowers kgo.FetchMaxPartitionBytes to keep within
// MaxBufferedBytes, never raises it), session
// and heartbeat timing, where a new group starts (kgo.ConsumeResetOffset;
// franz-go's default is the start of each partition). The consumer sets
// these itself, after yours: kgo.ConsumerGroup, kgo.ConsumeTopics,
// kgo.DisableAutoCommit, kgo.BlockRebalanceOnPoll and the
// OnPartitionsAssigned, OnPartitionsRevoked and OnPartitionsLost
// callbacks; hooks you pass with kgo.WithHooks run beside the consumer's
// own (which feed Ready and the connection logs). The balancer is
// cooperative-sticky unless you pass kgo.Balancers. The same client
// writes dead-letter and retry records, so keep its producer idempotent
// with acks=all (franz-go's defaults).
//
// Defaults, unless you pass them: kgo.ProducerBatchMaxBytes is
// MaxDeadLetterBytes; kgo.FetchMaxWait is 500 ms (Kafka's Java client's
// default; franz-go's own is 5 s), which also bounds back-pressure's
// waits: a full partition holds the poll at most this long before it is
// paused, and a paused partition, once resumed, is fetched again when the
// fetch in flight returns.
func Kafka(opts ...kgo.Opt) Option {
	return func(c *config) { c.kafka = append(c.kafka, opts...) }
}

// Concurrency bounds how many handler calls run at once across all
// partitions. Without PerKey, each partition runs one record at a time,
// so this is how many partitions are handled in parallel. A record
// waiting between retries holds no slot. Default: 8.
func Concurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// PerKey runs records of one partition with different keys in parallel, in
// up to n lanes per partition, while the records of each key stay in
// order: a key always takes the same lane (by a hash of the key), and a
// lane runs its records one after the other. Two keys that share a lane
// wait for each other. Offsets are committed only past records that are
// all settled, whatever the lanes. Default: 1, each partition in offset
// order.
func PerKey(n int) Option { return func(c *config) { c.perKey = n } }

// Unhandled says what happens to records whose event type has no handler:
// Skip or DeadLetter. Default: Skip.
func Unhandled(p UnhandledPolicy) Option { return func(c *config) { c.unhandled = p } }

// Logger receives the consumer's logs. Every record-related entry carries
// event_id, type, topic, partition and offset. Default: slog.Default(),
// which drops debug records.
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// CommitInterval sets how often handled offsets are committed. Offsets
// are also committed when partitions are revoked and when the consumer
// stops. A crash re-delivers at most what was handled since the last
// commit. Default: 1 s.
func CommitInterval(d time.Duration) Option { return func(c *config) { c.commitInterval = d } }

// DrainTimeout bounds how long a partition being revoked in a rebalance
// waits for its handler calls under way; then their contexts are
// cancelled. Keep it well below the group's rebalance timeout
// (kgo.RebalanceTimeout, 60s by default). Default: 20 s.
func DrainTimeout(d time.Duration) Option { return func(c *config) { c.drainTimeout = d } }

// MaxValueBytes dead-letters records whose value is larger than n bytes as
// poison, before they are decoded, so a producer cannot make a handler
// decode more than n bytes. Default: 0, which leaves the limit to the
// topic's max.message.bytes.
func MaxValueBytes(n int) Option { return func(c *config) { c.maxValueBytes = n } }

// MaxBufferedBytes bounds the bytes of records the consumer holds at once,
// counted decompressed, whatever the compression: records fetched and not
// yet settled, over all its partitions. Each partition gets an equal
// part: one whose records pile up (a slow or blocked handler) is paused
// at 4 MiB (32 MiB with Batch handlers), or at n/(2.5 * partitions) when
// that is less, but never under 64 KiB; what it holds then is at most 2.5
// times that. Fetches are sized so that a partition's share of one is at
// most half its pause threshold once decompressed (see
// kgo.FetchMaxPartitionBytes: Kafka's fetch limits count compressed
// bytes; the consumer lowers the one it is given, never raises it). At
// least 1 MiB. Default: 128 MiB.
func MaxBufferedBytes(n int64) Option { return func(c *config) { c.maxBuffered = n } }

// HandlerRetry sets the back-off of handlers registered without Retry,
// and fills the zero fields of those registered with one. It paces
// handler runs only: OutageRetry paces the waits for what is not a
// record's fault. Default: 100 ms, doubling up to 10 s, 20% jitter, 5
// runs; a zero field takes that default.
func HandlerRetry(b Backoff) Option { return func(c *config) { c.retry = b } }

// OutageRetry paces the waits for what is not a record's fault, which
// last as long as it does and count no attempt (MaxAttempts is ignored):
// decoding while the schema registry is unavailable, a HandleTx
// handler's database that fails or a transaction that conflicts with
// another, writing to a dead-letter or retry topic, and reading the
// topics' metadata while Run starts. Default: 100 ms, doubling up to
// 10 s, 20% jitter; a zero field takes that default.
func OutageRetry(b Backoff) Option { return func(c *config) { c.outage = b } }

// Observe calls fn with every record the consumer settles (handled,
// skipped, sent to a retry topic, dead-lettered), on the partition's
// goroutine once the record is settled: fn must be quick and must not block.
// Test kits and tools use it (evbustest.Recorder). Default: none.
func Observe(fn func(Outcome)) Option { return func(c *config) { c.observe = fn } }

// Compression sets the codecs of the dead-letter and retry records the
// consumer writes, in order of preference (kgo.ProducerBatchCompression).
// Default: kgo.NoCompression(), which every stock client reads and
// which Kafka's Java client, librdkafka and kafkajs default to themselves
// (franz-go's own default, snappy, cannot be read by kafkajs without a
// codec plugin). kgo.GzipCompression() is the one codec every stock client
// reads; docs/wire-format.md lists which client reads which. A
// kgo.ProducerBatchCompression passed to Kafka wins over this option.
func Compression(codecs ...kgo.CompressionCodec) Option {
	return func(c *config) { c.compression = codecs }
}

// MaxReplays is the loop guard of replayed dead letters: a replayed
// record that fails again with a dlt-replay-count of n or more is
// dead-lettered again as usual, and its new dead letter is parked in the
// group's dead-letter ledger, so bulk replays pass it by until an operator
// replays it by id. Default: 3, as evbus dlt replay --max-replays.
func MaxReplays(n int) Option { return func(c *config) { c.maxReplays = n } }

// HandlerOption configures one handler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	retry          Backoff
	retrySet       bool
	retryTopics    []time.Duration
	retryTopicsSet bool
	batch          int
	batchSet       bool
	messageID      func(bus.Meta) (string, error)
	messageIDSet   bool
}

// validate checks the values the handler options recorded.
func (h *handlerConfig) validate() error {
	if h.retrySet {
		if err := h.retry.validate("Retry"); err != nil {
			return err
		}
	}
	if h.retryTopicsSet {
		if len(h.retryTopics) == 0 || len(h.retryTopics) > MaxRetryTopics {
			return fmt.Errorf("consumer: RetryTopics: %d delays: want 1 to %d", len(h.retryTopics), MaxRetryTopics)
		}
		for i, d := range h.retryTopics {
			if d <= 0 {
				return fmt.Errorf("consumer: RetryTopics: delay %d is %v: want a positive duration", i+1, d)
			}
		}
	}
	if h.batchSet && (h.batch < 1 || h.batch > MaxBatch) {
		return fmt.Errorf("consumer: Batch(%d): want 1 to %d records per transaction", h.batch, MaxBatch)
	}
	if h.messageIDSet && h.messageID == nil {
		return errors.New("consumer: MessageID(nil): pass a function, or leave the option out for the default")
	}
	return nil
}

// Retry sets the handler's back-off and how many times it runs for one
// record before the record is given up (see Backoff). A handler error
// marked with Permanent is not retried. Default: HandlerRetry's.
func Retry(b Backoff) HandlerOption {
	return func(h *handlerConfig) { h.retry, h.retrySet = b, true }
}

// MaxRetryTopics bounds how many retry topics one handler may use.
const MaxRetryTopics = 20

// RetryTopics turns on non-blocking retries through retry topics: a record
// the handler gives up on goes to "<topic>.<group>.retry-1" (see
// wire.RetryTopic) and is handled again there once delays[0] has passed,
// then to retry-2 after delays[1], and so on; after the last one it goes
// to the dead-letter topic. Its partition goes on meanwhile, so records of
// one key may be handled out of order: use it only for handlers that do
// not depend on order. Default: none, the partition waits for its
// handler's retries.
//
// At each stage the handler runs as often as its Retry back-off says;
// without Retry, once per stage. A permanent error goes to the dead-letter
// topic at once. The retry topics must exist before Run (it checks): create
// them like the topic itself, with the same partition count (see
// Consumer.Topics).
func RetryTopics(delays ...time.Duration) HandlerOption {
	return func(h *handlerConfig) {
		h.retryTopics, h.retryTopicsSet = append([]time.Duration(nil), delays...), true
	}
}
