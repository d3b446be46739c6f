package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/internal/uuid7"
	"github.com/evbus/evbus/schema"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// Errors a caller can match with errors.Is.
var (
	// ErrUnknownType: the value's type was not in the bus.Types given to
	// NewPublisher or NewEncoder.
	ErrUnknownType = errors.New("bus: event type not registered")
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
	*Encoder
	cl  *kgo.Client
	tel *telemetry.T
}

// Encoder builds the Kafka records of events (key, framed Avro value,
// CloudEvents headers) without sending them: the Publisher sends what it
// builds, the outbox stores it in the caller's transaction. It is safe for
// concurrent use.
type Encoder struct {
	source []byte
	types  map[reflect.Type]*binding
	ids    uuid7.Generator
	// made names the call that made the encoder (NewEncoder or
	// NewPublisher), for the error about a type it was not given.
	made string
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
	// sizeHint is the largest framed value seen so far, so that one
	// allocation holds a record's value, key, id and time.
	sizeHint atomic.Int64
}

var (
	specVersion = []byte(wire.SpecVersion)
	contentType = []byte(wire.ContentType)
)

// PublisherOption configures a Publisher: an EncoderOption (Source,
// Types), Telemetry or SkipTopicCheck.
type PublisherOption interface {
	applyPublisher(*publisherConfig)
}

// EncoderOption configures an Encoder, and a Publisher, which encodes
// what it sends: Source and Types. The options that only sending needs
// (Telemetry, SkipTopicCheck) are not EncoderOptions, so NewEncoder does
// not compile with them rather than ignore them.
type EncoderOption interface {
	PublisherOption
	encoderOption()
}

type publisherOption func(*publisherConfig)

func (o publisherOption) applyPublisher(c *publisherConfig) { o(c) }

type encoderOption func(*publisherConfig)

func (o encoderOption) applyPublisher(c *publisherConfig) { o(c) }
func (encoderOption) encoderOption()                      {}

type publisherConfig struct {
	source      string
	types       []Registration
	checkTopics bool
	tel         telemetry.Choice
}

// Source names the producing service in ce_source, a URI-reference such as
// "/orders-service". Required.
func Source(s string) EncoderOption { return encoderOption(func(c *publisherConfig) { c.source = s }) }

// Types registers the event types to publish or encode. Required.
func Types(ts ...Registration) EncoderOption {
	return encoderOption(func(c *publisherConfig) { c.types = append(c.types, ts...) })
}

// Telemetry sets where the publisher's spans and metrics go. Default:
// tracing.Default(), the global OpenTelemetry providers.
func Telemetry(t *tracing.Telemetry) PublisherOption {
	return publisherOption(func(c *publisherConfig) { c.tel.Set((*telemetry.T)(t)) })
}

// SkipTopicCheck skips the start-up check that every topic exists.
// Default: checked, so a missing topic fails at start and not at the
// first publish.
func SkipTopicCheck() PublisherOption {
	return publisherOption(func(c *publisherConfig) { c.checkTopics = false })
}

// NewPublisher checks every registered type, registers (or looks up) each
// schema, checks that the topics exist and that cl is an idempotent
// producer with acks=all (franz-go's defaults), and returns a Publisher
// that produces through cl. The caller keeps cl and closes it after the
// Publisher is done.
func NewPublisher(ctx context.Context, cl *kgo.Client, reg *schema.Registry, opts ...PublisherOption) (*Publisher, error) {
	if ctx == nil {
		return nil, errors.New("bus: NewPublisher: nil context")
	}
	if cl == nil || reg == nil {
		return nil, errors.New("bus: NewPublisher needs a Kafka client and a registry")
	}
	if err := CheckProducer(cl); err != nil {
		return nil, err
	}
	cfg := publisherConfig{checkTopics: true}
	if err := cfg.apply("NewPublisher", opts); err != nil {
		return nil, err
	}
	tel, err := cfg.tel.Resolve("bus")
	if err != nil {
		return nil, err
	}
	maxBytes, _ := cl.OptValue(kgo.ProducerBatchMaxBytes).(int32)
	e, err := newEncoder(ctx, reg, &cfg, int(maxBytes), "NewPublisher")
	if err != nil {
		return nil, err
	}
	if cfg.checkTopics {
		topics := make(map[string]bool)
		for _, b := range e.types {
			topics[b.topic] = true
		}
		names := make([]string, 0, len(topics))
		for t := range topics {
			names = append(names, t)
		}
		adm := kadm.NewClient(cl)
		if err := CheckTopics(ctx, adm, names...); err != nil {
			return nil, err
		}
		if err := e.topicLimits(ctx, adm, names); err != nil {
			return nil, err
		}
	}
	return &Publisher{Encoder: e, cl: cl, tel: tel}, nil
}

// CheckProducer checks that cl produces safely: idempotent, waiting for
// all in-sync replicas (franz-go's defaults), so that retries neither lose
// nor duplicate nor reorder records.
func CheckProducer(cl *kgo.Client) error {
	if cl == nil {
		return errors.New("bus: CheckProducer: nil Kafka client")
	}
	if acks := cl.OptValue(kgo.RequiredAcks); acks != kgo.AllISRAcks() {
		return errors.New("bus: the Kafka client must wait for all in-sync replicas: leave kgo.RequiredAcks at its default")
	}
	if off, _ := cl.OptValue(kgo.DisableIdempotentWrite).(bool); off {
		return errors.New("bus: the Kafka client must be idempotent: remove kgo.DisableIdempotentWrite")
	}
	return nil
}

// NewEncoder checks every registered type, registers (or looks up) each
// schema, and returns an Encoder for them. Records are limited to
// franz-go's default batch size, 1,000,012 bytes.
func NewEncoder(ctx context.Context, reg *schema.Registry, opts ...EncoderOption) (*Encoder, error) {
	if ctx == nil {
		return nil, errors.New("bus: NewEncoder: nil context")
	}
	if reg == nil {
		return nil, errors.New("bus: NewEncoder needs a registry")
	}
	// Each EncoderOption is a PublisherOption; a nil one stays nil.
	popts := make([]PublisherOption, len(opts))
	for i, o := range opts {
		if o != nil {
			popts[i] = o
		}
	}
	var cfg publisherConfig
	if err := cfg.apply("NewEncoder", popts); err != nil {
		return nil, err
	}
	return newEncoder(ctx, reg, &cfg, defaultMaxBytes, "NewEncoder")
}

// apply applies opts to c, and checks what a nil would break later: an
// option, and an event type given to Types.
func (c *publisherConfig) apply(fn string, opts []PublisherOption) error {
	for i, o := range opts {
		if o == nil {
			return fmt.Errorf("bus: %s: option %d is nil", fn, i+1)
		}
		o.applyPublisher(c)
	}
	for i, t := range c.types {
		if t == nil || t.Descriptor() == nil {
			return fmt.Errorf("bus: %s: Types: event type %d is nil: pass the *Type of bus.Event", fn, i+1)
		}
	}
	return nil
}

// defaultMaxBytes is kgo.ProducerBatchMaxBytes's default.
const defaultMaxBytes = 1_000_012

func newEncoder(ctx context.Context, reg *schema.Registry, cfg *publisherConfig, maxBytes int, made string) (*Encoder, error) {
	if u, err := url.Parse(cfg.source); cfg.source == "" || err != nil {
		return nil, fmt.Errorf("bus: Source(%q): want a URI-reference naming the service, such as /orders-service", cfg.source)
	} else if u.User != nil {
		return nil, fmt.Errorf("bus: Source must not carry credentials")
	}
	if len(cfg.types) == 0 {
		return nil, errors.New("bus: no event types: pass them with bus.Types(...)")
	}
	e := &Encoder{
		source: []byte(cfg.source),
		types:  make(map[reflect.Type]*binding, len(cfg.types)),
		made:   made,
	}
	c, err := codec.New(reg)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.types {
		d := t.Descriptor()
		if d.err != nil {
			return nil, d.err
		}
		if _, dup := e.types[d.goType]; dup {
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
		e.types[d.goType] = &binding{desc: d, enc: enc, ceType: []byte(d.Name()), topic: d.topic, maxBytes: maxBytes}
	}
	return e, nil
}

// topicLimits lowers each binding's size limit to its topic's
// max.message.bytes, when the broker tells it, so an oversize event fails
// before it is sent.
func (e *Encoder) topicLimits(ctx context.Context, adm *kadm.Client, topics []string) error {
	limits, err := TopicMaxBytes(ctx, adm, topics...)
	if err != nil {
		return err
	}
	for _, b := range e.types {
		if limit, ok := limits[b.topic]; ok && (b.maxBytes == 0 || limit < b.maxBytes) {
			b.maxBytes = limit
		}
	}
	return nil
}

// PublishResult is the outcome of publishing one event with PublishAsync.
type PublishResult struct {
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
	if ctx == nil {
		return errors.New("bus: Publish: nil context")
	}
	errs := make([]error, len(events))
	recs := make([]*kgo.Record, 0, len(events))
	// The results come in the order Kafka answered, not that of recs.
	type pending struct {
		event int
		span  trace.Span
	}
	sent := make(map[*kgo.Record]pending, len(events))
	failed := false
	start := time.Now()
	for i, ev := range events {
		rec, err := p.record(ctx, ev, p.traceRoom())
		if err != nil {
			errs[i], failed = err, true
			continue
		}
		var span trace.Span
		rec.Context, span = p.tel.Publish(ctx, rec)
		recs, sent[rec] = append(recs, rec), pending{i, span}
	}
	// ProduceSync, unlike Produce, stops the partitions' linger once the
	// records are buffered: a caller waiting for one event does not wait
	// kgo.ProducerLinger (10ms by default) for more to come.
	for _, r := range p.cl.ProduceSync(ctx, recs...) {
		s := sent[r.Record]
		p.tel.Published(ctx, s.span, r.Record, start, r.Err)
		if r.Err != nil {
			errs[s.event], failed = p.produceError(r.Record, r.Err), true
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
func (p *Publisher) PublishAsync(ctx context.Context, event any, done func(PublishResult)) {
	rec, err := p.record(ctx, event, p.traceRoom())
	if err != nil {
		if done != nil {
			done(PublishResult{Event: event, Err: err})
		}
		return
	}
	var span trace.Span
	rec.Context, span = p.tel.Publish(ctx, rec)
	p.cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
		// r.Timestamp is when the record was built: the send time counts
		// from there without reading the clock again.
		p.tel.Published(r.Context, span, r, r.Timestamp, err)
		if done == nil {
			return
		}
		id, _ := wire.HeaderValue(r.Headers, wire.HeaderID)
		res := PublishResult{Event: event, ID: string(id), Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
		if err != nil {
			res.Err = p.produceError(r, err)
		}
		done(res)
	})
}

// traceRoom is how many headers the trace context adds to a record:
// traceparent and tracestate when a propagator writes them, else none.
func (p *Publisher) traceRoom() int {
	if p.tel.Injects() {
		return traceHeaders
	}
	return 0
}

// Flush waits until every event published so far was acknowledged or failed.
func (p *Publisher) Flush(ctx context.Context) error {
	if ctx == nil {
		return errors.New("bus: Flush: nil context")
	}
	return p.cl.Flush(ctx)
}

func (p *Publisher) produceError(r *kgo.Record, err error) error {
	ceType, _ := wire.HeaderValue(r.Headers, wire.HeaderType)
	id, _ := wire.HeaderValue(r.Headers, wire.HeaderID)
	return fmt.Errorf("bus: publish %s %s to %s: %w", ceType, id, r.Topic, err)
}

// Record builds the Kafka record of an event (a value or pointer of a
// registered type): key, framed value and the CloudEvents headers, with
// the correlation and causation ids of ctx (WithMeta, WithCorrelationID).
// Errors: ErrUnknownType,
// ErrEmptyKey, ErrTooLarge, or an encoding error.
//
// It allocates twice: the record with its headers, and one buffer that
// holds the value, the key, the id and the time. The clock is read once,
// for ce_time, the id's timestamp and the record's timestamp (which
// franz-go would otherwise read again).
func (e *Encoder) Record(ctx context.Context, ev any) (*kgo.Record, error) {
	return e.record(ctx, ev, 0)
}

// record is Record with room for extra headers more: those the trace
// context's propagator adds to a record the Publisher sends.
func (e *Encoder) record(ctx context.Context, ev any, extra int) (*kgo.Record, error) {
	if ctx == nil {
		return nil, errors.New("bus: Record: nil context")
	}
	n := 8 + extra
	if _, causation := lineage(ctx); causation != "" {
		n++
	}
	rec := newRecord(n)
	if err := e.RecordInto(ctx, ev, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// newRecord allocates a record with room for n headers (8 to
// RecordHeaders) in one allocation. Room for just the headers a record
// gets keeps a record without tracing in a smaller size class
// (BENCHMARKS.md section 1).
func newRecord(n int) *kgo.Record {
	switch n {
	case 8:
		a := new(recordAlloc[[8]kgo.RecordHeader])
		a.rec.Headers = a.headers[:0]
		return &a.rec
	case 9:
		a := new(recordAlloc[[9]kgo.RecordHeader])
		a.rec.Headers = a.headers[:0]
		return &a.rec
	case 10:
		a := new(recordAlloc[[10]kgo.RecordHeader])
		a.rec.Headers = a.headers[:0]
		return &a.rec
	}
	a := new(recordAlloc[[RecordHeaders]kgo.RecordHeader])
	a.rec.Headers = a.headers[:0]
	return &a.rec
}

// RecordInto builds the record of ev as Record does, into rec, for a
// store that copies what it needs out of a record before it builds the
// next: the outbox, or a service's own store for a database the outbox
// does not support. The headers go into rec.Headers' capacity, so that a
// record with room for RecordHeaders headers costs only the buffer of the
// value, the key, the id and the time. The rest of rec is overwritten.
// Reusing one record pays: the outbox's Go work per event is 2.9 µs with
// it and 3.7 µs with Record (BenchmarkExecGo, BENCHMARKS.md).
func (e *Encoder) RecordInto(ctx context.Context, ev any, rec *kgo.Record) error {
	switch {
	case ctx == nil:
		return errors.New("bus: RecordInto: nil context")
	case rec == nil:
		return errors.New("bus: RecordInto: nil record")
	}
	ptr, b, err := e.lookup(ev)
	if err != nil {
		return err
	}
	key := b.desc.key(ptr)
	if key == "" {
		return fmt.Errorf("%w: %v: the key function returned \"\"", ErrEmptyKey, b.desc.goType)
	}
	buf := make([]byte, 0, int(b.sizeHint.Load())+len(key)+uuid7.Len+len(time.RFC3339Nano))
	buf, err = b.enc.AppendEncode(buf, ptr)
	if err != nil {
		return fmt.Errorf("bus: %v: %w", b.desc.goType, err)
	}
	if n := int64(len(buf)); n > b.sizeHint.Load() {
		b.sizeHint.Store(n)
	}
	value := buf[:len(buf):len(buf)]
	now := time.Now()
	buf, keyBytes := appendField(buf, key)
	buf, id, err := e.ids.Append(buf, now)
	if err != nil {
		return fmt.Errorf("bus: event id: %w", err)
	}
	_, at := appendTime(buf, now)
	correlation, causation := lineage(ctx)
	hs := rec.Headers[:0]
	if cap(hs) < 8 {
		hs = make([]kgo.RecordHeader, 0, RecordHeaders)
	}
	hs = hs[:8]
	*rec = kgo.Record{Topic: b.topic, Key: keyBytes, Value: value, Timestamp: now, Headers: hs}
	corr := id
	if correlation != "" {
		corr = []byte(correlation)
	}
	fillHeaders(hs, id, e.source, b.ceType, at, keyBytes, corr)
	if causation != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: wire.HeaderCausationID, Value: []byte(causation)})
	}
	if size := recordSize(rec); b.maxBytes > 0 && size > b.maxBytes {
		return fmt.Errorf("%w: %v %s is %d bytes, %s accepts %d (the smaller of kgo.ProducerBatchMaxBytes and the topic's max.message.bytes)",
			ErrTooLarge, b.desc.goType, id, size, b.topic, b.maxBytes)
	}
	return nil
}

// RecordHeaders is how many headers a record of Record has at most: the
// wire contract's eight, the causation id and the trace context's two.
const RecordHeaders = 8 + 1 + traceHeaders

// traceHeaders is how many headers the trace context adds: traceparent
// and tracestate.
const traceHeaders = 2

// recordAlloc is a record and room for its headers (an array H),
// allocated together.
type recordAlloc[H any] struct {
	rec     kgo.Record
	headers H
}

// appendField appends s to buf and returns it as its own full slice too.
func appendField(buf []byte, s string) ([]byte, []byte) {
	n := len(buf)
	buf = append(buf, s...)
	return buf, buf[n:len(buf):len(buf)]
}

// fillHeaders writes the contract's eight CloudEvents headers into hs, in
// their order on the wire.
func fillHeaders(hs []kgo.RecordHeader, id, source, ceType, at, subject, correlation []byte) {
	hs[0] = kgo.RecordHeader{Key: wire.HeaderSpecVersion, Value: specVersion}
	hs[1] = kgo.RecordHeader{Key: wire.HeaderID, Value: id}
	hs[2] = kgo.RecordHeader{Key: wire.HeaderSource, Value: source}
	hs[3] = kgo.RecordHeader{Key: wire.HeaderType, Value: ceType}
	hs[4] = kgo.RecordHeader{Key: wire.HeaderTime, Value: at}
	hs[5] = kgo.RecordHeader{Key: wire.HeaderContentType, Value: contentType}
	hs[6] = kgo.RecordHeader{Key: wire.HeaderSubject, Value: subject}
	hs[7] = kgo.RecordHeader{Key: wire.HeaderCorrelationID, Value: correlation}
}

// Headers returns the CloudEvents headers of the wire contract for an event
// that is encoded without a registered Go type (a tool that publishes
// values read against a schema file): id from NewID, source the service,
// ceType the Avro full name, subject the key, and at the event's time. The
// event starts its own conversation: its correlation id is its id.
func Headers(id, source, ceType, subject string, at time.Time) []kgo.RecordHeader {
	hs := make([]kgo.RecordHeader, 8)
	idb := []byte(id)
	_, atb := appendTime(nil, at)
	fillHeaders(hs, idb, []byte(source), []byte(ceType), atb, []byte(subject), idb)
	return hs
}

func appendTime(buf []byte, t time.Time) ([]byte, []byte) {
	n := len(buf)
	buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
	return buf, buf[n:len(buf):len(buf)]
}

// ids makes the ids of NewID.
var ids uuid7.Generator

// NewID returns a new event id (UUIDv7 text), as publishers make them for
// ce_id: for tools that build records without an Encoder.
func NewID() (string, error) {
	_, id, err := ids.Append(nil, time.Now())
	return string(id), err
}

// lookup returns ev as a *T and its binding.
func (e *Encoder) lookup(ev any) (any, *binding, error) {
	if ev == nil {
		return nil, nil, fmt.Errorf("%w: nil event", ErrUnknownType)
	}
	t := reflect.TypeOf(ev)
	if t.Kind() == reflect.Pointer {
		if reflect.ValueOf(ev).IsNil() {
			return nil, nil, fmt.Errorf("bus: nil %v event", t)
		}
		if b, ok := e.types[t.Elem()]; ok {
			return ev, b, nil
		}
	} else if b, ok := e.types[t]; ok {
		ptr := reflect.New(t)
		ptr.Elem().Set(reflect.ValueOf(ev))
		return ptr.Interface(), b, nil
	}
	return nil, nil, fmt.Errorf("%w: %v: add it to the bus.Types given to bus.%s", ErrUnknownType, t, e.made)
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
