// Package bus holds the integration events of evbus: typed registration
// (Go type, Avro schema, topic, partition key), the Publisher that sends
// them with the CloudEvents headers of the wire contract
// (docs/wire-format.md), the Encoder that builds the same records for the
// outbox, and topic administration.
//
// Event registers a Go type. NewPublisher checks every type, its schema
// and (unless SkipTopicCheck) its topic at start, so a mistake fails there
// and not at the first publish. Publish returns once all in-sync replicas
// of an idempotent producer acknowledged each event, with an error for
// each one that was not; PublishAsync does not wait. An event that cannot
// be encoded, has an empty key or is too large fails alone and is never
// sent. Publishers and Encoders are safe for concurrent use.
//
// In-process domain events and the unit of work are package domain's.
package bus
