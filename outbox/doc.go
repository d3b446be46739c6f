// Package outbox makes publishing part of the business transaction: events
// are written to an outbox table in the caller's SQL transaction, and a relay
// publishes committed rows to Kafka in commit order per key, never before
// commit and never lost after it. Dialects: PostgreSQL (pgx) and SQLite.
package outbox
