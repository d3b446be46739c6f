package consumer

import (
	"sync/atomic"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/wire"
)

// Result is what became of a settled record.
type Result string

// The results an Observe function sees.
const (
	Handled      Result = "handled"       // a handler returned nil
	Skipped      Result = "skipped"       // no handler for the type
	SentToRetry  Result = "retry-topic"   // sent on to the next retry topic
	DeadLettered Result = "dead-lettered" // written to the dead-letter topic
	Duplicate    Result = "duplicate"     // a HandleTx handler's group had processed its message id
)

// Outcome reports one settled record to an Observe function.
type Outcome struct {
	Group    string
	Result   Result
	Meta     bus.Meta
	Value    any              // the decoded event (a *T) when handled or a duplicate, else nil
	Kind     wire.FailureKind // why, when dead-lettered
	Attempts int              // handler runs, over every stage
	Err      error            // the last error, when not handled
}

// Stats are the consumer's counters since New.
type Stats struct {
	Group           string
	Handled         uint64                      // records a handler returned nil for
	Retried         uint64                      // handler runs that failed and were run again in place
	RetryTopic      uint64                      // records sent on to a retry topic
	Skipped         uint64                      // records of types without a handler, skipped
	Duplicates      uint64                      // records of HandleTx handlers processed before, skipped
	DeadLettered    map[wire.FailureKind]uint64 // records written to the dead-letter topic, by kind
	DecodeWaits     uint64                      // decodes put off because the registry was unavailable
	PublishFailures uint64                      // dead-letter and retry-topic writes that failed and were tried again
	DatabaseWaits   uint64                      // HandleTx transactions put off because the database failed
	Conflicts       uint64                      // HandleTx transactions run again after a serialization failure, deadlock or lock refused
	LedgerWaits     uint64                      // writes of replays' outcomes to the dead-letter ledger that failed and were tried again
	LedgerRefused   uint64                      // replays' outcomes the dead-letter ledger refused (its state machine), left out and logged
	Paused          int                         // partitions whose fetching is paused now (back-pressure, a wait)
	Buffered        int64                       // bytes of records the partitions hold now, decompressed (MaxBufferedBytes)

	// SkippedTypes counts Skipped by type (ce_type, else the writer
	// schema's full name): a type here is one the group has no handler
	// for on that topic. Past 100 types, the others count under
	// OtherTypes.
	SkippedTypes map[string]uint64
}

type counters struct {
	handled, retried, retryTopic, skipped, duplicates atomic.Uint64
	decodeWaits, publishFailures, databaseWaits       atomic.Uint64
	conflicts, ledgerWaits, ledgerRefused             atomic.Uint64
	deadLettered                                      map[wire.FailureKind]*atomic.Uint64

	skippedTypes skippedTypes
}

// Stats returns the consumer's counters.
func (c *Consumer) Stats() Stats {
	s := Stats{
		Group:           c.group,
		Handled:         c.stats.handled.Load(),
		Retried:         c.stats.retried.Load(),
		RetryTopic:      c.stats.retryTopic.Load(),
		Skipped:         c.stats.skipped.Load(),
		Duplicates:      c.stats.duplicates.Load(),
		DecodeWaits:     c.stats.decodeWaits.Load(),
		PublishFailures: c.stats.publishFailures.Load(),
		DatabaseWaits:   c.stats.databaseWaits.Load(),
		Conflicts:       c.stats.conflicts.Load(),
		LedgerWaits:     c.stats.ledgerWaits.Load(),
		LedgerRefused:   c.stats.ledgerRefused.Load(),
		DeadLettered:    make(map[wire.FailureKind]uint64, len(c.stats.deadLettered)),
	}
	for k, v := range c.stats.deadLettered {
		s.DeadLettered[k] = v.Load()
	}
	s.SkippedTypes = c.stats.skippedTypes.snapshot()
	for _, p := range c.all() {
		p.mu.Lock()
		if p.paused {
			s.Paused++
		}
		s.Buffered += p.buffered
		p.mu.Unlock()
	}
	return s
}
