package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

// Errors a caller can match with errors.Is.
var (
	// ErrUnknownType: the value's type was not given to the publisher.
	ErrUnknownType = errors.New("bus: event type not registered with the publisher")
	// ErrEmptyKey: the key function returned "" for the value.
	ErrEmptyKey = errors.New("bus: empty partition key")
	// ErrTooLarge: the record is larger than the producer or the topic
	// accepts.
	ErrTooLarge = errors.New("bus: record too large")
	// ErrTopicMissing: a topic the publisher needs does not exist.
	ErrTopicMissing = errors.New("bus: topic does not exist")
)

// Registration is an event type a publisher or consumer is started with: a
// *Type[T] from Event.
type Registration interface {
	Descriptor() *Descriptor
}

// Publisher publishes integration events: Avro framed for the registry,
// with the CloudEvents headers of the wire contract, through an idempotent
// producer that waits for all in-sync replicas. It is safe for concurrent
// use; concurrent callers share the producer's batches.
type Publisher struct {
	cl     *kgo.Client
	source []byte
	types  map[reflect.Type]*binding
	now    func() time.Time
}

// binding is a registered type ready to publish.
type binding struct {
	desc   *Descriptor
	enc    *codec.Encoder
	ceType []byte
	topic  string
	// maxBytes is the smaller of the producer's batch limit and the topic's
	// max.message.bytes.
	maxBytes int
}

var (
	specVersion = []byte(SpecVersion)
	contentType = []byte(ContentType)
)

// PublisherOption configures a Publisher.
type PublisherOption func(*publisherConfig)

type publisherConfig struct {
	source      string
	types       []Registration
	checkTopics bool
}

// Source names the producing service in ce_source, a URI-reference such as
// "/orders-service". Required.
func Source(s string) PublisherOption { return func(c *publisherConfig) { c.source = s } }

// Types registers the event types the publisher publishes.
func Types(ts ...Registration) PublisherOption {
	return func(c *publisherConfig) { c.types = append(c.types, ts...) }
}

// SkipTopicCheck skips the start-up check that every topic exists (the
// default checks, so a missing topic fails at start and not at the first
// publish).
func SkipTopicCheck() PublisherOption { return func(c *publisherConfig) { c.checkTopics = false } }

// NewPublisher checks every registered type, registers (or looks up) each
// schema, checks that the topics exist and that cl is an idempotent
// producer with acks=all (franz-go's defaults), and returns a Publisher
// that produces through cl. The caller keeps cl and closes it after the
// Publisher is done.
func NewPublisher(ctx context.Context, cl *kgo.Client, reg *schema.Registry, opts ...PublisherOption) (*Publisher, error) {
	cfg := publisherConfig{checkTopics: true}
	for _, o := range opts {
		o(&cfg)
	}
	if cl == nil || reg == nil {
		return nil, errors.New("bus: NewPublisher needs a Kafka client and a registry")
	}
	if u, err := url.Parse(cfg.source); cfg.source == "" || err != nil {
		return nil, fmt.Errorf("bus: Source(%q): want a URI-reference naming the service, such as /orders-service", cfg.source)
	} else if u.User != nil {
		return nil, fmt.Errorf("bus: Source must not carry credentials")
	}
	if len(cfg.types) == 0 {
		return nil, errors.New("bus: no event types: pass them with bus.Types(...)")
	}
	if acks := cl.OptValue(kgo.RequiredAcks); acks != kgo.AllISRAcks() {
		return nil, errors.New("bus: the Kafka client must wait for all in-sync replicas: leave kgo.RequiredAcks at its default")
	}
	if off, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); off {
		return nil, errors.New("bus: the Kafka client must be idempotent: remove kgo.DisableIdempotentWrite")
	}
	maxBytes, _ := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32)
	p := &Publisher{
		cl:     cl,
		source: []byte(cfg.source),
		types:  make(map[reflect.Type]*binding, len(cfg.types)),
		now:    time.Now,
	}
	c := codec.New(reg)
	topics := make(map[string]bool)
	for _, t := range cfg.types {
		d := t.Descriptor()
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := p.types[d.goType]; dup {
			return nil, fmt.Errorf("bus: event type %v registered twice", d.goType)
		}
		w, err := reg.Writer(ctx, d.topic, d.schema)
		if err != nil {
			return nil, fmt.Errorf("bus: event type %v: %w", d.goType, err)
		}
		enc, err := c.Encoder(w.ID, w.Schema, d.schema)
		if err != nil {
			return nil, fmt.Errorf("bus: event type %v: %w", d.goType, err)
		}
		p.types[d.goType] = &binding{desc: d, enc: enc, ceType: []byte(d.Name()), topic: d.topic, maxBytes: int(maxBytes)}
		topics[d.topic] = true
	}
	if cfg.checkTopics {
		names := make([]string, 0, len(topics))
		for t := range topics {
			names = append(names, t)
		}
		adm := kadm.NewClient(cl)
		if err := CheckTopics(ctx, adm, names...); err != nil {
			return nil, err
		}
		if err := p.topicLimits(ctx, adm, names); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// topicLimits lowers each binding's size limit to its topic's
// max.message.bytes, when the broker tells it, so an oversize event fails
// before it is sent.
func (p *Publisher) topicLimits(ctx context.Context, adm *kadm.Client, topics []string) error {
	configs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return fmt.Errorf("bus: topic configs: %w", err)
	}
	for _, rc := range configs {
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			limit, err := strconv.Atoi(*c.Value)
			if err != nil {
				continue
			}
			for _, b := range p.types {
				if b.topic == rc.Name && (b.maxBytes == 0 || limit < b.maxBytes) {
					b.maxBytes = limit
				}
			}
		}
	}
	return nil
}

// Result is the outcome of publishing one event.
type Result struct {
	Event     any
	ID        string // the event's ce_id
	Topic     string
	Partition int32
	Offset    int64
	Err       error
}

// PublishError carries the per-event errors of a Publish call, in the order
// of the events; nil entries were published. errors.Is and errors.As look
// through every entry.
type PublishError struct {
	Errs []error
}

func (e *PublishError) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	if n == 1 {
		return first.Error()
	}
	return fmt.Sprintf("%d of %d events not published; first: %v", n, len(e.Errs), first)
}

func (e *PublishError) Unwrap() []error { return e.Errs }

// Publish publishes events (values or pointers of registered types) and
// returns once Kafka has acknowledged every one that could be sent. It
// returns nil when all were published, else a *PublishError with an entry
// per event. An event that cannot be encoded, has an empty key or is too
// large is not sent at all; the others are.
func (p *Publisher) Publish(ctx context.Context, events ...any) error {
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	failed := false
	for i, ev := range events {
		rec, err := p.record(ctx, ev)
		if err != nil {
			errs[i], failed = err, true
			continue
		}
		wg.Add(1)
		p.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				errs[i] = p.produceError(rec, err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			failed = true
		}
	}
	if failed {
		return &PublishError{Errs: errs}
	}
	return nil
}

// PublishAsync publishes one event without waiting: done is called once
// Kafka acknowledged it or it failed (at once, on the caller's goroutine,
// when it could not be built). done must not block for long: it runs on the
// producer's callback goroutine. For high rates, many calls in flight share
// batches.
func (p *Publisher) PublishAsync(ctx context.Context, event any, done func(Result)) {
	rec, err := p.record(ctx, event)
	if err != nil {
		if done != nil {
			done(Result{Event: event, Err: err})
		}
		return
	}
	p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
		if done == nil {
			return
		}
		res := Result{Event: event, ID: string(r.Headers[1].Value), Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		if err != nil {
			res.Err = p.produceError(r, err)
		}
		done(res)
	})
}

// Flush waits until every event published so far was acknowledged or failed.
func (p *Publisher) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }

func (p *Publisher) produceError(r *kgo.Record, err error) error {
	return fmt.Errorf("bus: publish %s %s to %s: %w", r.Headers[3].Value, r.Headers[1].Value, r.Topic, err)
}

// record builds the Kafka record of an event: key, framed value and the
// CloudEvents headers. ce_id is header 1 and ce_type header 3: results
// and errors read them from there.
func (p *Publisher) record(ctx context.Context, ev any) (*kgo.Record, error) {
	ptr, b, err := p.lookup(ev)
	if err != nil {
		return nil, err
	}
	key := b.desc.key(ptr)
	if key == "" {
		return nil, fmt.Errorf("%w: %v: the key function returned \"\"", ErrEmptyKey, b.desc.goType)
	}
	value, err := b.enc.AppendEncode(nil, ptr)
	if err != nil {
		return nil, fmt.Errorf("bus: %v: %w", b.desc.goType, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("bus: event id: %w", err)
	}
	idText := id.String()
	correlation, causation := lineage(ctx, idText)
	keyBytes := []byte(key)
	headers := make([]kgo.RecordHeader, 7, 9)
	headers[0] = kgo.RecordHeader{Key: HeaderSpecVersion, Value: specVersion}
	headers[1] = kgo.RecordHeader{Key: HeaderID, Value: []byte(idText)}
	headers[2] = kgo.RecordHeader{Key: HeaderSource, Value: p.source}
	headers[3] = kgo.RecordHeader{Key: HeaderType, Value: b.ceType}
	headers[4] = kgo.RecordHeader{Key: HeaderTime, Value: p.now().UTC().AppendFormat(nil, time.RFC3339Nano)}
	headers[5] = kgo.RecordHeader{Key: HeaderContentType, Value: contentType}
	headers[6] = kgo.RecordHeader{Key: HeaderSubject, Value: keyBytes}
	headers = append(headers, kgo.RecordHeader{Key: HeaderCorrelationID, Value: []byte(correlation)})
	if causation != "" {
		headers = append(headers, kgo.RecordHeader{Key: HeaderCausationID, Value: []byte(causation)})
	}
	rec := &kgo.Record{Topic: b.topic, Key: keyBytes, Value: value, Headers: headers}
	if size := recordSize(rec); b.maxBytes > 0 && size > b.maxBytes {
		return nil, fmt.Errorf("%w: %v %s is %d bytes, %s accepts %d (the smaller of kgo.ProducerBatchMaxBytes and the topic's max.message.bytes)",
			ErrTooLarge, b.desc.goType, idText, size, b.topic, b.maxBytes)
	}
	return rec, nil
}

// lookup returns ev as a *T and its binding.
func (p *Publisher) lookup(ev any) (any, *binding, error) {
	if ev == nil {
		return nil, nil, fmt.Errorf("%w: nil event", ErrUnknownType)
	}
	t := reflect.TypeOf(ev)
	if t.Kind() == reflect.Pointer {
		if reflect.ValueOf(ev).IsNil() {
			return nil, nil, fmt.Errorf("bus: nil %v event", t)
		}
		if b, ok := p.types[t.Elem()]; ok {
			return ev, b, nil
		}
	} else if b, ok := p.types[t]; ok {
		ptr := reflect.New(t)
		ptr.Elem().Set(reflect.ValueOf(ev))
		return ptr.Interface(), b, nil
	}
	return nil, nil, fmt.Errorf("%w: %v: pass it to NewPublisher with bus.Types", ErrUnknownType, t)
}

// recordSize is the record's size in a batch, near enough to compare with
// the producer's limit: key, value and headers plus framing.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + 21
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}
