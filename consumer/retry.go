package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/wire"
)

// Two kinds of retries, paced apart:
//
//   - a handler that failed runs again after its Backoff (Retry, or
//     HandlerRetry for every handler), up to MaxAttempts runs; then the
//     record goes on to a retry topic or the dead-letter topic (invoke);
//   - what is not the record's fault is waited out on the same record,
//     as long as it takes, counting no attempt, at the pace of
//     OutageRetry: the schema registry while it cannot decode
//     (waitDecode), the database of a HandleTx handler (waitDatabase),
//     a dead-letter or retry-topic write (call.write), the brokers while
//     Run starts (awaitBrokers).
//
// A retry record waits for its due time on its lane (waitDue).

// Backoff says how often a failing handler runs and how long it waits in
// between: Initial, then each wait Multiplier times the one before, capped
// at Max, each shortened at random by up to Jitter of itself. A zero field
// of a handler's Retry takes the consumer's HandlerRetry value, and a zero
// field of that the default: Initial 100 ms, Max 10 s, Multiplier 2,
// Jitter 0.2, MaxAttempts 5. A negative Jitter means none.
//
// OutageRetry paces the retries that never give up with a Backoff too
// (without MaxAttempts).
type Backoff struct {
	Initial     time.Duration
	Max         time.Duration
	Multiplier  float64
	Jitter      float64
	MaxAttempts int // handler runs in all, the first included; 1 means no retry
}

// or fills the zero fields of b from d.
func (b Backoff) or(d Backoff) Backoff {
	if b.Initial == 0 {
		b.Initial = d.Initial
	}
	if b.Max == 0 {
		b.Max = d.Max
	}
	if b.Multiplier == 0 {
		b.Multiplier = d.Multiplier
	}
	if b.Jitter == 0 {
		b.Jitter = d.Jitter
	}
	if b.MaxAttempts == 0 {
		b.MaxAttempts = d.MaxAttempts
	}
	return b
}

// defaultBackoff is the default of HandlerRetry and OutageRetry.
var defaultBackoff = Backoff{
	Initial:     100 * time.Millisecond,
	Max:         10 * time.Second,
	Multiplier:  2,
	Jitter:      0.2,
	MaxAttempts: 5,
}

func (b Backoff) validate(what string) error {
	switch {
	case b.Initial < 0:
		return fmt.Errorf("consumer: %s: Initial %v: want a positive wait, or 0 for the default", what, b.Initial)
	case b.Max < 0:
		return fmt.Errorf("consumer: %s: Max %v: want a positive wait, or 0 for the default", what, b.Max)
	case b.Multiplier != 0 && (b.Multiplier < 1 || math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0)):
		return fmt.Errorf("consumer: %s: Multiplier %v: want 1 or more, or 0 for the default", what, b.Multiplier)
	case b.Jitter > 1 || math.IsNaN(b.Jitter):
		return fmt.Errorf("consumer: %s: Jitter %v: want a fraction up to 1, 0 for the default, or negative for none", what, b.Jitter)
	case b.MaxAttempts < 0:
		return fmt.Errorf("consumer: %s: MaxAttempts %d: want 1 or more, or 0 for the default", what, b.MaxAttempts)
	}
	return nil
}

// delay is the wait before retry n (1 for the first retry).
func (b Backoff) delay(n int) time.Duration {
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(n-1))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	if b.Jitter > 0 {
		d -= d * b.Jitter * rand.Float64()
	}
	return time.Duration(d)
}

// invoke runs the handler until it succeeds, gives up, or the partition
// stops. r.h and r.v are the decoded record, or nil to decode it. failed,
// when not nil, is the error of a run that already happened (in a batch).
//
// A transient error (the database of a HandleTx handler failed) is waited
// out on the same record with fetching the partition paused; it counts no
// attempt.
func (r *call) invoke(failed error) outcome {
	c, p, b := r.c, r.p, r.b
	var resume func()
	defer func() {
		if resume != nil {
			resume()
		}
	}()
	for run, waits := 1, 0; ; {
		attempt := r.prior + run
		err := failed
		if failed != nil {
			failed = nil
		} else {
			// A fresh value: the handler may have changed the last one.
			if r.h == nil {
				if out := r.decode(); out != proceed {
					return out
				}
			}
			err = r.inSlot(attempt)
		}
		switch {
		case err == nil:
			r.handled(attempt)
			return settled
		case err == errDuplicate:
			r.duplicate()
			return settled
		case err == errStopped || p.stopped.Load():
			// The failure may be the stop's own doing (a cancelled
			// context): leave the record to the next owner.
			return stopped
		case isPoison(err): // the record's message id (RequireEventID): no handler ran
			return r.deadLetter(wire.KindPoison, r.prior, err)
		case isTransient(err):
			waits++
			if resume == nil && !isConflict(err) {
				resume = p.holdFetch()
			}
			r.h = nil
			if !r.waitDatabase(waits, err) {
				return stopped
			}
			continue
		case IsPermanent(err):
			return r.giveUp(wire.KindPermanent, attempt, err)
		case run >= b.retry.MaxAttempts:
			return r.giveUp(wire.KindRetriesExhausted, attempt, err)
		}
		c.stats.retried.Add(1)
		c.cfg.tel.Retrying(r.span, attempt, err)
		c.cfg.tel.Retried(r.ctx, p.outcomes)
		wait := b.retry.delay(run)
		c.log.LogAttrs(context.Background(), slog.LevelInfo, "consumer: handler failed; retrying",
			r.attrs(slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
		if !p.sleep(wait) {
			return stopped
		}
		run++
		r.h = nil
	}
}

// giveUp sends a record its handler gave up on to the next retry topic,
// if the handler has one left and the error is worth retrying, else to the
// dead-letter topic.
func (r *call) giveUp(kind wire.FailureKind, attempts int, err error) outcome {
	c, p, b := r.c, r.p, r.b
	if kind == wire.KindRetriesExhausted && p.home.n < len(b.retryTopics) {
		next := p.home.n + 1
		due := time.Now().Add(b.retryTopics[p.home.n])
		rec := wire.RetryRecord(r.rec, r.origin, c.group, next, attempts, err, due)
		if r.replayOf == "" {
			// A record that is no replay (open.go) stays none in the
			// retry topic, whatever dlt-replay-of another producer gave
			// it: else its outcome would land on that dead letter.
			rec.Headers = slices.DeleteFunc(rec.Headers, func(h kgo.RecordHeader) bool { return h.Key == wire.HeaderReplayOf })
		}
		if !r.write(rec) {
			return stopped
		}
		c.stats.retryTopic.Add(1)
		r.report(Outcome{Result: SentToRetry, Attempts: attempts, Err: err})
		c.log.LogAttrs(context.Background(), slog.LevelInfo, "consumer: handler failed; record sent to a retry topic",
			r.attrs(slog.String("retry_topic", rec.Topic), slog.Int("attempts", attempts), slog.Time("due", due), slog.String("error", err.Error()))...)
		return settled
	}
	return r.deadLetter(kind, attempts, err)
}

// waitDue waits until a retry record is due; false when the partition
// stopped first. Other partitions go on; fetching this one is paused
// during a long wait.
func (r *call) waitDue() bool {
	d := time.Until(r.due)
	if d <= 0 {
		return true
	}
	if d >= holdFetchAfter {
		defer r.p.holdFetch()()
	}
	return r.p.sleep(d)
}

// holdFetchAfter: shorter waits for a retry record do not pause fetching
// its partition (pausing drops what was fetched, to be fetched again).
const holdFetchAfter = 500 * time.Millisecond

// waitDecode logs that the record cannot be decoded for now (the
// registry), not the record's fault, and waits before the same record is
// tried again; false when the partition stopped.
func (r *call) waitDecode(n int, err error) bool {
	c, p := r.c, r.p
	if p.stopped.Load() {
		return false
	}
	c.stats.decodeWaits.Add(1)
	wait := c.cfg.outage.delay(n)
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "consumer: cannot decode for now; trying the same record again",
		r.attrs(slog.Int("try", n), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
	return p.sleep(wait)
}

// waitDatabase logs that the database failed, or that a transaction
// conflicted with another, and waits before the same records (r's, or
// r's batch) are tried again; false when the partition stopped.
func (r *call) waitDatabase(n int, err error, extra ...slog.Attr) bool {
	c := r.c
	wait := c.cfg.outage.delay(n)
	attrs := r.attrs(append(extra, slog.Int("try", n), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
	if isConflict(err) {
		c.stats.conflicts.Add(1)
		c.log.LogAttrs(context.Background(), slog.LevelWarn, "consumer: the transaction conflicted with another (serialization failure, deadlock, lock); running the same records again", attrs...)
	} else {
		c.stats.databaseWaits.Add(1)
		c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: the database failed; trying the same records again, fetching the partition paused", attrs...)
	}
	return r.p.sleep(wait)
}
