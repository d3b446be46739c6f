// Package outbox makes publishing part of the business transaction: events
// are written to an outbox table in the caller's SQL transaction, and a relay
// publishes committed rows to Kafka in commit order per key, never before
// commit and never lost after it. Dialects: PostgreSQL (pgx, or pgx's
// database/sql driver) and SQLite (modernc.org/sqlite).
//
// # How it works
//
// New binds an Outbox to a sqldb.DB and a *bus.Encoder. Migrate creates the
// tables (the same statements as migrations/postgres.sql and
// migrations/sqlite.sql, for teams that run their own migrations), and
// upgrades those of an earlier evbus, which kept published rows in the
// outbox table, keeping every row (migrations/upgrade-*.sql). Enqueue
// encodes each event with the encoder at once (an event that cannot be
// encoded fails Enqueue, and the caller's transaction with it) and inserts
// one row per event: topic, key, value, every header of the record (ce_*,
// correlation and causation, W3C trace context when present) in the stable
// form of wire.AppendHeadersColumn (a version byte 0x01, then per header
// uvarint length and bytes of the key, then of the value) and created_at.
// The outbox table holds the unpublished rows
// and nothing else, so that its primary key (shard, id), the relay's
// reading order, is its only index and a row costs the writer one index
// entry; published rows move to the table named after it with
// "_published" (see Retention).
//
// A writer's transaction rate depends on its statements and round trips
// more than on anything else: Exec sends the business statement and the
// outbox rows to PostgreSQL as one statement (the business statement as
// a data-modifying WITH clause), and Queue adds the rows to a pgx batch.
// With 8 writers on a 2-core machine, one statement instead of two is
// worth 15-35 % more transactions a second (BENCHMARKS.md).
//
// A Relay reads the oldest unpublished rows of its shard (ORDER BY id,
// no cursor), produces them through an idempotent client with acks=all,
// waits for Kafka's acknowledgement, and only then marks them published:
// it moves them to the published rows' table in one statement (or
// deletes them, DeleteOnPublish). While Kafka takes one batch, the
// relay marks the previous one and reads the next (the oldest unpublished
// rows other than those in flight); the next batch is sent only once the
// current one is acknowledged in full, and dropped unsent when a record
// failed, so a later row never overtakes a failed row of its key. A relay
// that dies between the acknowledgement and the mark leaves its batches
// unmarked: the next relay publishes them again with the same ce_id
// (consumers deduplicate on ce_id), so at most two batches (2 x BatchSize
// events) repeat and none is lost. For the same reason the relay's own
// commits on PostgreSQL do not wait for the disk (synchronous_commit
// off): a mark lost in a server crash only publishes its rows again. When Kafka is away
// the client keeps retrying the batch in order; the rows stay, and after
// AckTimeout the stall shows in Status. Records Kafka fails otherwise are
// left unpublished and retried with back-off, and the error, which names
// the first failed row, is the shard's last error in Status.
//
// # Event size
//
// Enqueue refuses (bus.ErrTooLarge) an event whose record, alone in a
// batch, is larger than MaxEventBytes (default DefaultMaxEventBytes,
// franz-go's default batch limit of 1,000,012 bytes), and Relay refuses
// a client whose kgo.ProducerBatchMaxBytes is smaller: what Enqueue
// accepts, the relay's client takes. The relay also reads each topic's
// max.message.bytes (and warns when it is smaller than MaxEventBytes or
// the client's batches). A row larger than its client or its topic takes
// (written before a limit was lowered) is never sent: it is stuck, and
// so are the later rows of its key, which wait behind it so that the
// key's order holds, while every other key goes on. The relay logs it at
// ERROR, lists it in Status (RelayStatus.Stuck), reports it in Ready and
// counts it in evbus.outbox.stuck; once an operator deletes the row, or
// the limit is raised, its key goes on within a minute. The check is made
// before any record of a batch is sent; a record the broker refuses for
// its size all the same (a topic whose configuration the relay could not
// read) is stuck from then on, but the later rows of its key in the same
// batch were sent with it.
//
// # Connections
//
// A relay uses at most Connections of the database's pool at once
// (default 2) and refuses, at Relay, a pool it would leave without a
// connection for the service (ErrPoolTooSmall, naming the pool's size and
// the shards). On PostgreSQL one of them is the relay's session, held
// while Run runs, for the advisory locks of all the shards it publishes
// and the LISTEN for wake-ups; the others are taken from the pool for a
// batch's statements (one transaction that marks the previous batch and
// reads the next) and given back at once, never held while Kafka takes a
// batch; the shards take turns on them. Status and the backlog metrics
// run on the pool like any statement of the service.
//
// # Readiness
//
// Ready returns nil when Run runs, the database answers the relay, a
// Kafka broker answers it (it checks every few seconds, so an
// unreachable Kafka shows while there is nothing to publish) and no row
// is stuck; else an error that says which. It does not block: wire it to
// an orchestrator's readiness probe. An unreachable database or Kafka is
// logged at ERROR, naming the cause and the brokers, at once and then
// every 30 seconds while it lasts. Run returns context.Cause(ctx) when
// its context ends, as consumer.Consumer.Run does.
//
// # Order per key, and the commit-order trap
//
// PostgreSQL assigns an identity at insert, not at commit, so ids do not
// follow commit order: a relay that remembers "published up to id N" can
// pass over a row whose transaction commits after a larger id was
// published. The relay keeps no such cursor: every round it reads the
// unpublished rows from the smallest id, so a late commit is picked up by
// the next round, never skipped.
//
// Without a cursor, rows are still read in id order, which is not commit
// order either: two transactions writing the same key concurrently could
// commit in the opposite order of their ids. Enqueue prevents that on
// PostgreSQL: before inserting, it takes a transaction-scoped advisory
// lock (pg_advisory_xact_lock) on a hash of each (topic, key) it writes,
// in the same statement. A second transaction writing that key waits
// until the first commits or rolls back, and only then gets its id. So
// for one key, id order is commit order; and a relay that sees the later
// row sees the earlier one too, because it committed before the later
// row existed. SQLite has one writer at a time, so ids follow commit
// order there without a lock. The lock costs nothing between different
// keys (hash collisions only make two keys take turns); it makes
// transactions writing the same aggregate take turns, which they usually
// do anyway on the aggregate's row. Enqueue all of a transaction's keys
// in one call when it writes several: the locks are taken in a fixed
// order, while two calls in opposite key orders in two transactions can
// deadlock (PostgreSQL then aborts one).
//
// Transaction-id cursors (xid8 with pg_snapshot_xmin, as Watermill does)
// are the other answer; they keep a cursor, so a relay reads only new
// rows, but they need PostgreSQL 13 or later, are PostgreSQL-only and
// make the ordering argument depend on snapshot arithmetic. Reading the
// unpublished rows from the start of the primary key is cheap, because
// the table holds nothing else, and the lock gives the same guarantee
// with one plain rule.
//
// # One relay per shard
//
// Every replica of a service may run a relay. Rows are split into Shards
// by a hash of (topic, key) (default one shard); for each shard, relays
// compete for a PostgreSQL session advisory lock (pg_try_advisory_lock),
// which each relay takes on its session, one connection for all its
// shards. The session waits for notifications between its tries, so it
// sees at once when the server closes it; then the relay stops working
// its shards, and waits for their batches to end, before it lets the
// session go and tries again. When its process dies, the server closes
// the session and releases the locks, and a standby, trying every
// TakeoverInterval, takes over within about a second. A holder cut off
// by the network keeps the locks until the server notices the dead
// connection (TCP keepalive; tune tcp_keepalives_* for a bound); a
// session the server dropped while a batch was in flight can have that
// batch published by both relays, in order, which consumers deduplicate
// on ce_id. SQLite has no such lock: run one relay per database file.
// Status reports each shard's holder and whether its lock is still held.
//
// # Wake-up
//
// pg_notify serializes the commits of the transactions that call it (one
// lock on the notification queue, held until the commit is on disk),
// which halves the write rate of many concurrent writers. So Enqueue
// coalesces: the statement notifies only when no statement of the same
// Outbox notified in the last 4 ms, so at most 250 commits a second per
// Outbox take turns on that lock, and the others none. A relay woken by
// a notification looks again every millisecond for 16 ms after the last
// row it found, so it finds the rows that did not notify; under a steady
// load it keeps finding rows and never waits at all; under a low load
// nearly every commit notifies, and serializing a few commits costs
// nothing. The trade-off: a row whose statement skipped the notification
// and whose transaction commits after the relay stopped looking (more
// than about 12 ms between its statement and its commit, or the
// notifying transaction rolled back) waits for the next notification or
// at most PollInterval, the fallback. The notification is part of
// Enqueue's one statement: no round trip, and no table read. Without
// LISTEN (SQLite, Notify(false), a driver other than pgx) the relay polls,
// with the same quick looks after activity.
//
// An earlier design notified only when the relay had flagged itself idle
// in the relays table; reading that flag in every Enqueue cost the
// writers more server time than the notifications it saved (about a
// tenth of the transaction rate with 8 writers). The flag remains, for
// Status.
//
// # Retention
//
// Published rows are kept for the Retention (default 7 days) in the
// published rows' table (evbus_outbox_published for the default table),
// with the time Kafka acknowledged them, for audit and re-publishing; the
// relay of shard 0 deletes older ones in chunks. DeleteOnPublish deletes
// rows as soon as Kafka acknowledged them. To publish kept rows again,
// copy them back; they get new ids, so they go after the rows already
// waiting, and keep their ce_id, so consumers that handled them skip them:
//
//	INSERT INTO evbus_outbox (shard, topic, key, value, headers, created_at)
//	SELECT shard, topic, key, value, headers, created_at
//	FROM evbus_outbox_published WHERE ... ORDER BY id;
package outbox
