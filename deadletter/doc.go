// Package deadletter is what operators do with a consumer group's dead
// letters, on Kafka alone.
//
// Read returns the dead letters of the dead-letter topics
// ("<topic>.<group>.dlt", wire.DeadLetterTopic), oldest first; Groups
// groups one group's dead letters by their Fingerprint, largest group
// first. Both read each partition from its start to the end offset it had
// when the read began, with a client of their own built from the given
// client's options; they never commit offsets or write anything.
//
// A fingerprint is a failure's cause: the failure kind (dlt-error-kind),
// the event type (ce_type) and the error text (dlt-error) with what varies
// between records of one cause replaced by a placeholder. NormalizeError
// states the rule; its ID is the first 12 hex digits of the SHA-256 of
// the three, so it is the same in every process and release that keeps
// the rule.
//
// Ledger records what happened to each dead letter (replays, discards,
// parks, reveals, and the outcomes of replays) in the group's compacted
// ledger topic, whose records docs/wire-format.md specifies.
//
// Manager is what an operator's tool holds: one group's dead letters,
// ledger and replays, followed incrementally, with the reads (Groups,
// List, Get) and the actions (Plan, Replay, Discard, Park, Reveal) of
// docs/operations.md. A Selection chooses dead letters; the zero
// Selection chooses none.
package deadletter
