package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// The outcomes of replays. A record read from a replay topic (or from a
// retry topic on its way from one) carries dlt-replay-of, the id of the
// dead letter it replays. Once it is settled, its outcome goes to the
// group's dead-letter ledger (deadletter.Ledger, wire/ledger.go):
//
//	handled, a duplicate or skipped   handled on that id; record = the replayed record
//	dead-lettered again               failed on that id; record = the new dead letter,
//	                                  and park on the new one at MaxReplays replays
//	sent to a retry topic             nothing yet: the retry record carries the id on
//
// The record is settled (its offset committable) only once its outcome is
// written: a crash in between writes it again, and an entry already the
// latest of its dead letter (same kind, same record) is not written twice.
// The ledger is opened by the first outcome, so a group that reads no
// replay never has one. One writer per consumer writes the outcomes of
// every partition in batches; its lanes go on meanwhile (the records stay
// counted in their partition's memory, so a long wait pauses it). A ledger
// that cannot be written is waited out at the pace of OutageRetry; an
// entry the ledger's state machine refuses (an operator discarded the
// dead letter meanwhile) is logged at WARN and left out.

// pendingOutcome is a settled replay record whose outcome is not written
// yet: its partition's seq is settled once it is.
type pendingOutcome struct {
	p       *partition
	seq     uint64
	changes []deadletter.Change
	done    []bool      // changes[i] written, or left out
	attrs   []slog.Attr // the record's, for the logs
}

// outcomeBatch bounds the outcomes written at once.
const outcomeBatch = 1000

// outcomes writes the outcomes of replayed records to the ledger. Its
// writer goroutine starts with the first outcome and ends with stop.
type outcomes struct {
	c *Consumer

	// mu protects what follows.
	mu      sync.Mutex
	queue   []*pendingOutcome
	pending map[*partition]int // outcomes queued or being written
	written chan struct{}      // closed, and replaced, when outcomes were written
	wake    chan struct{}      // the writer has work
	cancel  context.CancelFunc // ends the writer; nil before it started
	done    chan struct{}      // closed when the writer returned
	stopped bool
}

// settle settles the call's record (seq in its partition's lane): at once,
// or, for a replayed record whose outcome goes to the ledger, once that is
// written.
func (r *call) settle(seq uint64) {
	if r.replayOf == "" {
		r.p.settle(seq)
		return
	}
	changes := r.ledgerChanges()
	if changes == nil {
		r.p.settle(seq)
		return
	}
	r.c.outcomes.add(&pendingOutcome{p: r.p, seq: seq, changes: changes, done: make([]bool, len(changes)), attrs: r.attrs()})
}

// ledgerChanges returns the ledger entries the settled replay record
// calls for; none when it went to a retry topic.
func (r *call) ledgerChanges() []deadletter.Change {
	c := r.c
	e := wire.LedgerEntry{At: time.Now()} // Actor: the writer's
	switch r.result {
	case Handled, Duplicate, Skipped:
		e.Kind = wire.OutcomeHandled
		// The replayed record's place, in the form of an id.
		e.Record = wire.DeadLetterID(r.rec)
		switch r.result {
		case Duplicate:
			e.Reason = "processed before: skipped as a duplicate"
		case Skipped:
			e.Reason = "skipped: no handler for its type"
		}
		return []deadletter.Change{{ID: r.replayOf, Entry: e}}
	case DeadLettered:
		if r.dead == nil {
			return nil
		}
		next := wire.DeadLetterID(r.dead)
		e.Kind, e.Record = wire.OutcomeFailed, next
		if v, ok := wire.HeaderValue(r.dead.Headers, wire.HeaderDLTError); ok {
			e.Error = string(v) // bounded to MaxErrorLen
		}
		out := []deadletter.Change{{ID: r.replayOf, Entry: e}}
		if n, err := wire.ReplayCount(r.dead); err == nil && n >= c.cfg.maxReplays {
			out = append(out, deadletter.Change{ID: next, Entry: wire.LedgerEntry{
				Kind: wire.ActionPark, At: e.At,
				Reason: fmt.Sprintf("loop guard: failed after %d replays", n),
			}})
		}
		return out
	}
	return nil
}

// actor names the consumer in the ledger: "consumer <group>", and
// "/<instance id>" with static membership (kgo.InstanceID).
func (c *Consumer) actor() string {
	if id, _ := c.cl.OptValue(kgo.InstanceID).(string); id != "" {
		return "consumer " + c.group + "/" + id
	}
	return "consumer " + c.group
}

// add queues an outcome, starting the writer with the first one. Once the
// consumer stopped, the record stays unsettled (and uncommitted).
func (o *outcomes) add(po *pendingOutcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.stopped {
		return
	}
	if o.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		o.cancel, o.done = cancel, make(chan struct{})
		o.wake, o.written = make(chan struct{}, 1), make(chan struct{})
		o.pending = make(map[*partition]int)
		go o.run(ctx)
	}
	o.queue = append(o.queue, po)
	o.pending[po.p]++
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// flush waits until the outcomes of parts' records are written, or ctx
// ends: called before their last commit.
func (o *outcomes) flush(ctx context.Context, parts []*partition) {
	for {
		o.mu.Lock()
		n := 0
		for _, p := range parts {
			n += o.pending[p]
		}
		written := o.written
		o.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-written:
		case <-ctx.Done():
			return
		}
	}
}

// stop ends the writer (what it has not written stays unsettled) and
// waits for it; no outcome is taken after.
func (o *outcomes) stop() {
	o.mu.Lock()
	o.stopped = true
	cancel, done := o.cancel, o.done
	o.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// run writes the queued outcomes, a batch at a time, until ctx ends.
func (o *outcomes) run(ctx context.Context) {
	defer close(o.done)
	w := &ledgerWriter{c: o.c, actor: o.c.actor()}
	defer w.close()
	for {
		batch := o.take(ctx)
		if batch == nil {
			return
		}
		for n := 1; ; n++ {
			err := w.write(ctx, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			o.c.stats.ledgerWaits.Add(1)
			wait := o.c.cfg.outage.delay(n)
			o.c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: could not write the outcomes of replayed records to the dead-letter ledger; trying again, their offsets are not committed meanwhile",
				slog.String("ledger", wire.LedgerTopic(o.c.group)), slog.Int("records", len(batch)), slog.Duration("wait", wait), slog.String("error", err.Error()))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		for _, po := range batch {
			po.p.settle(po.seq)
		}
		o.mu.Lock()
		for _, po := range batch {
			if o.pending[po.p]--; o.pending[po.p] == 0 {
				delete(o.pending, po.p)
			}
		}
		close(o.written)
		o.written = make(chan struct{})
		o.mu.Unlock()
	}
}

// take waits for outcomes and takes up to outcomeBatch of them; nil when
// ctx ended.
func (o *outcomes) take(ctx context.Context) []*pendingOutcome {
	for {
		o.mu.Lock()
		if n := min(len(o.queue), outcomeBatch); n > 0 {
			batch := append([]*pendingOutcome(nil), o.queue[:n]...)
			o.queue = append(o.queue[:0], o.queue[n:]...)
			o.mu.Unlock()
			return batch
		}
		o.mu.Unlock()
		select {
		case <-o.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// ledgerWriter writes batches of outcomes to the group's ledger, opened
// by its first write.
type ledgerWriter struct {
	c     *Consumer
	l     *deadletter.Ledger
	actor string // of every entry it writes
}

func (w *ledgerWriter) close() {
	if w.l != nil {
		w.l.Close()
	}
}

// write writes the changes of batch not written yet, at once
// (Ledger.RecordAll). A change the ledger refuses, or that is already its
// dead letter's latest entry (a redelivered record), is left out; an
// error means the ledger could not be read or written, and the changes
// not done are tried again.
func (w *ledgerWriter) write(ctx context.Context, batch []*pendingOutcome) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if w.l == nil {
		l, err := deadletter.OpenLedger(ctx, w.c.cl, kadm.NewClient(w.c.cl), w.c.group)
		if err != nil {
			return err
		}
		w.l = l
	}
	type ref struct {
		po *pendingOutcome
		i  int
	}
	var refs []ref
	var chs []deadletter.Change
	for _, po := range batch {
		for i, ch := range po.changes {
			if !po.done[i] {
				ch.Entry.Actor = w.actor
				refs = append(refs, ref{po, i})
				chs = append(chs, ch)
			}
		}
	}
	if len(chs) == 0 {
		return nil
	}
	rs, err := w.l.RecordAll(ctx, chs)
	if rs == nil {
		return err // nothing written
	}
	errs := changeErrors(err)
	var view map[string]wire.LedgerRecord // the ledger after the write, to judge what it left out
	var again error
	for k, ch := range chs {
		po, cerr := refs[k].po, errs[k]
		attrs := func(extra ...slog.Attr) []slog.Attr {
			return append(append(append([]slog.Attr(nil), po.attrs...), slog.String("dead_letter", ch.ID), slog.String("entry", string(ch.Entry.Kind))), extra...)
		}
		if rs[k].ID != "" { // written
			if cerr != nil { // on a stale base: another writer's entry is lost
				w.c.log.LogAttrs(ctx, slog.LevelWarn, "consumer: the replay's outcome replaced another writer's ledger entry written at the same time",
					attrs(slog.String("error", cerr.Error()))...)
			}
			po.done[refs[k].i] = true
			continue
		}
		if cerr == nil {
			cerr = err
		}
		if view == nil {
			v, verr := w.l.States(ctx)
			if v == nil {
				return errors.Join(err, verr)
			}
			view = v
		}
		latest, ok := view[ch.ID]
		if !ok {
			latest = wire.NewLedgerRecord(w.c.group, ch.ID)
		}
		why := cerr
		if !errors.Is(cerr, wire.ErrLedgerTransition) && !errors.Is(cerr, wire.ErrLedgerRecord) {
			why = refusal(latest, ch.Entry)
		}
		switch {
		case repeated(latest, ch.Entry):
			if w.c.log.Enabled(ctx, slog.LevelDebug) {
				w.c.log.LogAttrs(ctx, slog.LevelDebug, "consumer: the replay's outcome is in the dead-letter ledger already", attrs()...)
			}
		case why != nil:
			w.c.stats.ledgerRefused.Add(1)
			w.c.log.LogAttrs(ctx, slog.LevelWarn, "consumer: the dead-letter ledger refuses the replay's outcome; left out",
				attrs(slog.String("state", string(latest.State)), slog.String("error", why.Error()))...)
		default: // not written: the ledger failed
			again = errors.Join(again, cerr)
			continue
		}
		po.done[refs[k].i] = true
	}
	return again
}

// changeErrors returns the errors of RecordAll's changes, by index.
func changeErrors(err error) map[int]error {
	out := make(map[int]error)
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *deadletter.ChangeError:
			out[e.Index] = e.Err
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
		}
	}
	walk(err)
	return out
}

// repeated reports whether e is r's latest entry already: same kind, same
// record.
func repeated(r wire.LedgerRecord, e wire.LedgerEntry) bool {
	if len(r.History) == 0 {
		return false
	}
	last := r.History[len(r.History)-1]
	return last.Kind == e.Kind && last.Record == e.Record
}

// refusal returns why the ledger's contract refuses e on top of r (the
// state machine, the id, the history's bound), nil when it takes it.
func refusal(r wire.LedgerRecord, e wire.LedgerEntry) error {
	next, err := wire.AppendLedgerEntry(r, e)
	if err == nil {
		_, err = wire.AppendLedgerValue(nil, next)
	}
	return err
}
