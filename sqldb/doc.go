// Package sqldb is the boundary between evbus and a service's SQL
// database: the transactions evbus writes in (the outbox rows, the
// processed-message rows of idempotent consumers) are the service's own,
// begun on its pool, in its driver's transaction type.
//
// [DB] is that boundary: [Pgx] on a pgx/v5 pool (transactions are pgx.Tx),
// [SQL] on a database/sql pool (*sql.Tx), for PostgreSQL through pgx's
// stdlib driver or SQLite through modernc.org/sqlite. [Dialect] holds what
// differs between the two in evbus's statements. [Postgres] and [SQLite]
// are the only dialects the outbox and the processed-message table accept:
// their statements are written for those two, and they refuse any other.
//
// [Classify] reads an error of either database once, for what running the
// same work again would do. [QuoteTable] checks a configured table name
// against one rule and quotes it for its dialect. docs/design/sqldb.md has
// the details.
package sqldb
