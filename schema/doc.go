// Package schema talks to a Confluent-compatible schema registry: it names
// subjects (TopicRecordNameStrategy by default, TopicNameStrategy and
// RecordNameStrategy on request), registers event schemas on first use or
// only looks them up, resolves schema references, caches schemas by id, and
// checks compatibility on the client before registering, at the seven
// registry levels, so an incompatible change fails with an error that names
// the field even against a registry that checks nothing.
//
// A *Registry is the codec.Resolver consumers decode with.
//
// The client is github.com/twmb/franz-go/pkg/sr; credentials (basic auth or
// a bearer token) and TLS are options, and never appear in errors.
package schema
