package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/evbus/evbus/sqldb"
)

// runShard publishes shard's rows until ctx is done, through the
// database's failures. claim (SQLite) records the relay as the shard's
// holder first; on PostgreSQL the session did.
func (r *Relay) runShard(ctx context.Context, shard int, wake <-chan struct{}, claim bool) {
	defer r.health.setStuck(shard, nil)
	// The shard's stuck rows outlive a serve that a database failure
	// ended: forgetting them would let their keys' later rows go first.
	st := stuck{shard: shard}
	for ctx.Err() == nil {
		s := shardRun{r: r, shard: shard, wake: wake, st: &st}
		err := s.serve(ctx, claim)
		if ctx.Err() != nil {
			return
		}
		r.fail(&r.health.work[shard], "database", fmt.Errorf("outbox: relay shard %d: %w", shard, err))
		sleep(ctx, r.cfg.takeover)
	}
}

// shardRun is one serve of a shard: it publishes the shard's rows until
// ctx is done or the database fails. One goroutine owns it.
//
// It works on two batches at once: while Kafka takes batch N, it marks
// batch N-1 and reads batch N+1 (the oldest unpublished rows other than
// N's), so the database's work and Kafka's overlap. Batch N+1 is sent
// only once every record of N is acknowledged: when one failed, N+1 is
// dropped unsent and the next round reads the table again, so a failed
// row is never overtaken by a later row of its key from another batch.
// A row that can never be published (see stuck) holds back the later
// rows of its key, and no other.
type shardRun struct {
	r     *Relay
	shard int
	wake  <-chan struct{}
	st    *stuck // the shard's stuck rows, which outlive the serve
	// mctx is the serve's context without its end: what Kafka
	// acknowledged is marked even when ctx ended meanwhile, else it
	// would be published again.
	mctx context.Context
	poll *time.Timer

	quiet   int           // fetches in a row that found nothing
	idle    bool          // the relays' table says the shard is idle
	backoff time.Duration // the wait after the last failed batch
	cleaned time.Time     // when the published rows were last cleaned up

	batch []row   // the batch Kafka takes
	next  []row   // the batch read while Kafka took batch
	ahead bool    // next is due: batch succeeded in full
	sent  []int64 // the ids of batch, while Kafka takes it
	acked []int64 // acknowledged, not yet marked
}

// serve runs the shard's rounds, one batch each, in order: housekeeping,
// taking the batch, resting when it is empty, publishing it, settling
// each record's outcome, then going on to the next or backing off.
func (s *shardRun) serve(ctx context.Context, claim bool) error {
	r := s.r
	if claim {
		if err := r.inTx(ctx, func(q sqldb.Querier) error { return r.claim(ctx, q, s.shard) }); err != nil {
			return err
		}
	}
	s.mctx = context.WithoutCancel(ctx)
	s.poll = time.NewTimer(r.cfg.poll)
	defer s.poll.Stop()
	for ctx.Err() == nil {
		if err := s.housekeep(ctx); err != nil {
			return err
		}
		if err := s.take(); err != nil {
			return err
		}
		r.ok(&r.health.work[s.shard], "database")
		if len(s.batch) == 0 {
			if err := s.rest(ctx); err != nil {
				return err
			}
			continue
		}
		if err := s.busy(ctx); err != nil {
			return err
		}
		f, damaged, err := s.publish(ctx)
		if err != nil {
			return err
		}
		failed, firstErr, err := s.settle(ctx, f, damaged)
		if err != nil {
			return err
		}
		if err := s.end(ctx, failed, firstErr); err != nil {
			return err
		}
	}
	return s.markAcked()
}

// housekeep deletes the published rows past the retention (shard 0, now
// and then) and lets go of the stuck rows that can go now.
func (s *shardRun) housekeep(ctx context.Context) error {
	r := s.r
	if s.shard == 0 && !r.ocfg.deleteNow && time.Since(s.cleaned) > min(r.ocfg.retention/4, time.Minute) {
		if err := r.cleanup(ctx); err != nil {
			return err
		}
		s.cleaned = time.Now()
	}
	return r.recheck(ctx, s.st)
}

// take makes the batch read ahead the current one, or reads a batch.
func (s *shardRun) take() error {
	if s.ahead {
		s.batch, s.next, s.ahead = s.next, s.batch, false
		return nil
	}
	s.sent = s.sent[:0]
	var err error
	s.batch, err = s.fetch(s.batch)
	return err
}

// fetch reads the oldest rows not in sent into into, after marking what
// Kafka acknowledged: one transaction.
func (s *shardRun) fetch(into []row) ([]row, error) {
	r := s.r
	ctx, cancel := context.WithTimeout(s.mctx, 30*time.Second)
	defer cancel()
	err := r.inTx(ctx, func(q sqldb.Querier) error {
		if err := r.mark(ctx, q, s.shard, s.acked); err != nil {
			return err
		}
		var err error
		into, err = r.fetch(ctx, q, s.st, s.sent, into[:0])
		return err
	})
	if err == nil {
		s.acked = s.acked[:0]
	}
	return into, err
}

// rest follows a round that found nothing: it looks again after a
// millisecond, quickPolls times, then records the shard as idle, then
// waits for a wake-up or PollInterval.
func (s *shardRun) rest(ctx context.Context) error {
	r := s.r
	switch {
	case s.quiet < quickPolls:
		s.quiet++
		sleep(ctx, time.Millisecond)
	case !s.idle:
		// For Status.
		if err := r.exec(ctx, r.sql.setIdle, true, s.shard); err != nil {
			return err
		}
		s.idle = true
	default:
		s.poll.Reset(r.cfg.poll)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-s.poll.C:
		}
	}
	return nil
}

// busy follows a round that found rows: the shard is no longer idle.
func (s *shardRun) busy(ctx context.Context) error {
	s.quiet = 0
	if !s.idle {
		return nil
	}
	if err := s.r.exec(ctx, s.r.sql.setIdle, false, s.shard); err != nil {
		return err
	}
	s.idle = false
	return nil
}

// publish sends the batch to Kafka, reads the next batch meanwhile and
// waits for Kafka's outcome of every record sent. damaged is the error of
// a row whose headers could not be read: the rows from it on were not
// sent.
func (s *shardRun) publish(ctx context.Context) (f *flight, damaged error, err error) {
	r := s.r
	recs, damaged := records(s.batch)
	f, err = r.send(ctx, s.st, s.batch, recs)
	defer f.land()
	if err != nil {
		return nil, nil, err
	}
	s.sent = s.sent[:0]
	for i, rec := range f.recs {
		if rec != nil {
			s.sent = append(s.sent, s.batch[i].id)
		}
	}
	if s.next, err = s.fetch(s.next); err != nil {
		return nil, nil, err
	}
	if err := r.wait(ctx, s.shard, f); err != nil {
		return nil, nil, err
	}
	if r.afterPublish != nil {
		r.afterPublish()
	}
	return f, damaged, nil
}

// settle takes each record's outcome: acknowledged rows are to be marked,
// rows Kafka refused for their size become stuck, and the others failed
// (counted, and the first's error, or else damaged, returned) and are
// retried.
func (s *shardRun) settle(ctx context.Context, f *flight, damaged error) (failed int, firstErr error, err error) {
	firstErr = damaged
	for i, rec := range f.recs {
		if rec == nil {
			continue // held back
		}
		err := f.errs[rec]
		if err == nil {
			s.acked = append(s.acked, s.batch[i].id)
			continue
		}
		if permanent(err) {
			// The later rows of its key in this batch went with it;
			// none after.
			if err := s.r.setStuck(ctx, s.st, s.batch[i], batchBytes(rec), err); err != nil {
				return 0, nil, err
			}
			continue
		}
		failed++
		if firstErr == nil {
			firstErr = fmt.Errorf("outbox: publish row %d to %s: %w", s.batch[i].id, rec.Topic, err)
		}
	}
	if damaged != nil {
		failed++
	}
	return failed, firstErr, nil
}

// end ends a batch: after a success with more rows read, the next batch
// is due; else the acknowledged rows are marked now, and a failure is
// recorded and backed off from.
func (s *shardRun) end(ctx context.Context, failed int, firstErr error) error {
	r := s.r
	if firstErr == nil && len(s.next) > 0 {
		s.ahead, s.backoff = true, 0
		return nil
	}
	s.sent = s.sent[:0]
	if err := s.markAcked(); err != nil {
		return err
	}
	if firstErr == nil {
		s.backoff = 0
		return nil
	}
	r.ocfg.log.Warn("outbox: publishing", "table", r.ocfg.table, "shard", s.shard, "rows", failed, "err", firstErr)
	if err := r.lastError(ctx, s.shard, firstErr); err != nil {
		return err
	}
	s.backoff = min(max(2*s.backoff, 100*time.Millisecond), r.cfg.maxBackoff)
	sleep(ctx, s.backoff)
	return nil
}

// markAcked marks what Kafka acknowledged, even when the serve's context
// ended.
func (s *shardRun) markAcked() error {
	err := s.r.inTx(s.mctx, func(q sqldb.Querier) error { return s.r.mark(s.mctx, q, s.shard, s.acked) })
	if err == nil {
		s.acked = s.acked[:0]
	}
	return err
}
