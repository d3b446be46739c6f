package consumer

import (
	"context"
	"log/slog"
	"time"

	"github.com/evbus/evbus/wire"
	"github.com/twmb/franz-go/pkg/kgo"
)

// deadLetter writes the record to its dead-letter topic.
func (r *call) deadLetter(kind wire.FailureKind, attempts int, err error) outcome {
	c := r.c
	rec := wire.DeadLetterRecord(r.rec, r.origin, c.group, kind, attempts, err, time.Now())
	if !r.write(rec) {
		return stopped
	}
	if r.replayOf != "" {
		r.dead = rec // its place names it in the ledger
	}
	c.stats.deadLettered[kind].Add(1)
	r.report(Outcome{Result: DeadLettered, Kind: kind, Attempts: attempts, Err: err})
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "consumer: record dead-lettered",
		r.attrs(slog.String("dead_letter_topic", rec.Topic), slog.String("kind", string(kind)), slog.Int("attempts", attempts), slog.String("error", errText(err)))...)
	return settled
}

// writeTimeout bounds one write to a retry or dead-letter topic.
const writeTimeout = 15 * time.Second

// write produces tmpl, a dead-letter or retry record of the call's,
// trying again at the pace of OutageRetry until it succeeds, and sets
// tmpl's partition and offset to where it was written; false when the
// partition stopped first. The record the call stands for is not settled
// (so not committed) before.
func (r *call) write(tmpl *kgo.Record) bool {
	c, p := r.c, r.p
	for n := 1; ; n++ {
		rec := &kgo.Record{Topic: tmpl.Topic, Key: tmpl.Key, Value: tmpl.Value, Headers: tmpl.Headers}
		// A span of the record's trace; the record carries it on.
		spanCtx, span := c.cfg.tel.Publish(r.ctx, rec)
		start := time.Now()
		ctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
		err := c.cl.ProduceSync(ctx, rec).FirstErr()
		cancel()
		c.cfg.tel.Published(spanCtx, span, rec, start, err)
		if err == nil {
			tmpl.Partition, tmpl.Offset = rec.Partition, rec.Offset
			return true
		}
		if p.stopped.Load() {
			return false
		}
		c.stats.publishFailures.Add(1)
		wait := c.cfg.outage.delay(n)
		c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: could not write the record; trying again, its offset is not committed meanwhile",
			r.attrs(slog.String("to", tmpl.Topic), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
		if !p.sleep(wait) {
			return false
		}
	}
}
