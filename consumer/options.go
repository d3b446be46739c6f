package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/tracing"
)

// Defaults of the consumer's options.
const (
	// DefaultConcurrency bounds how many handler calls run at once across
	// all partitions (Concurrency).
	DefaultConcurrency = 8
	// DefaultCommitInterval is how often handled offsets are committed
	// (CommitInterval).
	DefaultCommitInterval = time.Second
	// DefaultDrainTimeout bounds how long a revoked partition waits for
	// its handler calls under way before they are cancelled (DrainTimeout).
	DefaultDrainTimeout = 20 * time.Second
)

// Default back-off: 100ms, doubling up to 10s, 20% jitter, 5 handler runs.
const (
	DefaultInitial     = 100 * time.Millisecond
	DefaultMax         = 10 * time.Second
	DefaultMultiplier  = 2.0
	DefaultJitter      = 0.2
	DefaultMaxAttempts = 5
)

// Backoff says how often a failing handler runs and how long it waits in
// between: Initial, then each wait Multiplier times the one before, capped
// at Max, each shortened at random by up to Jitter of itself. A zero field
// takes the consumer's DefaultRetry value, and that one the package
// default (DefaultInitial, DefaultMax, DefaultMultiplier, DefaultJitter,
// DefaultMaxAttempts). A negative Jitter means none.
//
// The same waits (without MaxAttempts) pace the retries that never give
// up: decoding while the schema registry is unavailable, and writing to a
// dead-letter or retry topic.
type Backoff struct {
	Initial     time.Duration
	Max         time.Duration
	Multiplier  float64
	Jitter      float64
	MaxAttempts int // handler runs in all, the first included; 1 means no retry
}

// or fills the zero fields of b from d.
func (b Backoff) or(d Backoff) Backoff {
	if b.Initial == 0 {
		b.Initial = d.Initial
	}
	if b.Max == 0 {
		b.Max = d.Max
	}
	if b.Multiplier == 0 {
		b.Multiplier = d.Multiplier
	}
	if b.Jitter == 0 {
		b.Jitter = d.Jitter
	}
	if b.MaxAttempts == 0 {
		b.MaxAttempts = d.MaxAttempts
	}
	return b
}

var packageBackoff = Backoff{
	Initial:     DefaultInitial,
	Max:         DefaultMax,
	Multiplier:  DefaultMultiplier,
	Jitter:      DefaultJitter,
	MaxAttempts: DefaultMaxAttempts,
}

func (b Backoff) validate(what string) error {
	switch {
	case b.Initial < 0:
		return fmt.Errorf("consumer: %s: Initial %v: want a positive wait, or 0 for the default", what, b.Initial)
	case b.Max < 0:
		return fmt.Errorf("consumer: %s: Max %v: want a positive wait, or 0 for the default", what, b.Max)
	case b.Multiplier != 0 && (b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0)):
		return fmt.Errorf("consumer: %s: Multiplier %v: want 1 or more, or 0 for the default", what, b.Multiplier)
	case b.Jitter > 1 || math.IsNaN(b.Jitter):
		return fmt.Errorf("consumer: %s: Jitter %v: want a fraction up to 1, 0 for the default, or negative for none", what, b.Jitter)
	case b.MaxAttempts < 0:
		return fmt.Errorf("consumer: %s: MaxAttempts %d: want 1 or more, or 0 for the default", what, b.MaxAttempts)
	}
	return nil
}

// delay is the wait before retry n (1 for the first retry).
func (b Backoff) delay(n int) time.Duration {
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(n-1))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	if b.Jitter > 0 {
		d -= d * b.Jitter * rand.Float64()
	}
	return time.Duration(d)
}

// Policy says what happens to records nobody handles.
type Policy int

const (
	// Skip counts the record as skipped and moves on: a topic may carry
	// event types this service does not care about. The default.
	Skip Policy = iota
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
	unhandled      Policy
	logger         *slog.Logger
	commitInterval time.Duration
	drainTimeout   time.Duration
	retry          Backoff
	observe        func(Outcome)
	maxValueBytes  int
	maxBuffered    int64
	telOpt         telemetry.Choice // as given; New resolves it into tel
	tel            *telemetry.T
	compression    []kgo.CompressionCodec
	err            error
}

func defaultConfig() config {
	return config{
		concurrency:    DefaultConcurrency,
		perKey:         1,
		unhandled:      Skip,
		logger:         slog.Default(),
		commitInterval: DefaultCommitInterval,
		drainTimeout:   DefaultDrainTimeout,
		retry:          packageBackoff,
		maxBuffered:    DefaultMaxBufferedBytes,
		tel:            telemetry.Default(),
		compression:    []kgo.CompressionCodec{kgo.NoCompression()},
	}
}

// Telemetry sets where the consumer's spans and metrics go:
// tracing.Default() (the global OpenTelemetry providers) by default. Each
// settled record gets a "process <topic>" span, a child of (or linked to)
// the producer's; the handler's context carries it, so the handler's own
// spans nest under it and events it publishes continue the trace.
func Telemetry(t *tracing.Telemetry) Option {
	return func(c *config) { c.telOpt.Set((*telemetry.T)(t)) }
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
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
// with acks=all (franz-go's defaults); its kgo.ProducerBatchMaxBytes is
// MaxDeadLetterBytes, and its kgo.FetchMaxWait is FetchMaxWait, unless
// you pass one.
func Kafka(opts ...kgo.Opt) Option {
	return func(c *config) { c.kafka = append(c.kafka, opts...) }
}

// FetchMaxWait is how long the broker may hold the consumer's fetch
// when it has nothing new (Kafka's Java client's default; franz-go's own is
// 5 s). It also bounds back-pressure's waits: a full partition holds the
// poll at most this long before it is paused, and a paused partition,
// once resumed, is fetched again only when the fetch in flight returns,
// which the broker holds this long when the other partitions are idle.
const FetchMaxWait = 500 * time.Millisecond

// Concurrency bounds how many handler calls run at once across all
// partitions (default DefaultConcurrency). Without PerKey, each partition
// runs one record at a time, so this is how many partitions are handled in
// parallel. A record waiting between retries holds no slot.
func Concurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail(fmt.Errorf("consumer: Concurrency(%d): want 1 or more", n))
			return
		}
		c.concurrency = n
	}
}

// PerKey runs records of one partition with different keys in parallel, in
// up to n lanes per partition, while the records of each key stay in
// order: a key always takes the same lane (by a hash of the key), and a
// lane runs its records one after the other. Two keys that share a lane
// wait for each other. The default, 1, runs each partition in offset
// order. Offsets are committed only past records that are all settled,
// whatever the lanes.
func PerKey(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.fail(fmt.Errorf("consumer: PerKey(%d): want 1 or more (1 keeps each partition in offset order)", n))
			return
		}
		c.perKey = n
	}
}

// Unhandled says what happens to records whose event type has no handler:
// Skip (the default) or DeadLetter.
func Unhandled(p Policy) Option {
	return func(c *config) {
		if p != Skip && p != DeadLetter {
			c.fail(fmt.Errorf("consumer: Unhandled(%d): want consumer.Skip or consumer.DeadLetter", p))
			return
		}
		c.unhandled = p
	}
}

// Logger receives the consumer's logs (default slog.Default(), which drops
// debug records). Every record-related entry carries event_id, type,
// topic, partition and offset.
func Logger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail(errors.New("consumer: Logger(nil): pass a logger, or leave the option out for slog.Default()"))
			return
		}
		c.logger = l
	}
}

// CommitInterval sets how often handled offsets are committed (default
// DefaultCommitInterval). Offsets are also committed when partitions are
// revoked and when the consumer stops. A crash re-delivers at most what
// was handled since the last commit.
func CommitInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(fmt.Errorf("consumer: CommitInterval(%v): want a positive interval", d))
			return
		}
		c.commitInterval = d
	}
}

// DrainTimeout bounds how long a partition being revoked in a rebalance
// waits for its handler calls under way (default DefaultDrainTimeout);
// then their contexts are cancelled. Keep it well below the group's
// rebalance timeout (kgo.RebalanceTimeout, 60s by default).
func DrainTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail(fmt.Errorf("consumer: DrainTimeout(%v): want a positive duration", d))
			return
		}
		c.drainTimeout = d
	}
}

// MaxValueBytes dead-letters records whose value is larger than n bytes as
// poison, before they are decoded, so a producer cannot make a handler
// decode more than n bytes. The default, 0, leaves the limit to the
// topic's max.message.bytes.
func MaxValueBytes(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.fail(fmt.Errorf("consumer: MaxValueBytes(%d): want 0 (no limit) or more", n))
			return
		}
		c.maxValueBytes = n
	}
}

// MaxBufferedBytes bounds the bytes of records the consumer holds at once,
// counted decompressed, whatever the compression: records fetched and not
// yet settled, over all its partitions (default DefaultMaxBufferedBytes).
// Each partition gets an equal part: one whose records pile up (a slow or
// blocked handler) is paused at 4 MiB (32 MiB with Batch handlers), or at
// n/(2.5 * partitions) when that is less, but never under 64 KiB; what it
// holds then is at most 2.5 times that. Fetches are sized so that a
// partition's share of one is at most half its pause threshold once
// decompressed (see kgo.FetchMaxPartitionBytes: Kafka's fetch limits count
// compressed bytes; the consumer lowers the one it is given, never raises
// it).
func MaxBufferedBytes(n int64) Option {
	return func(c *config) {
		if n < 1<<20 {
			c.fail(fmt.Errorf("consumer: MaxBufferedBytes(%d): want 1 MiB (1048576) or more", n))
			return
		}
		c.maxBuffered = n
	}
}

// DefaultRetry sets the back-off of handlers registered without Retry, and
// fills the zero fields of those registered with one. It also paces the
// waits for the registry and for dead-letter and retry-topic writes.
func DefaultRetry(b Backoff) Option {
	return func(c *config) {
		if err := b.validate("DefaultRetry"); err != nil {
			c.fail(err)
			return
		}
		c.retry = b.or(packageBackoff)
	}
}

// HandlerOption configures one handler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	retry       Backoff
	retrySet    bool
	retryTopics []time.Duration
	batch       int
	messageID   func(bus.Meta) (string, error)
	err         error
}

func (h *handlerConfig) fail(err error) {
	if h.err == nil {
		h.err = err
	}
}

// Retry sets the handler's back-off and how many times it runs for one
// record before the record is given up (see Backoff). A handler error
// marked with Permanent is not retried.
func Retry(b Backoff) HandlerOption {
	return func(h *handlerConfig) {
		if err := b.validate("Retry"); err != nil {
			h.fail(err)
		}
		h.retry, h.retrySet = b, true
	}
}

// MaxRetryTopics bounds how many retry topics one handler may use.
const MaxRetryTopics = 20

// RetryTopics turns on non-blocking retries through retry topics: a record
// the handler gives up on goes to "<topic>.<group>.retry-1" (see
// RetryTopicName) and is handled again there once delays[0] has passed,
// then to retry-2 after delays[1], and so on; after the last one it goes
// to the dead-letter topic. Its partition goes on meanwhile, so records of
// one key may be handled out of order: use it only for handlers that do
// not depend on order.
//
// At each stage the handler runs as often as its Retry back-off says;
// without Retry, once per stage. A permanent error goes to the dead-letter
// topic at once. The retry topics must exist before Run (it checks): create
// them like the topic itself, with the same partition count (see
// Consumer.Topics).
func RetryTopics(delays ...time.Duration) HandlerOption {
	return func(h *handlerConfig) {
		if len(delays) == 0 || len(delays) > MaxRetryTopics {
			h.fail(fmt.Errorf("consumer: RetryTopics: %d delays: want 1 to %d", len(delays), MaxRetryTopics))
			return
		}
		for i, d := range delays {
			if d <= 0 {
				h.fail(fmt.Errorf("consumer: RetryTopics: delay %d is %v: want a positive duration", i+1, d))
			}
		}
		h.retryTopics = append([]time.Duration(nil), delays...)
	}
}

// Observe calls fn with every record the consumer settles (handled,
// skipped, sent to a retry topic, dead-lettered), on the partition's
// goroutine once the record is settled: fn must be quick and must not block.
// Test kits and tools use it (evbustest.Recorder). The default is none.
func Observe(fn func(Outcome)) Option { return func(c *config) { c.observe = fn } }

// Compression sets the codecs of the dead-letter and retry records the
// consumer writes, in order of preference (kgo.ProducerBatchCompression):
// kgo.NoCompression() by default, which every stock client reads and
// which Kafka's Java client, librdkafka and kafkajs default to themselves
// (franz-go's own default, snappy, cannot be read by kafkajs without a
// codec plugin). kgo.GzipCompression() is the one codec every stock client
// reads; docs/wire-format.md lists which client reads which. A
// kgo.ProducerBatchCompression passed to Kafka wins over this option.
func Compression(codecs ...kgo.CompressionCodec) Option {
	return func(c *config) {
		if len(codecs) == 0 {
			c.fail(errors.New("consumer: Compression(): pass at least one codec, e.g. kgo.NoCompression() or kgo.GzipCompression()"))
			return
		}
		c.compression = codecs
	}
}
