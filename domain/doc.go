// Package domain dispatches in-process domain events inside the business
// transaction. A domain event says what happened inside the service and
// never leaves the process; integration events, which other services read,
// are package bus's.
//
// An aggregate embeds a Recorder and records events as its state changes.
// A UnitOfWork runs a command in one transaction (Tx: pgx.Tx, *sql.Tx or
// another driver's), then dispatches the recorded events to the handlers
// registered with On, which work in the same transaction and may record
// further events or publish integration events to the outbox
// (Scope.Publish), and commits.
//
// The promise: the command's changes, every handler's changes and the
// outbox rows commit together or not at all; a handler's error or a panic
// rolls all of it back. Scope.AfterCommit runs what must wait for the
// commit. docs/design/domain-events.md explains the choices.
package domain
