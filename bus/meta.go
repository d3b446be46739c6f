package bus

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/internal/eventctx"
)

// Meta is what a handler knows about an event besides its value: where it
// came from in Kafka and the CloudEvents attributes it carried. In a
// consumer, Key, Headers and the attribute strings share the fetched
// record's memory: read them, do not write to Key or the header values.
type Meta struct {
	ID            string // ce_id: unique per event, the idempotency key
	Type          string // ce_type: the Avro full name
	Source        string // ce_source: the producing service
	Subject       string // ce_subject: the aggregate id, when set
	Time          time.Time
	CorrelationID string // the conversation the event belongs to
	CausationID   string // the event or command that caused it

	Key       []byte
	Topic     string
	Partition int32
	Offset    int64
	SchemaID  int
	Headers   []kgo.RecordHeader
}

type correlationKey struct{}

// WithMeta returns a context that carries the event being handled. Events
// published with that context carry its id as their causation id and its
// correlation id as theirs. Consumers set it for their handlers.
func WithMeta(ctx context.Context, m *Meta) context.Context {
	return context.WithValue(ctx, eventctx.MetaKey, m)
}

// MetaFrom returns the event being handled, if any.
func MetaFrom(ctx context.Context) (*Meta, bool) {
	m, ok := ctx.Value(eventctx.MetaKey).(*Meta)
	return m, ok
}

// WithCorrelationID starts a conversation: events published with the
// returned context carry id as their correlation id (an HTTP request id,
// say). Without one, an event starts its own conversation.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// lineage returns the correlation and causation ids for an event published
// with ctx. The correlation is "" when the event starts a conversation: its
// own id is then the correlation.
func lineage(ctx context.Context) (correlation, causation string) {
	if id, ok := ctx.Value(correlationKey{}).(string); ok && id != "" {
		correlation = id
	}
	if m, ok := MetaFrom(ctx); ok {
		causation = m.ID
		if correlation == "" {
			correlation = m.CorrelationID
			if correlation == "" {
				correlation = m.ID
			}
		}
	}
	return correlation, causation
}
