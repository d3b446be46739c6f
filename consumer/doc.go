// Package consumer runs consumer groups: typed handlers per event type,
// ordering per partition (or per key), offsets committed only past handled
// records, retries with back-off, retry topics and dead-letter topics, and
// idempotent handlers whose effects and processed-message rows commit in
// one database transaction.
//
// # Use
//
//	c, err := consumer.New("billing", reg, consumer.Kafka(kgo.SeedBrokers(brokers...)))
//	consumer.Handle(c, events.OrderPlaced, func(ctx context.Context, ev *events.OrderPlaced, m bus.Meta) error {
//		return bill(ctx, ev)
//	}, consumer.Retry(consumer.Backoff{MaxAttempts: 10}))
//	go func() { errc <- c.Run(ctx) }()
//	...
//	err = c.Close(shutdownCtx)
//
// The consumer joins the group with cooperative-sticky balancing and
// subscribes to the topics of its handlers (and their retry topics). Each
// record goes to the handler registered for its topic and ce_type, decoded
// into the handler's Go type through the schema registry (the writer's
// schema resolved to the reader's), with its metadata in a bus.Meta and on
// the handler's context (bus.WithMeta), so events published while
// handling carry its id as causation id and its correlation id.
//
// # Order and parallelism
//
// Records of one partition are handled one at a time in offset order;
// partitions run in parallel, at most Concurrency handler calls at once.
// With PerKey(n), records of one partition with different keys run in up
// to n lanes in parallel while each key stays in order.
//
// # Commits
//
// An offset is committed only when every record before it in its
// partition is settled: handled, skipped, written to a retry topic, or
// written to the dead-letter topic. Never past a failure. Commits happen
// every CommitInterval, when partitions are revoked (after their handler
// calls under way finished) and when the consumer stops. Delivery is at
// least once: after a crash, records handled since the last commit are
// handled again, so handlers should be idempotent (ce_id is the key; see
// Idempotent handlers). With
// PerKey, a partition that stops may have handled records of other keys
// past one that never started; its next owner handles those again too.
//
// # Memory
//
// What the consumer holds is bounded in bytes of records as they are in
// memory, decompressed, whatever the compression: MaxBufferedBytes in all
// (DefaultMaxBufferedBytes, 128 MiB), and 10 MiB per partition (80 MiB
// with Batch handlers). A partition whose records pile up (handlers slower
// than fetching, a handler retrying, a dead-letter topic refusing writes)
// is full at 4 MiB of records (32 MiB with Batch handlers, which must not
// run dry between fetches), or at its share of MaxBufferedBytes when that
// is less (MaxBufferedBytes/(2.5 * partitions), at least 64 KiB). Kafka's
// fetch limits count compressed bytes, so the consumer sizes each fetch
// itself, by how far the batches it has read expand: a fetch brings a
// partition at most half of that threshold once decompressed. A partition
// holds at most its threshold and three such fetches (2.5 times its
// threshold), and all of them together at most MaxBufferedBytes. Two
// things can go past it once: a fetch brings at least one whole batch of
// a partition (Kafka's rule), so a producer's batch that expands to more
// than the fetch's share counts whole (franz-go producers batch at most
// 1 MB before compression by default; kgo.MaxDecompressBatchBytes bounds
// any batch); and values that suddenly compress far better than the ones
// before are fetched once at the old size. Stats.Buffered is what the
// partitions hold now. Measured (BenchmarkBacklogMemory): three
// partitions, every handler blocked, a backlog of 120 MB of repetitive
// values compressed with snappy, lz4 or zstd, or 360 MB with zstd: the
// heap grows by 12 to 19 MiB, as with values that do not compress (it
// grew by 132 to 231 MiB, and 462 MiB for 360 MB, when fetches were sized
// in compressed bytes only).
//
// While a partition is full the consumer stops polling: franz-go keeps
// the one fetch it has buffered and hands it over as soon as the partition
// has drained, so a backlog is read without waits, even beside idle or
// drained partitions. A partition still full after FetchMaxWait (a slow
// or stuck handler) is paused once the consumer has taken that fetch, and
// the others go on: so another partition's records wait at most
// FetchMaxWait behind it. A paused partition is fetched again once the
// fetch in flight returns, which the broker holds up to FetchMaxWait when
// the other partitions are idle.
//
// # Failures
//
// A handler error is retried with exponential back-off and jitter up to the
// handler's MaxAttempts (Retry, DefaultRetry); waiting blocks only the
// record's partition (its lane with PerKey), holding no concurrency slot.
// An error marked with Permanent is not retried. Then the record goes to
// the dead-letter topic "<topic>.<group>.dlt" (wire.DeadLetterTopic): same
// key, the original value bytes, the original headers, plus the dlt-*
// headers of the wire contract (wire.HeaderDLTOriginalTopic and the others),
// with dlt-error-kind retries-exhausted or permanent. The partition then
// goes on. A dead-letter write that fails is tried again with back-off
// until it succeeds; the record's offset is not committed meanwhile.
//
// Poison records go to the dead-letter topic at once with dlt-error-kind
// poison and dlt-attempts 0: a value without the Confluent framing, a
// schema id the registry itself says it does not have (HTTP 404 with its
// JSON error code 40403), a body that does not decode or cannot be resolved to
// the handler's schema, or a CloudEvent (a record with ce_specversion)
// without ce_id, ce_source or ce_type, or with a ce_time that is not RFC
// 3339. Records without ce_specversion are taken as plain Confluent Avro
// records of foreign producers: they are routed by ce_type, or by their
// writer schema's full name when they have none. A registry that is
// unavailable is not the record's fault: the same record is tried again
// with back-off, never dead-lettered, and nothing after it is committed.
// Unavailable is every answer that is not the registry's own verdict (see
// schema.ErrUnavailable): no answer, a 5xx, and a proxy or ingress in
// front of the registry answering its own 404 page when it is misrouted.
//
// Records of types without a handler are skipped and counted
// (Stats.Skipped, and by type Stats.SkippedTypes); Unhandled can
// dead-letter them instead. The first record of each such type after a
// partition is assigned is logged at WARN with the types the group
// handles on the topic: a type nobody handles is often an event whose
// producer renamed its Go type, which renames an inferred schema's record
// and so its ce_type (bus.Schema keeps a name).
//
// # Retry topics
//
// RetryTopics(delays...) makes a handler's retries non-blocking: a record
// it gives up on is written to "<topic>.<group>.retry-1" (wire.RetryTopic)
// with its value and headers plus retry-* headers (attempts so far, the
// original topic, partition, offset and timestamp, the due time and the
// last error), and its partition goes on. The consumer reads the retry
// topic, waits in that partition until the record is due (other
// partitions go on; a long wait pauses fetching the retry partition), and
// runs the handler again; then retry-2, and so on, and after the last one
// the dead-letter topic, with the original coordinates and the attempts of
// every stage. Retry topics must exist
// before Run: create them with the partition count of their topic
// (Consumer.Topics lists every topic the consumer uses).
//
// # Idempotent handlers
//
// HandleTx makes a handler's effects in the service's database happen
// once per message and group, however often Kafka delivers the message
// (a producer retry, a redelivery after a crash, a replay from the
// dead-letter topic):
//
//	processed, err := consumer.NewProcessed(sqldb.Pgx(pool)) // table evbus_processed
//	err = processed.Migrate(ctx)
//	consumer.HandleTx(c, events.OrderPlaced, processed, func(ctx context.Context, tx pgx.Tx, ev *events.OrderPlaced, m bus.Meta) error {
//		_, err := tx.Exec(ctx, "INSERT INTO invoices ...", ...)
//		return err
//	}, consumer.Batch(500))
//
// For each record, evbus begins a transaction, inserts (group, message id)
// into the processed-message table with ON CONFLICT DO NOTHING and runs
// the handler in the same transaction only when the row is new, then
// commits; the offset is committed after that. The effects and the row
// commit together or not at all, so a message seen again is skipped as a
// Duplicate (Stats.Duplicates, logged at debug level). A handler error or
// panic rolls back both; the retry runs clean, and a record given up on
// goes to the dead-letter topic without a row, so replaying it applies it.
// Effects outside the transaction (calls to other services) get no such
// guarantee. Two groups keep separate processed sets.
//
// The message id is ce_id. Records of foreign producers without one get
// "kafka:<topic>/<partition>/<offset>": it catches redelivery of the same
// record, not a producer that sends an event twice. MessageID derives ids
// otherwise (from the event, say); MessageID(RequireEventID) sends records
// without ce_id to the dead-letter topic, and as poison those with an
// empty ce_id or several. In every mode, a record whose ce_id headers
// differ is poison: one record is one message. The table stores an id as it is
// when it is text PostgreSQL can index (valid UTF-8 without NUL, at most
// MaxStoredIDLen bytes), else as its SHA-256 (ProcessedID): no id, whatever
// a producer put in it, keeps a record from being handled.
//
// Batch(n) handles up to n records of a partition (of a lane, with
// PerKey) in one transaction: the processed rows of the batch are claimed
// with one statement on PostgreSQL, and one commit serves them all. When a
// handler fails, the batch runs again with a savepoint per record so the
// others commit without it; the failed record then retries on its own,
// and the records of its key after it wait for it. Order holds per key.
//
// HandleBatchTx goes one step further: its handler gets the batch's new
// events at once and writes their effects in one statement (a multi-row
// insert, COPY), which is where the throughput is; when it fails, the
// batch runs again one event per savepoint.
//
// The table (DefaultProcessedTable, or TableName) is created by Migrate,
// or, for teams that run their own migrations, by Processed.MigrationSQL
// (the files in the module's consumer/migrations directory, one per
// dialect, with the configured name). Every table name of evbus follows
// one rule (sqldb.ValidIdentifier), checked by NewProcessed, and is quoted
// in every statement, so SQL keywords and schema-qualified names work. Processed.Cleanup
// deletes rows older than a window; run it periodically from any or every
// instance. The window must be longer than the longest time after which a
// message can come again: the retention of the topics the group reads
// (a group reset to the earliest offset reads that far back) plus how long
// dead-letter records may be replayed. A message that comes back after
// its row is gone is applied again.
//
// Errors of the database are sorted once (sqldb.Classify; the table is in
// docs/concepts.md). When the database cannot serve (it cannot be reached,
// the connection was lost, it is shutting down, out of connections), or
// an error says nothing and the database does not answer a ping, the
// record is not at fault: it is tried again with back-off (DefaultRetry's
// waits), no attempt is counted, it is never dead-lettered, fetching its
// partition is paused, and no offset moves past it (Stats.DatabaseWaits).
// When the database answers again, the consumer goes on where it was. A
// commit whose outcome is unknown is safe to retry: if it was committed,
// the rerun finds the row and skips the record. The statements evbus runs
// before the handler (begin, the processed-row insert) wait whatever their
// error: a table that does not exist (Migrate was not run) is logged at
// error level until it is fixed. A serialization failure or a deadlock
// runs the transaction again, without counting an attempt
// (Stats.Conflicts). Data or constraints the database refuses, in the
// handler or at COMMIT (a deferred foreign key), and a transaction a
// failed statement aborted (a handler that returned nil after one of its
// statements failed), are the record's: the handler's retries, then the
// dead-letter topic. In a batch, a COMMIT refused for the records' data
// runs each of them again in a transaction of its own, so that only the
// one at fault fails.
//
// # Replaying dead letters
//
// Each group also reads its replay topic "<topic>.<group>.replay"
// (wire.ReplayTopic) and hands its records to the handlers of <topic>, as
// records of <topic>: a replay topic is one more stage of the topic, like
// its retry topics. `evbus dlt replay --group G` (or wire.ReplayRecord) copies
// dead-letter records there: same key and value, the original headers and
// so the original ce_id (a handler that deduplicates by event id skips what
// it already handled), the original record's dlt-original-partition,
// -offset and -timestamp, plus dlt-replay-count and dlt-replayed-at. Only the
// group that failed the record reads that topic; the other groups of
// <topic> never see the record again. A replayed record that fails again
// is dead-lettered again with its replay headers kept, so the count goes up
// with each round and the tool refuses to replay it past a limit. Create
// the replay topic with the topic's partition count (Consumer.Topics lists
// it); a missing one is logged, and the consumer picks it up once it
// exists (at its next metadata refresh). A group that starts new
// partitions at their end (kgo.ConsumeResetOffset) must have its replay
// topics before it starts, or it misses replays sent before it first read
// them. A record dead-lettered after a replay names the same original
// record as its first dead letter, and its dlt-replay-of header the
// dead-letter record the replay came from.
//
// # Stopping
//
// Close stops fetching, lets handler calls under way finish until its
// context ends, commits and leaves the group. Cancelling Run's context
// stops at once: handler contexts are cancelled; what was handled is
// still committed.
package consumer
