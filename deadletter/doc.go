// Package deadletter is what operators do with a consumer group's dead
// letters, on Kafka alone.
//
// Ledger records what happened to each dead letter (replays, discards, parks, reveals, and the outcomes of replays) in the group's compacted ledger topic (docs/wire-format.md).
package deadletter
