package consumer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/internal/eventctx"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// A record is settled in steps, each of which either passes the record on
// or settles it:
//
//	open      headers -> bus.Meta; a CloudEvent missing a required
//	          attribute is poison (open.go)
//	route     the handler registered for (topic, ce_type); without ce_type,
//	          for the writer schema's full name; none: skip or dead-letter
//	decode    Avro -> *T; poison is dead-lettered at once, an unavailable
//	          registry is waited out on the same record
//	invoke    the handler, retried with back-off (retry.go); then the next
//	          retry topic or the dead-letter topic (deadletter.go)
//
// Writing to a retry or dead-letter topic is retried until it succeeds:
// the record is settled (and its offset committable) only then.
//
// Errors are sorted by kind: permanentError (the handler says retrying is
// pointless), poisonError (the record itself is bad), transientError (not
// the record's fault: wait and try the same record again, never
// dead-letter). HandleTx handlers run in a transaction of the service's
// database (tx.go; batch.go for several records at once); judge decides
// whether a failure there is the database's (a transient error) or the
// record's.

// outcome says how a step left the record.
type outcome int

const (
	proceed outcome = iota // go on to the next step
	settled                // handled, skipped, or written to a retry or dead-letter topic
	stopped                // the partition stopped first: not settled, not committed
)

// call is one record on its way through the steps, with what they found.
type call struct {
	c   *Consumer
	p   *partition
	rec *kgo.Record
	// ctx is the record's: the partition's, with the record's process
	// span when one is recorded (span).
	ctx          context.Context
	span         trace.Span
	meta         bus.Meta
	ceType       []byte // nil when the record has no ce_type
	schemaHeader []byte // __value_schema_id, when present
	origin       wire.Origin
	prior        int       // handler runs in earlier stages (retry topics)
	due          time.Time // retry topics: when the handler may run again

	b *binding  // the handler, once routed
	h *handling // with v, the decoded record; nil to decode it (again)
	v any

	// A replayed record's (outcome.go): the dead letter it replays (its
	// dlt-replay-of), what became of it, and its new dead letter.
	replayOf string
	result   Result
	dead     *kgo.Record
}

// handling is what a handler call gets besides the value: the event's
// metadata and its context. It is allocated with the value.
type handling struct {
	meta bus.Meta
	ctx  handlerContext
}

// handlerContext is a handler's context: the event's metadata (what
// bus.WithMeta would add) and the attempt number (Attempt), without two
// context.WithValue per call (BenchmarkPipeline/trick=ownContext).
type handlerContext struct {
	context.Context
	meta    *bus.Meta
	attempt int
}

func (c *handlerContext) Value(key any) any {
	switch key {
	case eventctx.MetaKey:
		return c.meta
	case attemptKey{}:
		return c.attempt
	}
	return c.Context.Value(key)
}

// process settles the lane's record it. It returns false when the
// partition stopped first.
func (c *Consumer) process(p *partition, it laneItem) bool {
	r := call{c: c, p: p, rec: it.rec}
	if !r.steps(r.open()) {
		return false
	}
	r.settle(it.seq)
	return true
}

// steps settles a record that open has read; err is open's. It returns
// false when the partition stopped first.
func (r *call) steps(err error) bool {
	r.trace()
	if err != nil {
		return r.deadLetter(wire.KindPoison, r.prior, err) == settled
	}
	if !r.due.IsZero() {
		if !r.waitDue() {
			return false
		}
	}
	if out := r.route(); out != proceed {
		return out == settled
	}
	if out := r.decode(); out != proceed {
		return out == settled
	}
	return r.invoke(nil) == settled
}

// trace starts the record's process span.
func (r *call) trace() {
	r.ctx, r.span = r.c.cfg.tel.Process(r.p.ctx, r.rec, r.c.group, r.p.replay())
}

// route finds the record's handler.
func (r *call) route() outcome {
	c, p := r.c, r.p
	if r.ceType == nil {
		for n := 1; ; n++ {
			name, err := r.writerName()
			if err == nil {
				r.meta.Type = name
				break
			}
			if isPoison(err) {
				return r.deadLetter(wire.KindPoison, r.prior, err)
			}
			if !r.waitDecode(n, err) {
				return stopped
			}
		}
	}
	if r.ceType != nil {
		r.b = p.handlers[string(r.ceType)]
	} else {
		r.b = p.handlers[r.meta.Type]
	}
	if r.b != nil {
		r.meta.Type = r.b.name // shared, not a copy per record
		return proceed
	}
	if r.ceType != nil {
		r.meta.Type = string(r.ceType)
	}
	if c.cfg.unhandled == DeadLetter {
		return r.deadLetter(wire.KindPermanent, r.prior,
			fmt.Errorf("no handler for %s on topic %s in group %s", r.meta.Type, p.home.topic, c.group))
	}
	r.skip()
	return settled
}

// writerName returns the full name of the record the value was written
// as: the writer schema's, or that of the union branch it carries.
func (r *call) writerName() (string, error) {
	f, err := codec.ParseFrame(r.rec.Value, r.schemaHeader)
	if err != nil {
		return "", &poisonError{err: err}
	}
	var w *codec.Schema
	if f.HasGUID() {
		_, w, err = r.c.reg.SchemaByGUID(r.p.ctx, f.GUIDString())
	} else {
		w, err = r.c.reg.SchemaByID(r.p.ctx, f.ID)
	}
	if err != nil {
		return "", classify(err)
	}
	if w.IsUnion() {
		branches := w.Branches()
		i, n := binary.Varint(f.Body)
		if n <= 0 || i < 0 || i >= int64(len(branches)) || branches[i] == "" {
			return "", poison("%w: union branch index does not name a record of schema %d", codec.ErrUndecodable, f.ID)
		}
		return branches[i], nil
	}
	if name := w.FullName(); name != "" {
		return name, nil
	}
	return "", poison("%w: writer schema %d is not a record, and the record has no %s", codec.ErrUndecodable, f.ID, wire.HeaderType)
}

// decode decodes the record's value into a new *T (r.v), with the rest of
// what a handler call needs (r.h).
func (r *call) decode() outcome {
	for n := 1; ; n++ {
		err := r.decodeOnce()
		if err == nil {
			return proceed
		}
		if isPoison(err) {
			return r.deadLetter(wire.KindPoison, r.prior, err)
		}
		if !r.waitDecode(n, err) {
			return stopped
		}
	}
}

// decodeOnce is one try of decode; its error is a poisonError or a
// transientError.
func (r *call) decodeOnce() error {
	h, v := r.b.newCall()
	_, f, err := r.c.codec.DecodeWriter(r.p.ctx, r.rec.Value, r.schemaHeader, r.b.desc.Schema(), v)
	if err != nil {
		return classify(err)
	}
	r.meta.SchemaID = f.ID
	r.h, r.v = h, v
	return nil
}

// classify sorts a decoding error: the codec's sentinels mean the record is
// poison; anything else (the registry unavailable, a cancelled context) is
// transient.
func classify(err error) error {
	for _, target := range []error{
		codec.ErrWrongMagic, codec.ErrTruncated, codec.ErrUnknownSchema,
		codec.ErrUndecodable, codec.ErrIncompatible, codec.ErrInvalidSchema,
	} {
		if errors.Is(err, target) {
			return &poisonError{err: err}
		}
	}
	return &transientError{err: err}
}

func isPoison(err error) bool {
	var pe *poisonError
	return errors.As(err, &pe)
}

// errStopped: the partition stopped before the handler could run.
var errStopped = errors.New("consumer: partition stopped")

// once runs the handler once with the event's metadata and attempt number
// on its context: a HandleTx handler in tx when tx is not nil, else as
// registered. A panic becomes an error.
func (r *call) once(attempt int, tx any) (err error) {
	tel := r.c.cfg.tel
	// The clock is read only for a duration histogram that records.
	var start time.Time
	timed := tel.Timed(r.ctx)
	if timed {
		start = time.Now()
	}
	defer func() {
		if v := recover(); v != nil {
			err = r.panicked(v)
		}
		if timed {
			tel.Handled(r.ctx, r.p.outcomes, start, err)
		}
	}()
	// The handler may keep its context: what it points to is its own
	// (the call stays on the stack).
	h := r.h
	h.meta = r.meta
	h.ctx = handlerContext{Context: r.ctx, meta: &h.meta, attempt: attempt}
	if tx != nil {
		return r.b.tx.handle(&h.ctx, tx, r.v, &h.meta)
	}
	return r.b.invoke(&h.ctx, r.v, &h.meta)
}

// panicked logs a handler's panic, with its stack, and returns it as the
// handler's error.
func (r *call) panicked(v any, extra ...slog.Attr) error {
	r.c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: handler panicked",
		r.attrs(append(extra, slog.Any("panic", v), slog.String("stack", string(debug.Stack())))...)...)
	return &panicError{value: v}
}

// report reports how the record was settled: to the span, the metrics and
// the Observe function, which gets o with the record's Meta.
func (r *call) report(o Outcome) {
	c := r.c
	if r.replayOf != "" {
		r.result = o.Result
	}
	var outcome string
	switch o.Result {
	case Handled:
		outcome = tracing.OutcomeOK
	case Duplicate:
		outcome = tracing.OutcomeDuplicate
	case Skipped:
		outcome = tracing.OutcomeSkipped
	case SentToRetry:
		outcome = tracing.OutcomeRetryTopic
	case DeadLettered:
		outcome = tracing.OutcomeDeadLettered
	}
	if r.span != nil {
		c.cfg.tel.Settled(r.ctx, r.span, r.p.outcomes, outcome, o.Err)
	}
	if c.cfg.observe != nil {
		o.Group, o.Meta = c.group, r.meta
		c.cfg.observe(o)
	}
}

// handled counts and reports a record whose handler succeeded.
func (r *call) handled(attempts int) {
	r.c.stats.handled.Add(1)
	r.report(Outcome{Result: Handled, Value: r.v, Attempts: attempts})
}

// duplicate counts and reports a record its group had processed.
func (r *call) duplicate() {
	c := r.c
	c.stats.duplicates.Add(1)
	r.report(Outcome{Result: Duplicate, Value: r.v})
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.LogAttrs(context.Background(), slog.LevelDebug, "consumer: message processed before; skipped", r.attrs()...)
	}
}

// attrs are the log attributes of the record, then extra.
func (r *call) attrs(extra ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String("event_id", r.meta.ID),
		slog.String("type", r.meta.Type),
		slog.String("topic", r.rec.Topic),
		slog.Int("partition", int(r.rec.Partition)),
		slog.Int64("offset", r.rec.Offset),
	}, extra...)
}
