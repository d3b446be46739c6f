package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb"
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
	register(c, t, nil, tb, opts)
}

// BatchTxHandlerFunc handles events of type T in tx, as a TxHandlerFunc
// does one: evs[i] came with ms[i], in offset order (per key, with
// PerKey). It writes the batch's effects with as few statements as it can
// (a multi-row insert, COPY): that is what it is for.
type BatchTxHandlerFunc[T, Tx any] func(ctx context.Context, tx Tx, evs []*T, ms []bus.Meta) error

// DefaultBatch is how many records a HandleBatchTx handler takes at most
// without a Batch option.
const DefaultBatch = 500

// HandleBatchTx registers fn as HandleTx does a handler, but fn takes the
// new (not yet processed) events of a whole batch at once: consecutive
// records of one partition (of one lane, with PerKey) for this handler,
// up to Batch's max (DefaultBatch without the option), one transaction
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
	register(c, t, nil, tb, append([]HandlerOption{Batch(DefaultBatch)}, opts...))
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
// Retry topics are read one record per transaction.
func Batch(max int) HandlerOption {
	return func(h *handlerConfig) {
		if max < 1 || max > MaxBatch {
			h.fail(fmt.Errorf("consumer: Batch(%d): want 1 to %d records per transaction", max, MaxBatch))
			return
		}
		h.batch = max
	}
}

// MessageID sets how a HandleTx handler finds a record's message id, the
// key of its processed row (default: bus.Meta.ID, the ce_id or
// "kafka:<topic>/<partition>/<offset>" for foreign records without one).
// A record for which id returns an error goes to the dead-letter topic
// (dlt-error-kind permanent). RequireEventID dead-letters records without
// ce_id, and as poison those with an empty ce_id or more than one. On a retry topic, Meta.Partition and Meta.Offset are the retry
// record's: derive ids from the event, or from ce_id.
func MessageID(id func(m bus.Meta) (string, error)) HandlerOption {
	return func(h *handlerConfig) {
		if id == nil {
			h.fail(errors.New("consumer: MessageID(nil): pass a function, or leave the option out for the default"))
			return
		}
		h.messageID = id
	}
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

// invokeTx runs a HandleTx handler for one record, in a transaction of
// its own.
func (c *Consumer) invokeTx(ctx context.Context, tb *txBinding, v any, m *bus.Meta) error {
	id, err := tb.messageID(m)
	if err != nil {
		return err
	}
	bt := txBatch{
		ids:    []string{id},
		keys:   [][]byte{m.Key},
		status: make([]txStatus, 1),
		errs:   make([]error, 1),
		run:    func(_ int, tx any) error { return tb.handle(ctx, tx, v, m) },
	}
	if err := bt.exec(ctx, tb.store, c.group); err != nil {
		return err
	}
	switch bt.status[0] {
	case txDuplicate:
		return errDuplicate
	case txFailed:
		return bt.errs[0]
	}
	return nil
}

// txStatus is what a transaction did with one of its records.
type txStatus uint8

const (
	txPending   txStatus = iota
	txHandled            // its handler ran, and its effects are committed
	txDuplicate          // processed before: its handler did not run
	txFailed             // its handler failed: nothing of it is committed
	txDeferred           // left for after a failed record of its key
)

// txBatch is the records of one transaction.
type txBatch struct {
	ids    []string
	keys   [][]byte
	status []txStatus
	errs   []error // of the failed records
	// run runs the handler of record i in tx; a transientError aborts
	// the transaction.
	run func(i int, tx any) error
	// runAll, when set, runs the handler of the records at indexes is at
	// once (HandleBatchTx), in the first pass.
	runAll func(is []int, tx any) error
}

// failedSomewhere is what pass returns when a runAll call failed: which
// record failed is found in the pass with savepoints.
const failedSomewhere = -2

// savepoint guards each record of a batch that runs again after a failure.
const savepoint = "evbus_record"

// exec runs the batch in a transaction and commits what succeeded. It
// returns a transientError when the database failed (nothing is
// committed, or, for a failed commit, perhaps everything: running the
// batch again finds those records processed).
//
// The batch first runs without savepoints (they cost two round trips per
// record); when a handler fails, it is rolled back and run again with a
// savepoint around each record, the failed one left out.
func (bt *txBatch) exec(ctx context.Context, s store, group string) error {
	clear(bt.status)
	clear(bt.errs)
	failed, err := bt.pass(ctx, s, group, false)
	if err != nil || failed == -1 || len(bt.ids) == 1 && failed >= 0 {
		return err
	}
	for i := range bt.status {
		if i != failed {
			bt.status[i] = txPending
		}
	}
	_, err = bt.pass(ctx, s, group, true)
	return err
}

// pass is one transaction of exec. Without savepoints it stops at the
// first handler that fails, rolls back and returns the record's index;
// with them it commits every record that succeeded. It returns -1 when it
// committed.
func (bt *txBatch) pass(ctx context.Context, s store, group string, savepoints bool) (int, error) {
	t, err := s.begin(ctx)
	if err != nil {
		return -1, dbError("begin", err)
	}
	open := true
	defer func() {
		if open { // an error or a panic
			s.rollback(ctx, t)
		}
	}()
	fresh, err := s.claim(ctx, t, group, bt.ids, time.Now())
	if err != nil {
		return -1, dbError("recording the messages as processed", err)
	}
	var (
		all     []int           // records for runAll
		blocked map[string]bool // keys with a failed or deferred record
		first   map[string]int  // where each id occurs first, once needed
		undo    []string        // ids claimed for records not committed
	)
	// abort rolls the pass back after the handler of the records at is
	// failed with err, and says which record to leave out of the next
	// pass: that one, or failedSomewhere for several at once, or for a
	// statement refused because an earlier record's failed the
	// transaction. Unless judge says the database is at fault.
	abort := func(is []int, err error) (int, error) {
		open = false
		s.rollback(ctx, t)
		if werr := judge(ctx, err, s.ping); werr != nil {
			return -1, werr
		}
		if len(is) > 1 || len(bt.ids) > 1 && sqldb.Classify(err) == sqldb.Aborted {
			return failedSomewhere, nil
		}
		bt.status[is[0]], bt.errs[is[0]] = txFailed, err
		return is[0], nil
	}
	block := func(i int, st txStatus) {
		bt.status[i] = st
		if blocked == nil {
			blocked = make(map[string]bool)
		}
		blocked[string(bt.keys[i])] = true
		if fresh[i] {
			undo = append(undo, bt.ids[i])
		}
	}
	for i := range bt.ids {
		switch {
		case bt.status[i] == txFailed: // in the pass before
			block(i, txFailed)
			continue
		case !fresh[i]:
			// Processed before, or earlier in this batch: a duplicate,
			// unless that earlier record is not committed.
			if first == nil {
				first = make(map[string]int, len(bt.ids))
				for j := len(bt.ids) - 1; j >= 0; j-- {
					first[bt.ids[j]] = j
				}
			}
			if j := first[bt.ids[i]]; j < i && (bt.status[j] == txFailed || bt.status[j] == txDeferred) {
				block(i, txDeferred)
			} else {
				bt.status[i] = txDuplicate
			}
			continue
		case blocked[string(bt.keys[i])]:
			block(i, txDeferred)
			continue
		}
		if bt.runAll != nil && !savepoints {
			all = append(all, i)
			continue
		}
		if savepoints {
			if _, err := t.q.Exec(ctx, "SAVEPOINT "+savepoint); err != nil {
				return -1, dbError("savepoint", err)
			}
		}
		err := bt.run(i, t.tx)
		if err == nil && savepoints {
			// On PostgreSQL, a handler that returned nil after one of its
			// statements failed left the transaction failed: RELEASE says
			// so, and the record is the one at fault.
			if _, rerr := t.q.Exec(ctx, "RELEASE SAVEPOINT "+savepoint); rerr != nil {
				err = afterHandler("releasing the record's savepoint", rerr)
			}
		}
		switch {
		case err == nil:
			bt.status[i] = txHandled
			continue
		case isTransient(err):
			return -1, err
		case !savepoints:
			return abort([]int{i}, err)
		}
		if _, rerr := t.q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); rerr != nil {
			return -1, dbError("rolling back to a savepoint", rerr)
		}
		// The database answered the rollback: no ping needed.
		if werr := judge(ctx, err, answered); werr != nil {
			return -1, werr
		}
		bt.errs[i] = err
		block(i, txFailed)
	}
	if len(all) > 0 {
		err := bt.runAll(all, t.tx)
		switch {
		case isTransient(err):
			return -1, err
		case err != nil:
			return abort(all, err)
		}
		for _, i := range all {
			bt.status[i] = txHandled
		}
	}
	if len(undo) > 0 {
		if err := s.unclaim(ctx, t, group, undo); err != nil {
			return -1, dbError("unrecording failed messages", err)
		}
	}
	open = false
	if err := s.commit(ctx, t); err != nil {
		s.rollback(ctx, t)
		return -1, bt.commitFailed(ctx, s, err)
	}
	return -1, nil
}

// commitFailed settles the records of a transaction whose COMMIT failed
// with err. A failure of the records' own (a deferred constraint, a
// statement whose error a handler did not return) fails the record whose
// handler ran, when only one did; with several, no one knows whose it
// is, so each of them, and the records counted as duplicates of theirs,
// runs again in a transaction of its own (txDeferred), where the one at
// fault fails alone.
func (bt *txBatch) commitFailed(ctx context.Context, s store, err error) error {
	ran := 0
	for _, st := range bt.status {
		if st == txHandled {
			ran++
		}
	}
	if ran == 0 { // only evbus's statements ran: not the records' doing
		return dbError("commit", err)
	}
	err = afterHandler("commit", err)
	if werr := judge(ctx, err, s.ping); werr != nil {
		return werr
	}
	for i, st := range bt.status {
		switch {
		case st == txHandled && ran == 1:
			bt.status[i], bt.errs[i] = txFailed, err
		case st == txHandled || st == txDuplicate:
			bt.status[i] = txDeferred
		}
	}
	return nil
}

// judge decides, for the idempotent path, what a failure in a transaction
// of records calls for: err is a handler's error, or that of a statement
// evbus ran after a handler (RELEASE SAVEPOINT, COMMIT). It returns nil
// when the failure is the record's (its handler's retries, then the
// dead-letter topic): an error marked Permanent, data or constraints the
// database refused, a transaction a failed statement aborted. It returns
// a transientError (the same records run again, no attempt counted) for a
// conflict with another transaction (run again after the retry delay,
// fetching not paused) and for a database that cannot serve (wait). An error nothing in which says is
// the database's only if answers (a ping) fails. sqldb.Classify reads the
// error; the table in docs/concepts.md is this function.
func judge(ctx context.Context, err error, answers func(context.Context) error) error {
	if IsPermanent(err) {
		return nil
	}
	switch sqldb.Classify(err) {
	case sqldb.Refused, sqldb.Aborted:
		return nil
	case sqldb.Conflict:
		return &transientError{err: err, conflict: true}
	case sqldb.Unavailable:
		return &transientError{err: err}
	}
	if perr := answers(ctx); perr != nil {
		return &transientError{err: fmt.Errorf("%w; and the database does not answer: %v", err, perr)}
	}
	return nil
}

// answered is judge's answers for a database that has just answered.
func answered(context.Context) error { return nil }

// afterHandler words the error of a statement evbus ran after a handler
// returned nil.
func afterHandler(what string, err error) error {
	if sqldb.Classify(err) == sqldb.Aborted {
		return fmt.Errorf("consumer: database: %s: the handler returned nil after a statement of its transaction failed: %w", what, err)
	}
	return fmt.Errorf("consumer: database: %s: %w", what, err)
}

// dbError is the error of a statement of evbus's own that no record can
// cause (begin, the processed rows, savepoints): wait for the database,
// or run the transaction again after a conflict.
func dbError(what string, err error) error {
	return &transientError{err: fmt.Errorf("consumer: database: %s: %w", what, err), conflict: sqldb.Classify(err) == sqldb.Conflict}
}

func isTransient(err error) bool {
	var te *transientError
	return errors.As(err, &te)
}

// isConflict reports whether err is a transientError of a conflict
// between transactions.
func isConflict(err error) bool {
	var te *transientError
	return errors.As(err, &te) && te.conflict
}

// batched is a record collected for a batch.
type batched struct {
	seq  uint64
	env  *envelope
	b    *binding
	h    *handling
	v    any
	used bool // its handler ran (v may be changed)
}

// fresh readies r for a handler run: a value of its own, decoded again if
// an earlier run (rolled back since) may have changed it.
func (c *Consumer) fresh(p *partition, r *batched) error {
	if r.used {
		h, v, err := c.decodeOnce(p.ctx, r.env, r.b)
		if err != nil {
			return &transientError{err: err}
		}
		r.h, r.v = h, v
	}
	r.used = true
	return nil
}

// processBatch settles a prefix of items, at least one: in one
// transaction when it starts with records of batched HandleTx handlers,
// else the first record as process does. It returns how many it settled;
// 0 when the partition stopped first.
func (c *Consumer) processBatch(p *partition, items []laneItem) int {
	var (
		recs []batched
		tb   *txBinding
		ids  []string
		keys [][]byte
	)
	n := 0 // items looked at
	for ; n < len(items); n++ {
		it := items[n]
		env := &envelope{rec: it.rec}
		var (
			b  *binding
			id string
		)
		openErr := c.open(p, env)
		if openErr == nil && env.ceType != nil {
			b = p.handlers[string(env.ceType)]
		}
		// A HandleBatchTx handler gets its own records only: it writes
		// them together, and records of another handler between them
		// would be written out of order.
		ok := b != nil && b.tx != nil && b.tx.batch > 1 && (tb == nil || b.tx.store == tb.store && len(recs) < tb.batch &&
			(b.tx == tb || b.tx.handleAll == nil && tb.handleAll == nil))
		if ok {
			var err error
			id, err = b.tx.messageID(&env.meta)
			ok = err == nil
		}
		if !ok {
			if len(recs) > 0 {
				break
			}
			if !c.processOpened(p, env, openErr) {
				return 0
			}
			p.settle(it.seq)
			return n + 1
		}
		env.meta.Type = b.name
		c.trace(p, env)
		h, v, out := c.decode(p, env, b)
		switch out {
		case stopped:
			return 0
		case settled: // poison, dead-lettered
			p.settle(it.seq)
			continue
		}
		if tb == nil {
			tb = b.tx
		}
		recs = append(recs, batched{seq: it.seq, env: env, b: b, h: h, v: v})
		ids = append(ids, id)
		keys = append(keys, env.rec.Key)
	}
	if len(recs) == 0 {
		return n
	}
	bt := &txBatch{
		ids:    ids,
		keys:   keys,
		status: make([]txStatus, len(recs)),
		errs:   make([]error, len(recs)),
		run: func(i int, tx any) error {
			r := &recs[i]
			if err := c.fresh(p, r); err != nil {
				return err
			}
			return c.run(p, r.env, r.b, r.h, r.v, r.env.prior+1, tx)
		},
	}
	if tb.handleAll != nil {
		bt.runAll = func(is []int, tx any) (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = c.panicked(recs[is[0]].env, r, slog.Int("batch", len(is)))
				}
			}()
			vs, ms := make([]any, len(is)), make([]*bus.Meta, len(is))
			for j, i := range is {
				r := &recs[i]
				if err := c.fresh(p, r); err != nil {
					return err
				}
				r.h.meta = r.env.meta
				vs[j], ms[j] = r.v, &r.h.meta
			}
			// The context is the partition's: no one event's metadata.
			return tb.handleAll(p.ctx, tx, vs, ms)
		}
	}
	var resume func()
	for waits := 1; ; waits++ {
		if !p.acquire() {
			return 0
		}
		err := bt.exec(p.ctx, tb.store, c.group)
		p.release()
		if err == nil {
			break
		}
		if p.stopped.Load() {
			return 0
		}
		if resume == nil && !isConflict(err) {
			resume = p.holdFetch()
			defer resume()
		}
		if !c.waitDatabase(p, recs[0].env, waits, err, slog.Int("batch", len(recs))) {
			return 0
		}
	}
	// Settled in offset order: what the transaction committed, then, one
	// by one, what failed or waited for a failed record.
	for i := range recs {
		r := &recs[i]
		switch bt.status[i] {
		case txHandled:
			c.handled(p, r.env, r.v, r.env.prior+1)
		case txDuplicate:
			c.duplicate(p, r.env, r.v)
		default:
			continue
		}
		p.settle(r.seq)
	}
	for i := range recs {
		r := &recs[i]
		if bt.status[i] == txHandled || bt.status[i] == txDuplicate {
			continue
		}
		if c.invoke(p, r.env, r.b, nil, nil, bt.errs[i]) != settled {
			return 0
		}
		p.settle(r.seq)
	}
	return n
}

// handled counts and reports a record whose handler succeeded.
func (c *Consumer) handled(p *partition, env *envelope, v any, attempts int) {
	c.stats.handled.Add(1)
	c.settle(p, env, Outcome{Result: Handled, Value: v, Attempts: attempts})
}

// duplicate counts and reports a record its group had processed.
func (c *Consumer) duplicate(p *partition, env *envelope, v any) {
	c.stats.duplicates.Add(1)
	c.settle(p, env, Outcome{Result: Duplicate, Value: v})
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.LogAttrs(context.Background(), slog.LevelDebug, "consumer: message processed before; skipped", env.attrs()...)
	}
}

// waitDatabase logs that the database failed, or that a transaction
// conflicted with another, and waits before the same records are tried
// again; false when the partition stopped.
func (c *Consumer) waitDatabase(p *partition, env *envelope, n int, err error, extra ...slog.Attr) bool {
	wait := c.cfg.retry.delay(n)
	attrs := env.attrs(append(extra, slog.Int("try", n), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
	if isConflict(err) {
		c.stats.conflicts.Add(1)
		c.log.LogAttrs(context.Background(), slog.LevelWarn, "consumer: the transaction conflicted with another (serialization failure, deadlock, lock); running the same records again", attrs...)
	} else {
		c.stats.databaseWaits.Add(1)
		c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: the database failed; trying the same records again, fetching the partition paused", attrs...)
	}
	return p.sleep(wait)
}
