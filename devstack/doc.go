// Package devstack runs the embedded development stack: a Kafka broker and a
// Confluent-compatible schema registry in this process, listening on
// loopback. `evbus dev` serves it to other processes, and tests start one
// per test (see package evbustest).
//
// Kafka is franz-go's kfake with one broker. Like a Kafka broker by default,
// it creates a topic on first use when the client asks for it
// (kgo.AllowAutoTopicCreation), with Partitions partitions.
//
// The registry is franz-go's srfake behind a handler that enforces
// compatibility: a registration that breaks the subject's level (its own,
// else the global one; BACKWARD by default) is refused with HTTP 409 naming
// the field, as Confluent does, and the compatibility endpoint answers for
// real. Only Avro schemas are checked; other schema types pass unchecked.
// Schema contexts (paths under /contexts/{context}/) are read-only.
//
// With a data directory, state survives a restart. Kafka keeps its topics,
// records and committed offsets in <dir>/kafka (kfake's own persistence).
// The registry appends every change to <dir>/registry/schemas.log (JSON
// lines, synced before the change is answered) and replays it at start, so
// schema ids, versions and GUIDs never change. Close flushes everything. If
// the process dies instead, what was acknowledged is kept too; a machine
// crash can lose the last Kafka writes, which kfake does not sync one by
// one. Only one stack may use a data directory at a time.
package devstack
