// Package codec encodes Go values to Avro framed for a Confluent-compatible
// schema registry and decodes them back.
//
// A framed value is the byte 0x00, the writer schema id as a 4-byte big-endian
// integer, then the Avro binary encoding of the value. Decoding also reads the
// schema id from a record header instead of the prefix (Confluent Schema
// Registry 8.0 header mode: "__value_schema_id" or "__key_schema_id", holding
// either 0x00 and a 4-byte id or 0x01 and a 16-byte schema GUID).
//
// Decoding fetches the writer schema by id through a [Resolver] (the schema
// package's registry client is one), caches it, and resolves it against the
// reader schema the consumer was compiled with, so a consumer built against
// version 2 of an event reads version 1 records and the reverse, as far as the
// Avro resolution rules allow.
//
// # Go types
//
// Values are Go structs whose fields carry `avro:"name"` struct tags, written
// by hand or generated from .avsc files with avrogen
// (go run github.com/hamba/avro/v2/cmd/avrogen@v2.31.0 -pkg events -o events.go order_placed.avsc).
// Logical types map to Go types as follows: timestamp-millis, timestamp-micros
// and date to time.Time, decimal (bytes) to *big.Rat, uuid to string, nullable
// unions ["null", T] to *T.
//
// # Limits
//
// Decoding bytes from the wire is bounded: a string or bytes field longer than
// [MaxBytesLen] and an array longer than [MaxArrayLen] fail to decode instead
// of making the consumer allocate what a hostile length prefix asks for.
//
// # JSON
//
// MarshalJSON and UnmarshalJSON spell values of a schema in JSON, as people
// write them or in the Avro specification's JSON encoding (JSONOptions), for
// tools that print and read records.
//
// The Avro engine stays inside this package: no engine type appears in the
// exported API and no other package of evbus imports it, so replacing it is
// a change here alone.
package codec
