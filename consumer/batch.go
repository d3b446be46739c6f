package consumer

import (
	"log/slog"

	"github.com/evbus/evbus/bus"
)

// processBatch settles a prefix of items, at least one: in one
// transaction when it starts with records of batched HandleTx handlers,
// else the first record as process does. It returns how many it settled;
// 0 when the partition stopped first.
func (c *Consumer) processBatch(p *partition, items []laneItem) int {
	b := &batch{c: c, p: p}
	defer b.resumeFetch()
	n, ok := b.collect(items)
	switch {
	case !ok:
		return 0
	case len(b.recs) == 0:
		return n
	}
	bt := b.transaction()
	if !b.execute(bt) || !b.settle(bt) {
		return 0
	}
	return n
}

// batch is the records of a lane that share a transaction.
type batch struct {
	c    *Consumer
	p    *partition
	tb   *txBinding // their handlers' (the first record's)
	recs []batched
	ids  []string // message ids, one per record
	keys [][]byte
	// resume resumes fetching once the database came back.
	resume func()
}

// batched is a record collected for a batch.
type batched struct {
	seq  uint64
	call *call
	used bool // its handler ran (its value may be changed)
}

// collect takes the records at the start of items that can share a
// transaction, settling the poison ones on the way, and returns how many
// items it looked at. When the first record cannot be batched, it
// settles that one alone. false when the partition stopped first.
func (b *batch) collect(items []laneItem) (int, bool) {
	c, p := b.c, b.p
	n := 0
	for ; n < len(items); n++ {
		it := items[n]
		r := &call{c: c, p: p, rec: it.rec}
		openErr := r.open()
		id, ok := b.fits(r, openErr)
		if !ok {
			if len(b.recs) > 0 {
				break
			}
			if !r.steps(openErr) {
				return 0, false
			}
			r.settle(it.seq)
			return n + 1, true
		}
		r.meta.Type = r.b.name
		r.trace()
		switch r.decode() {
		case stopped:
			return 0, false
		case settled: // poison, dead-lettered
			r.settle(it.seq)
			continue
		}
		if b.tb == nil {
			b.tb = r.b.tx
		}
		b.recs = append(b.recs, batched{seq: it.seq, call: r})
		b.ids = append(b.ids, id)
		b.keys = append(b.keys, r.rec.Key)
	}
	return n, true
}

// fits says whether r, opened with openErr, joins the batch, and returns
// its message id. It sets r's handler when it does.
func (b *batch) fits(r *call, openErr error) (string, bool) {
	if openErr != nil || r.ceType == nil {
		return "", false
	}
	h := b.p.handlers[string(r.ceType)]
	if h == nil || h.tx == nil || h.tx.batch <= 1 {
		return "", false
	}
	// A HandleBatchTx handler gets its own records only: it writes
	// them together, and records of another handler between them
	// would be written out of order.
	if tb := b.tb; tb != nil && (h.tx.store != tb.store || len(b.recs) >= tb.batch ||
		h.tx != tb && (h.tx.handleAll != nil || tb.handleAll != nil)) {
		return "", false
	}
	id, err := h.tx.messageID(&r.meta)
	if err != nil {
		return "", false
	}
	r.b = h
	return id, true
}

// transaction returns the transaction of the batch's records.
func (b *batch) transaction() *txBatch {
	bt := &txBatch{
		ids:    b.ids,
		keys:   b.keys,
		status: make([]txStatus, len(b.recs)),
		errs:   make([]error, len(b.recs)),
		run: func(i int, tx any) error {
			r := &b.recs[i]
			if err := r.fresh(); err != nil {
				return err
			}
			return r.call.once(r.call.prior+1, tx)
		},
	}
	if b.tb.handleAll != nil {
		bt.runAll = b.runAll
	}
	return bt
}

// runAll runs a HandleBatchTx handler for the records at is, in tx.
func (b *batch) runAll(is []int, tx any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = b.recs[is[0]].call.panicked(v, slog.Int("batch", len(is)))
		}
	}()
	vs, ms := make([]any, len(is)), make([]*bus.Meta, len(is))
	for j, i := range is {
		r := &b.recs[i]
		if err := r.fresh(); err != nil {
			return err
		}
		r.call.h.meta = r.call.meta
		vs[j], ms[j] = r.call.v, &r.call.h.meta
	}
	// The context is the partition's: no one event's metadata.
	return b.tb.handleAll(b.p.ctx, tx, vs, ms)
}

// fresh readies r for a handler run: a value of its own, decoded again if
// an earlier run (rolled back since) may have changed it.
func (r *batched) fresh() error {
	if r.used {
		if err := r.call.decodeOnce(); err != nil {
			return &transientError{err: err}
		}
	}
	r.used = true
	return nil
}

// execute runs the transaction, in a concurrency slot, until the database
// takes it; false when the partition stopped first. While the database
// fails, fetching the partition is paused (until processBatch returns).
func (b *batch) execute(bt *txBatch) bool {
	p := b.p
	for waits := 1; ; waits++ {
		if !p.acquire() {
			return false
		}
		err := bt.exec(p.ctx, b.tb.store, b.c.group)
		p.release()
		if err == nil {
			return true
		}
		if p.stopped.Load() {
			return false
		}
		if b.resume == nil && !isConflict(err) {
			b.resume = p.holdFetch()
		}
		if !b.recs[0].call.waitDatabase(waits, err, slog.Int("batch", len(b.recs))) {
			return false
		}
	}
}

func (b *batch) resumeFetch() {
	if b.resume != nil {
		b.resume()
	}
}

// settle settles the records in offset order: what the transaction
// committed, then, one by one, what failed or waited for a failed record;
// false when the partition stopped first.
func (b *batch) settle(bt *txBatch) bool {
	for i := range b.recs {
		r := b.recs[i].call
		switch bt.status[i] {
		case txHandled:
			r.handled(r.prior + 1)
		case txDuplicate:
			r.duplicate()
		default:
			continue
		}
		r.settle(b.recs[i].seq)
	}
	for i := range b.recs {
		if bt.status[i] == txHandled || bt.status[i] == txDuplicate {
			continue
		}
		r := b.recs[i].call
		r.h, r.v = nil, nil // decoded again before it runs
		if r.invoke(bt.errs[i]) != settled {
			return false
		}
		r.settle(b.recs[i].seq)
	}
	return true
}
