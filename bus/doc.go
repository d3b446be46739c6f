// Package bus holds the event model of evbus: typed registration of
// integration events (Go type, Avro schema, topic, partition key), the
// publisher that frames them with the CloudEvents headers of the wire
// contract, and in-process domain events: an aggregate records them and the
// unit of work dispatches them to handlers inside the business transaction.
package bus
