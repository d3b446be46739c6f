// Package sqldb is the boundary between evbus and a service's SQL
// database: the transactions evbus writes in (the outbox rows, the
// processed-message rows of idempotent consumers) are the service's own,
// begun on its pool, in its driver's transaction type.
//
// DB is that boundary. Two implementations cover the drivers evbus
// supports: Pgx, on a pgx/v5 pool (handlers and Enqueue get a pgx.Tx), and
// SQL, on a database/sql pool (*sql.Tx), for PostgreSQL through pgx's
// stdlib driver or SQLite through modernc.org/sqlite. Dialect is what
// differs between the databases in the statements evbus runs; Postgres and
// SQLite are the two shipped, and a third database is one more value of
// the interface.
//
// ExecPrepared is Exec for the statements a caller runs again and again
// (the outbox's inserts): with pgx it prepares them on the connection once
// and keeps them there; elsewhere it is Exec.
//
// Classify reads an error of either database once, for what running the
// same work again would do: wait for a database that cannot serve, run
// again after a conflict, or not at all for data or constraints the
// database refused.
//
// Table names come from configuration and go into statements as text, so
// every table name of evbus follows one rule, ValidIdentifier's: letters,
// digits and underscores, optionally schema-qualified, nothing else.
// QuoteTable checks a name and quotes it for its dialect, once, when the
// outbox or the processed-message table is made: then SQL keywords
// ("order", "user") and schema-qualified names work on both dialects.
package sqldb
