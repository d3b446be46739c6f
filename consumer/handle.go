package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// HandlerFunc handles one event of type T. ev is the decoded value (the
// writer's schema resolved to T's), m what the record carried besides.
// ctx carries m (bus.MetaFrom), so events published while handling carry
// the event's id as their causation id and its correlation id; it is
// cancelled when the consumer stops or the partition is taken away.
//
// Returning nil settles the record. Returning an error runs the handler
// again after a back-off, up to the handler's attempts, then sends the
// record on (to a retry topic or the dead-letter topic); an error marked
// with Permanent skips the retries. A panic counts as an error.
type HandlerFunc[T any] func(ctx context.Context, ev *T, m bus.Meta) error

// binding is a registered handler, with T erased: the dispatch step finds
// it by topic and ce_type.
type binding struct {
	desc *bus.Descriptor
	name string // desc.Name(), the ce_type
	// newCall allocates what one handler call needs, the *T to decode
	// into included, in one allocation.
	newCall func() (*handling, any)
	// invoke runs the handler once: fn, or for HandleTx a transaction
	// around it (invokeTx).
	invoke      func(ctx context.Context, v any, m *bus.Meta) error
	tx          *txBinding // HandleTx handlers only
	retry       Backoff
	retryTopics []time.Duration
}

// Handle registers fn for the events of t on the consumer. Register every
// handler before Run; Handle panics once Run has started. A nil c is
// logged at ERROR (slog.Default) and nothing is registered. A type with a
// definition error (t.Err()), or one registered twice, makes Run fail with
// an error wrapping ErrRegistration, and so does a topic and group whose
// dead-letter, replay or retry topic names Kafka would refuse (wrapping
// wire.ErrTopicName as well), before Run joins the group.
func Handle[T any](c *Consumer, t *bus.Type[T], fn HandlerFunc[T], opts ...HandlerOption) {
	var invoke func(ctx context.Context, v any, m *bus.Meta) error
	if fn != nil {
		invoke = func(ctx context.Context, v any, m *bus.Meta) error { return fn(ctx, v.(*T), *m) }
	}
	register(c, "Handle", t, invoke, nil, opts)
}

// register adds the binding of a handler: invoke runs a Handle handler,
// tb a HandleTx one (invoke is nil then, and tb.handle when fn was). fn
// names the function called, for errors.
func register[T any](c *Consumer, fn string, t *bus.Type[T], invoke func(ctx context.Context, v any, m *bus.Meta) error, tb *txBinding, opts []HandlerOption) {
	if c == nil {
		// Nowhere to record the error: say it where it is seen.
		slog.Error("consumer: " + fn + " with a nil *Consumer: pass the consumer consumer.New returned; the handler is not registered")
		return
	}
	var hc handlerConfig
	if tb != nil && tb.handleAll != nil {
		hc.batch = defaultBatch
	}
	var optErr error
	for i, o := range opts {
		if o == nil {
			optErr = fmt.Errorf("consumer: %s: option %d is nil", fn, i+1)
			break
		}
		o(&hc)
	}
	if optErr == nil {
		optErr = hc.validate()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("consumer: Handle called after Run: register every handler before Run")
	}
	fail := func(err error) {
		if c.regErr == nil {
			c.regErr = err
		}
	}
	switch {
	case t == nil || t.Descriptor() == nil:
		fail(registrationError("nil event type"))
		return
	case invoke == nil && (tb == nil || tb.handle == nil):
		fail(registrationError("%v: nil handler function", t.Descriptor().GoType()))
		return
	case t.Err() != nil:
		fail(registrationError("%w", t.Err()))
		return
	case optErr != nil:
		fail(registrationError("%v: %w", t.Descriptor().GoType(), optErr))
		return
	case tb == nil && (hc.batchSet || hc.messageIDSet):
		fail(registrationError("%v: Batch and MessageID apply to HandleTx handlers only", t.Descriptor().GoType()))
		return
	case tb != nil && tb.store == nil:
		fail(registrationError("%v: HandleTx with a nil *Processed: pass one from consumer.NewProcessed", t.Descriptor().GoType()))
		return
	}
	d := t.Descriptor()
	// The topics derived from the handler's (dead-letter, replay, retry)
	// are checked now, not when the first failed record needs one.
	if err := wire.ValidDeadLetterTopics(d.Topic(), c.group); err != nil {
		fail(registrationError("%v: %w", d.GoType(), err))
		return
	}
	for n := 1; n <= len(hc.retryTopics); n++ {
		if err := wire.ValidTopicName(wire.RetryTopic(d.Topic(), c.group, n)); err != nil {
			fail(registrationError("%v: %w; it is retry topic %d of group %q: use a shorter topic or group name, or fewer retry topics", d.GoType(), err, n, c.group))
			return
		}
	}
	retry := c.cfg.retry
	if hc.retrySet {
		retry = hc.retry.or(c.cfg.retry)
	} else if len(hc.retryTopics) > 0 {
		retry.MaxAttempts = 1 // one run per stage: the retry topics do the retrying
	}
	b := &binding{
		desc: d,
		name: d.Name(),
		newCall: func() (*handling, any) {
			x := new(struct {
				h handling
				v T
			})
			return &x.h, &x.v
		},
		invoke:      invoke,
		tx:          tb,
		retry:       retry,
		retryTopics: hc.retryTopics,
	}
	if tb != nil {
		tb.batch, tb.id = max(hc.batch, 1), hc.messageID
		if tb.id == nil {
			tb.id = metaID
		}
		b.invoke = func(ctx context.Context, v any, m *bus.Meta) error { return c.invokeTx(ctx, tb, v, m) }
	}
	byType := c.handlers[d.Topic()]
	if byType == nil {
		byType = make(map[string]*binding)
		c.handlers[d.Topic()] = byType
	}
	if prev, dup := byType[d.Name()]; dup {
		fail(registrationError("%s on topic %s registered twice (Go types %v and %v)", d.Name(), d.Topic(), prev.desc.GoType(), d.GoType()))
		return
	}
	byType[d.Name()] = b
}

type attemptKey struct{}

// Attempt returns which run of the handler this is for the record being
// handled, from 1, counting the runs in earlier retry topics; 0 outside a
// handler.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
