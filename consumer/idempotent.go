package consumer

import (
	"context"
	"errors"
	"fmt"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// TxHandlerFunc handles one event of type T in tx, a transaction of the
// service's database that also records the event as processed (HandleTx).
// It writes through tx only: what it does elsewhere is not undone when the
// transaction rolls back, and may happen again. Otherwise it is a
// HandlerFunc: the same context, errors and retries.
type TxHandlerFunc[T, Tx any] func(ctx context.Context, tx Tx, ev *T, m bus.Meta) error

// HandleTx registers fn for the events of t on the consumer, as an
// idempotent handler: for each record, evbus begins a transaction on p's
// database, inserts (group, message id) into p's table, and only if the
// row is new runs fn with that transaction, then commits; the record's
// offset is committed after that. A record whose id the group has
// processed is skipped as a Duplicate. A handler error (or panic) rolls
// back both fn's writes and the processed row, then the record is retried
// or dead-lettered as for Handle, and so is a commit the database
// refuses for the record's data (a deferred constraint, a transaction a
// failed statement aborted). A database that cannot serve (begin or the
// insert fails, the connection is lost, or an error that says nothing
// while the database does not answer a ping) is not the record's fault:
// the record waits with back-off, fetching its partition is paused,
// nothing after it is committed, and no attempt is counted. A
// serialization failure or a deadlock runs the transaction again, without
// counting an attempt.
//
// The message id is the record's ce_id; records of foreign producers
// without one get "kafka:<topic>/<partition>/<offset>" (bus.Meta.ID),
// which catches redelivery but not a producer sending the same event
// twice. MessageID changes that. The table stores the id as ProcessedID
// gives it: any id, whatever its bytes, has a row. Batch handles a fetch's
// records in one transaction.
//
// Register before Run; a nil p, or a type or option in error, makes Run
// fail with an error wrapping ErrRegistration.
func HandleTx[T, Tx any](c *Consumer, t *bus.Type[T], p *Processed[Tx], fn TxHandlerFunc[T, Tx], opts ...HandlerOption) {
	tb := &txBinding{}
	if p != nil {
		tb.store = p
	}
	if fn != nil {
		tb.handle = func(ctx context.Context, tx any, v any, m *bus.Meta) error {
			return fn(ctx, tx.(Tx), v.(*T), *m)
		}
	}
	register(c, "HandleTx", t, nil, tb, opts)
}

// BatchTxHandlerFunc handles events of type T in tx, as a TxHandlerFunc
// does one: evs[i] came with ms[i], in offset order (per key, with
// PerKey). It writes the batch's effects with as few statements as it can
// (a multi-row insert, COPY): that is what it is for.
type BatchTxHandlerFunc[T, Tx any] func(ctx context.Context, tx Tx, evs []*T, ms []bus.Meta) error

// defaultBatch is how many records a HandleBatchTx handler takes at most
// without a Batch option.
const defaultBatch = 500

// HandleBatchTx registers fn as HandleTx does a handler, but fn takes the
// new (not yet processed) events of a whole batch at once: consecutive
// records of one partition (of one lane, with PerKey) for this handler,
// up to Batch's max (500 without the option), one transaction
// for the batch. When fn fails, the batch runs again with each record in
// fn alone, under a savepoint, so that only the records that fail on
// their own are left out; they go through the usual retries and
// dead-lettering, and later records of their keys wait for them.
func HandleBatchTx[T, Tx any](c *Consumer, t *bus.Type[T], p *Processed[Tx], fn BatchTxHandlerFunc[T, Tx], opts ...HandlerOption) {
	tb := &txBinding{}
	if p != nil {
		tb.store = p
	}
	if fn != nil {
		tb.handle = func(ctx context.Context, tx any, v any, m *bus.Meta) error {
			return fn(ctx, tx.(Tx), []*T{v.(*T)}, []bus.Meta{*m})
		}
		tb.handleAll = func(ctx context.Context, tx any, vs []any, ms []*bus.Meta) error {
			evs, metas := make([]*T, len(vs)), make([]bus.Meta, len(ms))
			for i := range vs {
				evs[i], metas[i] = vs[i].(*T), *ms[i]
			}
			return fn(ctx, tx.(Tx), evs, metas)
		}
	}
	register(c, "HandleBatchTx", t, nil, tb, opts)
}

// txBinding is what a HandleTx handler adds to its binding.
type txBinding struct {
	store  store
	batch  int // records per transaction at most; 1 without Batch
	id     func(bus.Meta) (string, error)
	handle func(ctx context.Context, tx any, v any, m *bus.Meta) error
	// handleAll runs a HandleBatchTx handler for several records at once.
	handleAll func(ctx context.Context, tx any, vs []any, ms []*bus.Meta) error
}

// MaxBatch bounds Batch.
const MaxBatch = 10_000

// Batch lets a HandleTx handler take up to max records of one partition
// in one transaction (with PerKey, of one lane): consecutive records whose
// handlers are batched HandleTx handlers on the same Processed, taken from
// what was fetched and not yet handled. The processed rows of the batch
// are inserted at once (on PostgreSQL, one statement). When a handler
// fails, the batch runs again with each record under a savepoint, so the
// others are committed without it; the failed record then goes through the
// usual retries and dead-lettering on its own, and the later records of
// its key wait for it: order holds per key, and records of other keys may
// pass a failed one. A handler that fails may thus run again for a batch
// (rolled back in between); Attempt counts the runs that failed.
//
// Retry topics are read one record per transaction. Default: 1 for
// HandleTx, 500 for HandleBatchTx; at most MaxBatch.
func Batch(max int) HandlerOption {
	return func(h *handlerConfig) { h.batch, h.batchSet = max, true }
}

// MessageID sets how a HandleTx handler finds a record's message id, the
// key of its processed row (default: bus.Meta.ID, the ce_id or
// "kafka:<topic>/<partition>/<offset>" for foreign records without one).
// A record for which id returns an error goes to the dead-letter topic
// (dlt-error-kind permanent). RequireEventID dead-letters records without
// ce_id, and as poison those with an empty ce_id or more than one. On a retry topic, Meta.Partition and Meta.Offset are the retry
// record's: derive ids from the event, or from ce_id.
func MessageID(id func(m bus.Meta) (string, error)) HandlerOption {
	return func(h *handlerConfig) { h.messageID, h.messageIDSet = id, true }
}

// ErrNoEventID is RequireEventID's error for a record without ce_id.
var ErrNoEventID = errors.New("consumer: the record has no " + wire.HeaderID + " to deduplicate it by")

// ErrAmbiguousEventID is RequireEventID's error for a record whose ce_id
// headers do not name one event: an empty one, or more than one.
var ErrAmbiguousEventID = errors.New("consumer: the record's " + wire.HeaderID + " headers do not name one event")

// RequireEventID is a MessageID function that takes ce_id and refuses
// records without one (ErrNoEventID), which then go to the dead-letter
// topic (dlt-error-kind permanent) instead of being deduplicated by their
// offset. A record with an empty ce_id header, or more than one, is poison
// (ErrAmbiguousEventID): dead-lettered at once with dlt-error-kind poison.
func RequireEventID(m bus.Meta) (string, error) {
	n, empty := 0, false
	for _, h := range m.Headers {
		if h.Key == wire.HeaderID {
			n++
			empty = empty || len(h.Value) == 0
		}
	}
	switch {
	case n == 0:
		return "", ErrNoEventID
	case n > 1:
		return "", poison("%w: it has %d %s headers; a record carries exactly one", ErrAmbiguousEventID, n, wire.HeaderID)
	case empty:
		return "", poison("%w: its %s header is empty", ErrAmbiguousEventID, wire.HeaderID)
	}
	return m.ID, nil
}

func metaID(m bus.Meta) (string, error) { return m.ID, nil }

// messageID returns the key of the record's processed row: its message id
// in the form the table stores (ProcessedID), or the error that sends the
// record to the dead-letter topic: poison when the id function says the
// record is (RequireEventID), else permanent.
func (tb *txBinding) messageID(m *bus.Meta) (string, error) {
	id, err := tb.id(*m)
	if err != nil {
		err = fmt.Errorf("consumer: message id: %w", err)
		if isPoison(err) {
			return "", err
		}
		return "", Permanent(err)
	}
	return ProcessedID(id), nil
}

// errDuplicate: the record's message id is in the processed set.
var errDuplicate = errors.New("consumer: already processed")
