package consumer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/schema"
)

// Consumer is a member of a consumer group that hands each record to the
// handler registered for its event type. Create it with New, register
// handlers with Handle, then Run it; Close stops it. Its methods are safe
// for concurrent use.
type Consumer struct {
	group string
	reg   *schema.Registry
	codec *codec.Codec
	cfg   config
	log   *slog.Logger
	seed  maphash.Seed

	mu       sync.Mutex
	handlers map[string]map[string]*binding // topic -> ce_type -> handler
	regErr   error
	started  bool
	closed   bool
	closeCtx context.Context
	closing  chan struct{} // closed by Close
	stopped  chan struct{} // closed when Run returns
	closeErr error

	// Set by Run before the client starts.
	cl      *kgo.Client
	retryOf map[string]stage // retry and replay topic -> its topic and stage
	sem     *semaphore
	gate    *gate
	// fetchWait is the client's FetchMaxWait: how long the gate holds
	// the poll at most.
	fetchWait time.Duration

	pmu   sync.Mutex
	parts map[tp]*partition
	// nparts is len(parts), for the partitions' share of
	// MaxBufferedBytes.
	nparts atomic.Int64
	// sizer sizes fetches in decompressed bytes (memory.go).
	sizer fetchSizer
	// batchOnly: every topic read is read in batches (Batch), set by
	// Run before the first fetch.
	batchOnly bool

	// commitMu orders commits with revocations: offsets of a partition
	// are never committed after its revocation finished.
	commitMu sync.Mutex

	stats counters

	// health feeds Ready and logs lasting connection failures.
	health *health
}

type tp struct {
	topic     string
	partition int32
}

// stage says what a consumed topic is: a topic handlers were registered
// for or its replay topic (n 0), or its retry topic n.
type stage struct {
	topic string
	n     int
}

// groupName is what Kafka accepts in a topic name: the group is part of
// the dead-letter and retry topic names.
var groupName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// New returns a consumer for group that decodes through reg. It fails for
// a bad group name or option; the brokers are first contacted by Run.
func New(group string, reg *schema.Registry, opts ...Option) (*Consumer, error) {
	if !groupName.MatchString(group) {
		return nil, fmt.Errorf("consumer: group %q: want 1 to 200 characters of a-z, A-Z, 0-9, '.', '_' and '-' (it is part of the dead-letter topic names)", group)
	}
	if reg == nil {
		return nil, errors.New("consumer: nil registry: pass one from schema.New")
	}
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("consumer: New: option %d is nil", i+1)
		}
		o(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	tel, err := cfg.telOpt.Resolve("consumer")
	if err != nil {
		return nil, err
	}
	cfg.tel = tel
	c := &Consumer{
		group:    group,
		reg:      reg,
		codec:    codec.New(reg),
		cfg:      cfg,
		log:      cfg.logger.With("group", group),
		seed:     maphash.MakeSeed(),
		handlers: make(map[string]map[string]*binding),
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
		parts:    make(map[tp]*partition),
		sem:      newSemaphore(cfg.concurrency),
		gate:     newGate(),
	}
	c.health = newHealth(c.log)
	c.stats.deadLettered = make(map[Kind]*atomic.Uint64, 3)
	for _, k := range []Kind{KindRetriesExhausted, KindPermanent, KindPoison} {
		c.stats.deadLettered[k] = new(atomic.Uint64)
	}
	return c, nil
}

// Group returns the consumer group's name.
func (c *Consumer) Group() string { return c.group }

// Topics returns every topic the consumer uses, sorted: the topics of the
// registered handlers, their retry topics, their replay topics and their
// dead-letter topics. Create them before Run (Run checks that the retry
// topics exist; a missing dead-letter or replay topic is logged, and a
// record due in a dead-letter topic waits until it exists). Give retry and
// replay topics the partition count of their topic.
func (c *Consumer) Topics() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	consume, retry := c.topicsLocked()
	var out []string
	out = append(out, consume...)
	for _, t := range consume {
		if _, isRetry := retry[t]; !isRetry {
			out = append(out, bus.DeadLetterTopic(t, c.group))
		}
	}
	slices.Sort(out)
	return out
}

// topicsLocked returns the topics to consume (handlers', retry and replay
// topics) and which of them are retry and replay topics.
func (c *Consumer) topicsLocked() ([]string, map[string]stage) {
	retry := make(map[string]stage)
	var topics []string
	for topic, byType := range c.handlers {
		replay := ReplayTopicName(topic, c.group)
		retry[replay] = stage{topic: topic}
		topics = append(topics, topic, replay)
		stages := 0
		for _, b := range byType {
			stages = max(stages, len(b.retryTopics))
		}
		for n := 1; n <= stages; n++ {
			name := RetryTopicName(topic, c.group, n)
			retry[name] = stage{topic: topic, n: n}
			topics = append(topics, name)
		}
	}
	slices.Sort(topics)
	return topics, retry
}

// Run joins the group and handles records until ctx ends or Close is
// called. Until the brokers answer, it waits: a broker it cannot connect
// to is logged at once as an ERROR naming its address and the cause, then
// at most every 30 s while it lasts (Ready tells the same). It returns nil
// after Close, the context's cause when ctx ended,
// or why it could not start: a handler registration error (ErrRegistration),
// no handlers (ErrNoHandlers), a missing retry topic (bus.ErrTopicMissing),
// a bad Kafka option, a broker's refusal that retrying cannot fix (failed
// authentication).
//
// When ctx ends, handler contexts are cancelled at once; Run waits for the
// handlers to return (DrainTimeout at most), commits what was handled and
// leaves the group. Close stops more gently.
func (c *Consumer) Run(ctx context.Context) (err error) {
	if ctx == nil {
		return errors.New("consumer: Run: nil context")
	}
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return fmt.Errorf("%w: Run was already called", ErrClosed)
	}
	c.started = true
	if c.closed {
		c.mu.Unlock()
		close(c.stopped)
		return ErrClosed
	}
	regErr := c.regErr
	topics, retryOf := c.topicsLocked()
	c.mu.Unlock()
	defer close(c.stopped)
	defer func() { c.health.setPhase(phaseStopped, err) }()

	switch {
	case regErr != nil:
		return regErr
	case len(topics) == 0:
		return ErrNoHandlers
	}
	c.retryOf = retryOf
	c.batchOnly = true
	for _, t := range topics {
		c.batchOnly = c.batchOnly && c.batching(c.stageOf(t))
	}

	opts := []kgo.Opt{
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ProducerBatchMaxBytes(MaxDeadLetterBytes),
		kgo.FetchMaxWait(FetchMaxWait),
		kgo.ProducerBatchCompression(c.cfg.compression...),
	}
	opts = append(opts, c.cfg.kafka...)
	opts = append(opts,
		kgo.WithHooks(c.health, &c.sizer),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { c.health.assigned() }),
		kgo.ConsumerGroup(c.group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("consumer: Kafka client: %w", err)
	}
	c.cl = cl
	c.fetchWait = cl.OptValue(kgo.FetchMaxWait).(time.Duration)
	c.sizer.start(cl, c.fetchShare())

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	pollCtx, cancelPoll := context.WithCancel(runCtx) // ends with Close too
	defer cancelPoll()
	go func() {
		select {
		case <-c.closing:
			cancelPoll()
		case <-pollCtx.Done():
		}
	}()
	if stop, err := c.cfg.tel.ObserveLag(c.group, c.lags); err == nil {
		defer stop()
	} else {
		c.log.Warn("consumer: lag metric not registered", "error", err)
	}
	if err := c.checkTopics(pollCtx, topics, retryOf); err != nil {
		cl.Close()
		switch {
		case ctx.Err() != nil:
			return context.Cause(ctx)
		case pollCtx.Err() != nil:
			return nil // closed while starting
		}
		return err
	}
	c.health.setPhase(phaseRunning, nil)
	c.log.Info("consumer started", "topics", topics)

	commitCtx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	commitsDone := make(chan struct{})
	go c.commitLoop(commitCtx, commitsDone)

	c.poll(pollCtx, runCtx)

	// Stopping: by Close (gently, within its context) or because ctx
	// ended (handler contexts are already cancelled).
	stopCommits()
	<-commitsDone
	c.mu.Lock()
	closeCtx := c.closeCtx
	c.mu.Unlock()
	if closeCtx != nil && ctx.Err() == nil {
		c.closeErr = c.shutdown(closeCtx, false)
		c.log.Info("consumer closed")
		return nil
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.drainTimeout)
	defer cancel()
	c.closeErr = c.shutdown(drainCtx, true)
	c.log.Info("consumer stopped", "cause", context.Cause(ctx))
	return context.Cause(ctx)
}

// Close stops the consumer: it stops fetching, lets the handler calls
// under way finish until ctx ends (then cancels them), commits the offsets
// of what was handled, and leaves the group. It waits for Run to return.
// It returns an error wrapping ErrDrain when ctx ended first, and the
// first result on every later call.
func (c *Consumer) Close(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c.mu.Lock()
	if c.closed {
		started := c.started
		c.mu.Unlock()
		if started {
			<-c.stopped
		}
		return c.closeErr
	}
	c.closed = true
	c.closeCtx = ctx
	started := c.started
	close(c.closing)
	c.mu.Unlock()
	if !started {
		return nil
	}
	<-c.stopped
	return c.closeErr
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
			others = append(others, t, bus.DeadLetterTopic(t, c.group))
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
// topics or not, trying again at the back-off of DefaultRetry while they
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
		t := time.NewTimer(c.cfg.retry.delay(n))
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
			dests[bus.DeadLetterTopic(t, c.group)] = t
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

// poll fetches records and hands them to their partitions until ctx ends,
// waiting while a full partition holds the poll (gate). Rebalances are
// blocked while a poll's records are dispatched, so a revocation never
// races a dispatch.
func (c *Consumer) poll(ctx, runCtx context.Context) {
	for {
		shed := c.gate.wait(ctx, c.fetchWait)
		c.sizer.resize(c.cl, c.fetchShare())
		// A whole fetch at a time: franz-go fetches again only once its
		// buffered fetch is taken, so the gate decides between fetches,
		// while the partitions of one fetch all get their records.
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			c.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, partition int32, err error) {
			var session *kgo.ErrGroupSession
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &session) {
				return // a group session failure is logged by OnGroupManageError
			}
			c.log.Error("consumer: fetch error", "topic", topic, "partition", partition, "error", err)
		})
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				part := c.partition(runCtx, p.Topic, p.Partition)
				part.highWatermark.Store(p.HighWatermark)
				part.dispatch(p.Records)
			}
		})
		if shed {
			c.shedFull()
		}
		c.cl.AllowRebalance()
	}
}

// shedFull pauses the partitions that hold the poll.
func (c *Consumer) shedFull() {
	for _, p := range c.all() {
		p.shedFull()
	}
}

// partition returns the state of a partition, created on its first records
// after it was assigned.
func (c *Consumer) partition(runCtx context.Context, topic string, id int32) *partition {
	k := tp{topic, id}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	p := c.parts[k]
	if p == nil {
		p = newPartition(runCtx, c, topic, id)
		c.parts[k] = p
		c.nparts.Store(int64(len(c.parts)))
	}
	return p
}

// take removes the partitions named in m and returns them.
func (c *Consumer) take(m map[string][]int32) []*partition { return c.named(m, true) }

// lookup returns the partitions named in m.
func (c *Consumer) lookup(m map[string][]int32) []*partition { return c.named(m, false) }

func (c *Consumer) named(m map[string][]int32, remove bool) []*partition {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	var out []*partition
	for topic, ids := range m {
		for _, id := range ids {
			k := tp{topic, id}
			if p := c.parts[k]; p != nil {
				out = append(out, p)
				if remove {
					delete(c.parts, k)
					c.nparts.Store(int64(len(c.parts)))
				}
			}
		}
	}
	return out
}

// lags returns the lag of each assigned partition.
func (c *Consumer) lags() []telemetry.Lag {
	parts := c.all()
	out := make([]telemetry.Lag, 0, len(parts))
	for _, p := range parts {
		if n, ok := p.lag(); ok {
			out = append(out, telemetry.Lag{Topic: p.topic, Partition: p.id, Records: n})
		}
	}
	return out
}

func (c *Consumer) all() []*partition {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	out := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		out = append(out, p)
	}
	return out
}

// onRevoked runs when partitions move to another member (or the member
// leaves): no record of theirs starts any more, the handler calls under
// way finish (DrainTimeout at most), and what was handled is committed
// before the partitions are let go.
func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	parts := c.lookup(revoked)
	if len(parts) == 0 {
		return
	}
	for _, p := range parts {
		p.stop()
	}
	drainCtx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	abandoned := c.drain(drainCtx, parts)
	cancel()
	c.commitMu.Lock()
	c.commit(ctx, parts)
	c.take(revoked)
	c.commitMu.Unlock()
	c.unpause(parts)
	c.log.Info("consumer: partitions revoked", "partitions", names(parts), "abandoned_handlers", abandoned)
}

// onLost runs when the member lost its partitions without a chance to
// commit (its session expired): their handlers are cancelled and nothing
// is committed; the next owner handles the uncommitted records again.
func (c *Consumer) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.commitMu.Lock()
	parts := c.take(lost)
	c.commitMu.Unlock()
	if len(parts) == 0 {
		return
	}
	for _, p := range parts {
		p.stop()
		p.cancel()
	}
	drainCtx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	c.drain(drainCtx, parts)
	cancel()
	c.unpause(parts)
	c.log.Warn("consumer: partitions lost", "partitions", names(parts))
}

// drain waits for the partitions' lanes to return; when ctx ends first it
// cancels their handlers and waits a little more. It returns how many
// partitions still had handlers running.
func (c *Consumer) drain(ctx context.Context, parts []*partition) int {
	done := make(chan struct{})
	go func() {
		for _, p := range parts {
			p.wg.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
		return 0
	case <-ctx.Done():
	}
	for _, p := range parts {
		p.cancel()
	}
	t := time.NewTimer(cancelGrace)
	defer t.Stop()
	select {
	case <-done:
		return 0
	case <-t.C:
	}
	n := 0
	for _, p := range parts {
		if !p.idle() {
			n++
		}
	}
	return n
}

// cancelGrace is how long handlers get to return once their context is
// cancelled, before the consumer goes on without them.
const cancelGrace = 5 * time.Second

// unpause resumes fetching partitions that were paused, so they are not
// still paused if they are assigned again.
func (c *Consumer) unpause(parts []*partition) {
	m := make(map[string][]int32)
	for _, p := range parts {
		if p.takePaused() {
			m[p.topic] = append(m[p.topic], p.id)
		}
	}
	if len(m) > 0 {
		c.cl.ResumeFetchPartitions(m)
	}
}

// shutdown stops every partition, waits for handlers (until ctx ends,
// cancelling them at once when hard), commits and leaves the group.
func (c *Consumer) shutdown(ctx context.Context, hard bool) error {
	parts := c.all()
	for _, p := range parts {
		p.stop()
		if hard {
			p.cancel()
		}
	}
	abandoned := c.drain(ctx, parts)

	commitCtx, cancel := boundedContext(ctx, shutdownTimeout)
	c.commitMu.Lock()
	c.commit(commitCtx, parts)
	c.take(allOf(parts))
	c.commitMu.Unlock()
	cancel()

	leaveCtx, cancel := boundedContext(ctx, shutdownTimeout)
	c.cl.AllowRebalance()
	if err := c.cl.LeaveGroupContext(leaveCtx); err != nil {
		c.log.Warn("consumer: leaving the group", "error", err)
	}
	cancel()
	c.cl.Close()
	if abandoned > 0 {
		return fmt.Errorf("%w: %d partitions had handlers running: %w", ErrDrain, abandoned, context.Cause(ctx))
	}
	return nil
}

// shutdownTimeout bounds the final commit and the leave when the shutdown
// context has already ended.
const shutdownTimeout = 10 * time.Second

// boundedContext returns ctx while it is live, else a fresh context of d
// that keeps ctx's values: the final commit must still be tried.
func boundedContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if ctx.Err() == nil {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

func allOf(parts []*partition) map[string][]int32 {
	m := make(map[string][]int32)
	for _, p := range parts {
		m[p.topic] = append(m[p.topic], p.id)
	}
	return m
}

func names(parts []*partition) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%s/%d", p.topic, p.id)
	}
	slices.Sort(out)
	return out
}

// commitLoop commits handled offsets every CommitInterval until ctx ends.
func (c *Consumer) commitLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(c.cfg.commitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.commitMu.Lock()
		c.commit(ctx, c.all())
		c.commitMu.Unlock()
	}
}

// commit commits, for each partition, the offset after its last record
// that has every record before it settled. The caller holds commitMu.
func (c *Consumer) commit(ctx context.Context, parts []*partition) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	byTP := make(map[tp]*partition)
	for _, p := range parts {
		eo, ok := p.committable()
		if !ok {
			continue
		}
		if offsets[p.topic] == nil {
			offsets[p.topic] = make(map[int32]kgo.EpochOffset)
		}
		offsets[p.topic][p.id] = eo
		byTP[tp{p.topic, p.id}] = p
	}
	if len(offsets) == 0 {
		return
	}
	c.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			c.log.Warn("consumer: commit failed; it is tried again", "error", err)
			return
		}
		for _, t := range resp.Topics {
			for _, pr := range t.Partitions {
				p := byTP[tp{t.Topic, pr.Partition}]
				if p == nil {
					continue
				}
				if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
					c.log.Warn("consumer: commit failed; it is tried again", "topic", t.Topic, "partition", pr.Partition, "error", err)
					continue
				}
				p.markCommitted(offsets[t.Topic][pr.Partition].Offset)
			}
		}
	})
}

// Result is what became of a settled record.
type Result string

// The results an Observe function sees.
const (
	Handled      Result = "handled"       // a handler returned nil
	Skipped      Result = "skipped"       // no handler for the type
	SentToRetry  Result = "retry-topic"   // sent on to the next retry topic
	DeadLettered Result = "dead-lettered" // written to the dead-letter topic
	Duplicate    Result = "duplicate"     // a HandleTx handler's group had processed its message id
)

// Outcome reports one settled record to an Observe function.
type Outcome struct {
	Group    string
	Result   Result
	Meta     bus.Meta
	Value    any   // the decoded event (a *T) when handled or a duplicate, else nil
	Kind     Kind  // why, when dead-lettered
	Attempts int   // handler runs, over every stage
	Err      error // the last error, when not handled
}

// Stats are the consumer's counters since New.
type Stats struct {
	Group           string
	Handled         uint64          // records a handler returned nil for
	Retried         uint64          // handler runs that failed and were run again in place
	RetryTopic      uint64          // records sent on to a retry topic
	Skipped         uint64          // records of types without a handler, skipped
	Duplicates      uint64          // records of HandleTx handlers processed before, skipped
	DeadLettered    map[Kind]uint64 // records written to the dead-letter topic, by kind
	DecodeWaits     uint64          // decodes put off because the registry was unavailable
	PublishFailures uint64          // dead-letter and retry-topic writes that failed and were tried again
	DatabaseWaits   uint64          // HandleTx transactions put off because the database failed
	Conflicts       uint64          // HandleTx transactions run again after a serialization failure, deadlock or lock refused
	Paused          int             // partitions whose fetching is paused now (back-pressure, a wait)
	Buffered        int64           // bytes of records the partitions hold now, decompressed (MaxBufferedBytes)

	// SkippedTypes counts Skipped by type (ce_type, else the writer
	// schema's full name): a type here is one the group has no handler
	// for on that topic. Past 100 types, the others count under
	// OtherTypes.
	SkippedTypes map[string]uint64
}

type counters struct {
	handled, retried, retryTopic, skipped, duplicates atomic.Uint64
	decodeWaits, publishFailures, databaseWaits       atomic.Uint64
	conflicts                                         atomic.Uint64
	deadLettered                                      map[Kind]*atomic.Uint64

	skippedTypes skippedTypes
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() Stats {
	s := Stats{
		Group:           c.group,
		Handled:         c.stats.handled.Load(),
		Retried:         c.stats.retried.Load(),
		RetryTopic:      c.stats.retryTopic.Load(),
		Skipped:         c.stats.skipped.Load(),
		Duplicates:      c.stats.duplicates.Load(),
		DecodeWaits:     c.stats.decodeWaits.Load(),
		PublishFailures: c.stats.publishFailures.Load(),
		DatabaseWaits:   c.stats.databaseWaits.Load(),
		Conflicts:       c.stats.conflicts.Load(),
		DeadLettered:    make(map[Kind]uint64, len(c.stats.deadLettered)),
	}
	for k, v := range c.stats.deadLettered {
		s.DeadLettered[k] = v.Load()
	}
	s.SkippedTypes = c.stats.skippedTypes.snapshot()
	for _, p := range c.all() {
		p.mu.Lock()
		if p.paused {
			s.Paused++
		}
		s.Buffered += p.buffered
		p.mu.Unlock()
	}
	return s
}
