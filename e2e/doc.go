// Package e2e holds the end-to-end promise tests of evbus: a service
// writes business rows and their events in one transaction (outbox), a
// relay publishes them to Kafka, and an idempotent consumer applies each
// event's effect in its own transaction (consumer.HandleBatchTx with a
// processed-message table), all on a real broker, a real schema registry
// and a real PostgreSQL.
//
// Every test kills or cuts off one part at one point (a process killed
// with SIGKILL, the broker, the registry or the database stopped) and then
// checks the promise on thousands of events over many keys and several
// partitions: every committed event's effect is applied exactly once,
// none is lost, the effects of one key are applied in the order the
// service wrote them, and nothing of a transaction that did not commit
// shows anywhere.
//
// The package has no code of its own: only tests.
package e2e
