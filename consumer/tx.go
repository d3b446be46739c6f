package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb"
)

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
	ps := &txPass{bt: bt, ctx: ctx, s: s, savepoints: savepoints}
	defer ps.rollbackIfOpen() // an error or a panic
	if err := ps.begin(group); err != nil {
		return -1, err
	}
	for i := range bt.ids {
		if !ps.due(i) {
			continue
		}
		if bt.runAll != nil && !savepoints {
			ps.all = append(ps.all, i)
			continue
		}
		if failed, err := ps.runOne(i); failed != -1 || err != nil {
			return failed, err
		}
	}
	if len(ps.all) > 0 {
		if failed, err := ps.runAll(); failed != -1 || err != nil {
			return failed, err
		}
	}
	return -1, ps.commit(group)
}

// txPass is the state of one pass of a txBatch.
type txPass struct {
	bt         *txBatch
	ctx        context.Context
	s          store
	savepoints bool

	t       txn
	open    bool            // t is neither committed nor rolled back
	fresh   []bool          // claim's: the records whose ids were new
	all     []int           // records for runAll
	blocked map[string]bool // keys with a failed or deferred record
	first   map[string]int  // where each id occurs first, once needed
	undo    []string        // ids claimed for records not committed
}

// begin begins the transaction and claims the records' ids.
func (ps *txPass) begin(group string) error {
	t, err := ps.s.begin(ps.ctx)
	if err != nil {
		return dbError("begin", err)
	}
	ps.t, ps.open = t, true
	if ps.fresh, err = ps.s.claim(ps.ctx, t, group, ps.bt.ids, time.Now()); err != nil {
		return dbError("recording the messages as processed", err)
	}
	return nil
}

func (ps *txPass) rollbackIfOpen() {
	if ps.open {
		ps.open = false
		ps.s.rollback(ps.ctx, ps.t)
	}
}

// due says whether record i runs in this pass. A record that failed in
// the pass before, a duplicate, and a record behind a failed or deferred
// one of its key do not.
func (ps *txPass) due(i int) bool {
	bt := ps.bt
	switch {
	case bt.status[i] == txFailed: // in the pass before
		ps.block(i, txFailed)
		return false
	case !ps.fresh[i]:
		// Processed before, or earlier in this batch: a duplicate,
		// unless that earlier record is not committed.
		if ps.first == nil {
			ps.first = make(map[string]int, len(bt.ids))
			for j := len(bt.ids) - 1; j >= 0; j-- {
				ps.first[bt.ids[j]] = j
			}
		}
		if j := ps.first[bt.ids[i]]; j < i && (bt.status[j] == txFailed || bt.status[j] == txDeferred) {
			ps.block(i, txDeferred)
		} else {
			bt.status[i] = txDuplicate
		}
		return false
	case ps.blocked[string(bt.keys[i])]:
		ps.block(i, txDeferred)
		return false
	}
	return true
}

// block leaves record i out of the commit, and the later records of its
// key with it.
func (ps *txPass) block(i int, st txStatus) {
	bt := ps.bt
	bt.status[i] = st
	if ps.blocked == nil {
		ps.blocked = make(map[string]bool)
	}
	ps.blocked[string(bt.keys[i])] = true
	if ps.fresh[i] {
		ps.undo = append(ps.undo, bt.ids[i])
	}
}

// runOne runs the handler of record i, under a savepoint in a pass with
// them. It returns -1 and no error to go on, else what pass returns.
func (ps *txPass) runOne(i int) (int, error) {
	bt, ctx, q := ps.bt, ps.ctx, ps.t.q
	if ps.savepoints {
		if _, err := q.Exec(ctx, "SAVEPOINT "+savepoint); err != nil {
			return -1, dbError("savepoint", err)
		}
	}
	err := bt.run(i, ps.t.tx)
	if err == nil && ps.savepoints {
		// On PostgreSQL, a handler that returned nil after one of its
		// statements failed left the transaction failed: RELEASE says
		// so, and the record is the one at fault.
		if _, rerr := q.Exec(ctx, "RELEASE SAVEPOINT "+savepoint); rerr != nil {
			err = afterHandler("releasing the record's savepoint", rerr)
		}
	}
	switch {
	case err == nil:
		bt.status[i] = txHandled
		return -1, nil
	case isTransient(err):
		return -1, err
	case !ps.savepoints:
		return ps.abort([]int{i}, err)
	}
	if _, rerr := q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); rerr != nil {
		return -1, dbError("rolling back to a savepoint", rerr)
	}
	// The database answered the rollback: no ping needed.
	if werr := judge(ctx, err, answered); werr != nil {
		return -1, werr
	}
	bt.errs[i] = err
	ps.block(i, txFailed)
	return -1, nil
}

// runAll runs the handler of the records collected for runAll at once.
// It returns -1 and no error to go on, else what pass returns.
func (ps *txPass) runAll() (int, error) {
	err := ps.bt.runAll(ps.all, ps.t.tx)
	switch {
	case isTransient(err):
		return -1, err
	case err != nil:
		return ps.abort(ps.all, err)
	}
	for _, i := range ps.all {
		ps.bt.status[i] = txHandled
	}
	return -1, nil
}

// abort rolls the pass back after the handler of the records at is
// failed with err, and says which record to leave out of the next pass:
// that one, or failedSomewhere for several at once, or for a statement
// refused because an earlier record's failed the transaction. Unless
// judge says the database is at fault.
func (ps *txPass) abort(is []int, err error) (int, error) {
	ps.rollbackIfOpen()
	if werr := judge(ps.ctx, err, ps.s.ping); werr != nil {
		return -1, werr
	}
	bt := ps.bt
	if len(is) > 1 || len(bt.ids) > 1 && sqldb.Classify(err) == sqldb.Aborted {
		return failedSomewhere, nil
	}
	bt.status[is[0]], bt.errs[is[0]] = txFailed, err
	return is[0], nil
}

// commit deletes the ids claimed for records left out, and commits.
func (ps *txPass) commit(group string) error {
	if len(ps.undo) > 0 {
		if err := ps.s.unclaim(ps.ctx, ps.t, group, ps.undo); err != nil {
			return dbError("unrecording failed messages", err)
		}
	}
	ps.open = false
	if err := ps.s.commit(ps.ctx, ps.t); err != nil {
		ps.s.rollback(ps.ctx, ps.t)
		return ps.bt.commitFailed(ps.ctx, ps.s, err)
	}
	return nil
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
