package consumer

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/wire"
)

// Consumer is a member of a consumer group that hands each record to the
// handler registered for its event type. Create it with New, register
// handlers with Handle, then Run it; Close stops it. Its methods are safe
// for concurrent use.
//
// A record's path: poll (poll.go) hands fetched records to their
// partition (partition.go), whose lanes (lane.go) settle them one after
// the other, each as a call (call.go): its headers read (open.go), routed,
// decoded, its handler run and retried (retry.go), or sent to a retry or
// dead-letter topic (deadletter.go); HandleTx handlers run in transactions
// (batch.go, tx.go). Settled records move the partition's commit point
// (a replayed one once its outcome is in the ledger, outcome.go), which
// commitLoop commits (commit.go); rebalance.go lets partitions go.
type Consumer struct {
	// Set by New, read-only after.
	group string
	reg   *schema.Registry
	codec *codec.Codec
	cfg   config
	log   *slog.Logger
	seed  maphash.Seed
	sem   *semaphore
	gate  *gate
	// health feeds Ready and logs lasting connection failures.
	health  *health
	closing chan struct{} // closed by Close
	stopped chan struct{} // closed when Run returns

	// mu protects the fields below: the handlers (read without it once
	// Run started) and the consumer's lifecycle.
	mu       sync.Mutex
	handlers map[string]map[string]*binding // topic -> ce_type -> handler
	regErr   error
	started  bool
	closed   bool
	closeCtx context.Context

	// closeErr is written by Run before it closes stopped; Close reads it
	// after.
	closeErr error

	// Set by Run before the client is created, read-only after: the
	// client's options depend on them.
	retryOf   map[string]stage // retry and replay topic -> its topic and stage
	batchOnly bool             // every topic read is read in batches (Batch)
	// Set by Run once the client is created, before the group is joined.
	cl *kgo.Client
	// fetchWait is the client's kgo.FetchMaxWait: how long the gate holds
	// the poll at most.
	fetchWait time.Duration

	// pmu protects parts.
	pmu   sync.Mutex
	parts map[tp]*partition
	// nparts is len(parts), for the partitions' share of
	// MaxBufferedBytes.
	nparts atomic.Int64
	// sizer sizes fetches in decompressed bytes (memory.go).
	sizer fetchSizer

	// commitMu orders commits with revocations: offsets of a partition
	// are never committed after its revocation finished.
	commitMu sync.Mutex

	// outcomes writes the outcomes of replayed records to the ledger.
	outcomes outcomes

	stats counters
}

type tp struct {
	topic     string
	partition int32
}

// New returns a consumer for group that decodes through reg. It fails for
// a bad group name or option; the brokers are first contacted by Run.
func New(group string, reg *schema.Registry, opts ...Option) (*Consumer, error) {
	if !groupName.MatchString(group) {
		return nil, fmt.Errorf("consumer: group %q: want 1 to 200 characters of a-z, A-Z, 0-9, '.', '_' and '-' (it is part of the dead-letter topic names)", group)
	}
	if reg == nil {
		return nil, errors.New("consumer: nil registry: pass one from schema.New")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	dec, err := codec.New(reg)
	if err != nil {
		return nil, err
	}
	tel, err := cfg.telOpt.Resolve("consumer")
	if err != nil {
		return nil, err
	}
	cfg.tel = tel
	c := &Consumer{
		group:    group,
		reg:      reg,
		codec:    dec,
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
	c.outcomes.c = c
	c.stats.deadLettered = make(map[wire.FailureKind]*atomic.Uint64, 3)
	for _, k := range []wire.FailureKind{wire.KindRetriesExhausted, wire.KindPermanent, wire.KindPoison} {
		c.stats.deadLettered[k] = new(atomic.Uint64)
	}
	return c, nil
}

// Group returns the consumer group's name.
func (c *Consumer) Group() string { return c.group }

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
	if err := c.newClient(topics); err != nil {
		return err
	}

	// poll ends with ctx or Close; the commits with it. The partitions'
	// contexts (the handlers') end with ctx, or when they are let go.
	pollCtx, cancelPoll := context.WithCancel(ctx)
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
		c.cl.Close()
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

	commitsDone := make(chan struct{})
	go c.commitLoop(pollCtx, commitsDone)
	c.poll(pollCtx, ctx)
	cancelPoll()
	<-commitsDone

	// Stopping: by Close (gently, within its context) or because ctx
	// ended (handler contexts are already cancelled).
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

// newClient creates the consumer's franz-go client.
func (c *Consumer) newClient(topics []string) error {
	opts := []kgo.Opt{
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ProducerBatchMaxBytes(MaxDeadLetterBytes),
		kgo.FetchMaxWait(fetchMaxWait),
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
	return nil
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
	// Replays' outcomes before their offsets, as a revocation waits for
	// them: within DrainTimeout, for a ledger that cannot be written
	// must not hold the stop (the records stay uncommitted).
	flushCtx, cancel := context.WithTimeout(ctx, c.cfg.drainTimeout)
	c.outcomes.flush(flushCtx, parts)
	cancel()

	commitCtx, cancel := boundedContext(ctx, shutdownTimeout)
	c.commitMu.Lock()
	c.commit(commitCtx, parts)
	c.take(allOf(parts))
	c.commitMu.Unlock()
	cancel()
	c.outcomes.stop()
	for _, p := range parts {
		p.cancel() // its lanes returned, or were cancelled by drain
	}

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
