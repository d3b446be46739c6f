// Package bus holds the event model of evbus: typed registration of
// integration events (Go type, Avro schema, topic, partition key), the
// publisher that frames them with the CloudEvents headers of the wire
// contract.
//
// # Integration events
//
// Event registers a Go type with its schema, topic and key; NewPublisher
// publishes registered events (Publish waits for Kafka's acknowledgement,
// PublishAsync does not), and NewEncoder builds the same records without
// sending them, for the outbox.
//
// In-process domain events and the unit of work are package domain's.
package bus
