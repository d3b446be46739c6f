package outbox

// SetAfterPublish makes r call f after Kafka acknowledged a batch and
// before the batch is marked.
func SetAfterPublish[Tx any](r *Relay[Tx], f func()) { r.afterPublish = f }

// AppendParsedHeaders reads the headers column, for the benchmark's bare
// relay.
var AppendParsedHeaders = appendParsedHeaders
