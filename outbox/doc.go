// Package outbox makes publishing part of the business transaction:
// Enqueue writes events into an outbox table in the caller's SQL
// transaction, and a Relay publishes the committed rows to Kafka.
//
// What it promises:
//   - An event is published only after its transaction commits, and never
//     lost after it: at least once, a repeat carrying the same ce_id.
//   - The events of one (topic, key) are published in commit order.
//   - Per shard one relay publishes and the others stand by; a standby
//     takes over within about TakeoverInterval of its holder's death.
//   - A row Kafka can never take (too large) holds back the later rows of
//     its key and no other, and shows in Status and Ready (StuckRow).
//   - A relay uses at most Connections of the database's pool, and
//     refuses a pool it would leave without one for the service.
//
// Dialects: PostgreSQL (pgx, or pgx's database/sql driver) and SQLite
// (modernc.org/sqlite). Each dialect's statements are in sql_postgres.go
// and sql_sqlite.go, all shown in testdata/statements.golden; the tables
// in migrations/. docs/design/outbox.md explains how and why.
package outbox
