// Package bus holds the event model of evbus: typed registration of
// integration events (Go type, Avro schema, topic, partition key), the
// publisher that frames them with the CloudEvents headers of the wire
// contract, and in-process domain events: an aggregate records them and the
// unit of work dispatches them to handlers inside the business transaction.
//
// # Integration events
//
// Event registers a Go type with its schema, topic and key; NewPublisher
// publishes registered events (Publish waits for Kafka's acknowledgement,
// PublishAsync does not), and NewEncoder builds the same records without
// sending them, for the outbox.
//
// # Domain events and the unit of work
//
// A domain event says what happened inside the service; it never leaves
// the process. An aggregate embeds a Recorder and records events as its
// state changes. A UnitOfWork runs a command in one transaction:
//
//	uow := bus.NewUnitOfWork(db, dispatcher, ob) // ob: an *outbox.Outbox[Tx]
//	err := uow.Do(ctx, func(ctx context.Context, s *bus.Scope[pgx.Tx]) error {
//		o := orders.New(id)
//		s.Track(o)
//		o.Place(lines) // records OrderPlaced
//		return repo.Save(ctx, s.Tx, o)
//	})
//
// After the command, the unit of work takes the events the tracked
// aggregates recorded and dispatches each to the handlers registered with
// On, in registration order. A handler works in the same transaction
// (s.Tx): it may change other aggregates, record further events (dispatched
// after those already waiting) and publish integration events
// (s.Publish), which are enqueued to the outbox last, still in the
// transaction. Then it commits.
//
// # Before commit or after commit
//
// Handlers run before the commit, in the transaction (the choice of
// eShopOnContainers and of most DDD practice): the command and every
// consequence of it commit together or not at all, so a handler that
// fails rolls back the command's own change and its outbox rows, and the
// caller gets the error. The cost is that every handler lengthens the
// transaction, and a slow one holds its locks.
//
// The alternative runs handlers after the commit: the command's change is
// durable whatever the handlers do, and they cannot roll it back; a
// handler that fails leaves the system half-updated unless it is retried
// from a durable record. In evbus that durable record is an integration
// event: publish it through the outbox in the transaction and handle it
// with a consumer, which retries and dead-letters. Scope.AfterCommit is
// for the small rest: effects that must wait for durability but need no
// retry (a cache to invalidate, an in-process notification).
package bus
