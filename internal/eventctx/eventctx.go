// Package eventctx holds the context key of the event being handled,
// shared by bus (WithMeta, MetaFrom) and consumer, whose handler context
// answers it without a context.WithValue per handler call (measured in
// consumer's BenchmarkPipeline: trick=ownContext against plain=withValue).
package eventctx

type metaKey struct{}

// MetaKey is the key under which a context carries the *bus.Meta of the
// event being handled.
var MetaKey any = metaKey{}
