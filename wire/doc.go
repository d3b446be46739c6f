// Package wire is evbus's wire contract in Go: the record headers it writes
// and reads, the names of the topics it derives from a topic and a consumer
// group (dead-letter, retry, replay, ledger), the building and parsing of
// dead-letter, retry and replay records, the records of a group's
// dead-letter ledger and their state machine, and the form of the
// outbox's headers column.
//
// Services in other languages read the same contract; docs/wire-format.md
// describes it for them. The names and forms here never change in a
// compatible release, and wire imports no other evbus package, so any of
// them, and any tool, can depend on it.
package wire
