// Package consumer runs consumer groups: it hands each record to the
// handler registered for its event type, decoded into the handler's Go
// type through the schema registry, with its metadata (bus.Meta) on the
// handler's context.
//
// It promises:
//   - order: a partition's records are handled one at a time in offset
//     order (PerKey: per key, in parallel lanes);
//   - at least once: an offset is committed only past records that are all
//     settled (handled, skipped, or written to a retry or dead-letter
//     topic), never past a failure;
//   - bounded retries: a failing handler runs again with back-off (Retry),
//     then its record goes to a retry topic (RetryTopics) or the
//     dead-letter topic "<topic>.<group>.dlt"; a poison record goes there
//     at once. What is not the record's fault (the registry, the database,
//     a dead-letter write) is waited out and never dead-letters it;
//   - effects once: HandleTx runs a handler in a transaction of the
//     service's database that also records the message as processed;
//   - bounded memory: at most MaxBufferedBytes of records, decompressed;
//   - replays accounted for: what became of a replayed dead letter (handled,
//     or failed again, and then parked past MaxReplays) is written to the
//     group's dead-letter ledger before the replay's offset is committed; a
//     group that reads no replay never opens its ledger.
//
// docs/design/consumer.md tells how and why, file by file.
package consumer
