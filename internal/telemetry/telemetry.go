package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/evbus/evbus/wire"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/semconv/v1.40.0/messagingconv"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of evbus's tracer and meter.
const ScopeName = "github.com/evbus/evbus"

// T records evbus's spans and metrics and carries trace context through
// record headers: the hooks evbus's packages call. tracing.Telemetry is
// defined on T, without its methods; a package given one converts it once,
// in its Telemetry option (see Choice). It is safe for concurrent use.
type T struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	// onInitialTracer and onInitialPropagator tell that the T
	// took the global tracer provider and propagator before any was
	// installed (initialTracerProvider, initialPropagator). While they are
	// still the global ones, spans are skipped rather than started as
	// no-ops (which allocate), and headers are neither written nor read
	// (the propagator would do nothing with them).
	onInitialTracer, onInitialPropagator bool
	linkConsume                          bool
	linkRelay                            bool

	// starts holds the name and start options of each kind of span per
	// topic (and group and partition), sets the options of measurements:
	// built once, per record they would cost allocations.
	starts cache[setKey, *spanStart]
	sets   cache[setKey, *measure]

	// The counters are observable: each record adds to the atomic
	// counters of its attribute set (measure), and collection reports
	// them. A synchronous counter costs an attribute-set walk and a map
	// lookup in the SDK per record.
	sent        metric.Int64ObservableCounter
	sentBytes   metric.Int64ObservableCounter
	sendTime    messagingconv.ClientOperationDuration
	processTime messagingconv.ProcessDuration
	handled     metric.Int64ObservableCounter

	meter         metric.Meter
	outboxDelay   metric.Float64Histogram
	outboxBacklog metric.Int64ObservableGauge
	outboxAge     metric.Float64ObservableGauge
	outboxStuck   metric.Int64ObservableGauge

	registryLookups metric.Int64ObservableCounter
	consumerLag     metric.Int64ObservableGauge
}

// Config is what tracing's options set; a zero field takes the global
// provider or propagator, or false.
type Config struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagator     propagation.TextMapPropagator
	LinkConsumers  bool
	LinkRelay      bool
}

// New returns a T on c's providers: what tracing.New builds.
func New(c Config) (*T, error) {
	var initialTP, initialProp bool
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
		initialTP = c.TracerProvider == initialTracerProvider
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	if c.Propagator == nil {
		c.Propagator = otel.GetTextMapPropagator()
		initialProp = c.Propagator == initialPropagator
	}
	m := c.MeterProvider.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	t := &T{
		tracer:              c.TracerProvider.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		propagator:          c.Propagator,
		onInitialTracer:     initialTP,
		onInitialPropagator: initialProp,
		linkConsume:         c.LinkConsumers,
		linkRelay:           c.LinkRelay,
		meter:               m,
	}
	var err error
	var sent messagingconv.ClientSentMessages
	if t.sent, err = m.Int64ObservableCounter(sent.Name(), metric.WithUnit(sent.Unit()), metric.WithDescription(sent.Description())); err != nil {
		return nil, err
	}
	if t.sendTime, err = messagingconv.NewClientOperationDuration(m); err != nil {
		return nil, err
	}
	if t.processTime, err = messagingconv.NewProcessDuration(m); err != nil {
		return nil, err
	}
	if t.sentBytes, err = m.Int64ObservableCounter("evbus.publish.bytes", metric.WithUnit("By"),
		metric.WithDescription("Bytes of the records published (key, value and headers).")); err != nil {
		return nil, err
	}
	if t.outboxDelay, err = m.Float64Histogram("evbus.outbox.delay", metric.WithUnit("s"),
		metric.WithDescription("Time from an outbox row's enqueue to Kafka's acknowledgement of its record.")); err != nil {
		return nil, err
	}
	if t.outboxBacklog, err = m.Int64ObservableGauge("evbus.outbox.backlog", metric.WithUnit("{row}"),
		metric.WithDescription("Committed outbox rows not yet published.")); err != nil {
		return nil, err
	}
	if t.outboxAge, err = m.Float64ObservableGauge("evbus.outbox.oldest_age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest committed outbox row not yet published.")); err != nil {
		return nil, err
	}
	if t.outboxStuck, err = m.Int64ObservableGauge("evbus.outbox.stuck", metric.WithUnit("{row}"),
		metric.WithDescription("Outbox rows the relay cannot publish (larger than Kafka or its client takes); each holds back the later rows of its key.")); err != nil {
		return nil, err
	}
	if t.registryLookups, err = m.Int64ObservableCounter("evbus.registry.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Schema lookups of a registry client, answered from its cache (evbus.cache=hit) or by the registry (miss).")); err != nil {
		return nil, err
	}
	if t.consumerLag, err = m.Int64ObservableGauge("evbus.consumer.lag", metric.WithUnit("{message}"),
		metric.WithDescription("Records of a partition past the group's commit point: fetched high watermark minus the offset to commit.")); err != nil {
		return nil, err
	}
	if t.handled, err = m.Int64ObservableCounter("evbus.consumer.events", metric.WithUnit("{event}"),
		metric.WithDescription("Records settled by a consumer group, by outcome (evbus.outcome).")); err != nil {
		return nil, err
	}
	if _, err = m.RegisterCallback(t.observeCounts, t.sent, t.sentBytes, t.handled); err != nil {
		return nil, err
	}
	return t, nil
}

// observeCounts reports the counters of every attribute set.
func (t *T) observeCounts(_ context.Context, o metric.Observer) error {
	for k, m := range t.sets.all() {
		if n := m.count.Load(); n > 0 {
			if k.op == opProcess {
				o.ObserveInt64(t.handled, n, m.observe...)
			} else {
				o.ObserveInt64(t.sent, n, m.observe...)
			}
		}
		if n := m.bytes.Load(); n > 0 {
			o.ObserveInt64(t.sentBytes, n, m.observe...)
		}
	}
	return nil
}

// The global tracer provider and propagator before the service installs
// any: they delegate to what it installs, and are no longer the global
// ones once it has. A T made after an SDK was installed is not
// idle.
var initialTracerProvider, initialPropagator = delegating(otel.GetTracerProvider(), otel.GetTextMapPropagator())

// delegating returns tp and p if they are otel's own delegating globals,
// and nil for each that is not. A service may install its SDK in an init
// function that runs before this package's: what this package finds then
// is the SDK, which must never count as "nothing installed". Should otel
// rename its types, T only loses the shortcut for idle globals.
func delegating(tp trace.TracerProvider, p propagation.TextMapPropagator) (trace.TracerProvider, propagation.TextMapPropagator) {
	if fmt.Sprintf("%T", tp) != "*global.tracerProvider" {
		tp = nil
	}
	if fmt.Sprintf("%T", p) != "*global.textMapPropagator" {
		p = nil
	}
	return tp, p
}

// Default returns the T on the global providers and propagator (what
// tracing.Default returns). They delegate to whatever the service installs
// later, so Default works whenever it is called.
func Default() *T { return defaultTelemetry }

var defaultTelemetry = func() *T {
	t, err := New(Config{})
	if err != nil {
		panic(err) // the global no-op and delegating meters do not fail
	}
	return t
}()

// Inject writes the trace context of ctx into rec's headers, replacing
// what they held: what Enqueue does with the caller's span, so the row
// carries it to the relay.
func (t *T) Inject(ctx context.Context, rec *kgo.Record) {
	if !t.idlePropagator() {
		t.propagator.Inject(ctx, kotel.NewRecordCarrier(rec))
	}
}

// Extract returns ctx with the trace context (and baggage) of rec's
// headers.
func (t *T) Extract(ctx context.Context, rec *kgo.Record) context.Context {
	if t.idlePropagator() {
		return ctx
	}
	return t.propagator.Extract(ctx, kotel.NewRecordCarrier(rec))
}

// Publish starts the "publish <topic>" span of rec, a child of the span
// in ctx, and writes its context into rec's headers. The caller ends it
// with Published once Kafka answered.
func (t *T) Publish(ctx context.Context, rec *kgo.Record) (context.Context, trace.Span) {
	return t.produce(ctx, setKey{op: opPublish, topic: rec.Topic}, rec)
}

// Create records a "create <topic>" span (PRODUCER), a child of the span
// in ctx, for an event written to the outbox, and writes its context into
// rec's headers: the relay's publish span, later, continues from it.
func (t *T) Create(ctx context.Context, rec *kgo.Record) {
	_, span := t.produce(ctx, setKey{op: opEnqueue, topic: rec.Topic}, rec)
	span.End()
}

// Relay starts the publish span of an outbox row's record: a child of
// the span that enqueued it (its headers' context), or with LinkRelay a
// new root linked to it. ctx is the relay's own context.
func (t *T) Relay(ctx context.Context, rec *kgo.Record) (context.Context, trace.Span) {
	origin := trace.SpanContextFromContext(t.Extract(context.Background(), rec))
	k := setKey{op: opPublish, topic: rec.Topic}
	if !origin.IsValid() {
		return t.produce(ctx, k, rec)
	}
	if t.linkRelay {
		return t.produce(ctx, k, rec, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: origin}))
	}
	return t.produce(trace.ContextWithRemoteSpanContext(ctx, origin), k, rec)
}

// noSpan is the span of the spans not started: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// idle tells that spans would go nowhere: the global tracer provider is in
// use and no SDK has been installed.
func (t *T) idle() bool {
	return t.onInitialTracer && otel.GetTracerProvider() == initialTracerProvider
}

// idlePropagator tells that the propagator would neither write nor read
// headers: the global one is in use and none has been installed.
// Injects reports whether Inject writes headers now: whether a
// propagator other than the initial global one is in use.
func (t *T) Injects() bool { return !t.idlePropagator() }

func (t *T) idlePropagator() bool {
	return t.onInitialPropagator && otel.GetTextMapPropagator() == initialPropagator
}

// Operations, by their messaging.operation.name.
const (
	opPublish = "publish"
	opEnqueue = "enqueue"
	opProcess = "process"
)

// spanStart is how the spans of one kind start for one topic (and group).
type spanStart struct {
	name string
	opts []trace.SpanStartOption
}

// start returns the span name and start options of k's spans.
func (t *T) start(k setKey) *spanStart {
	if s, ok := t.starts.load(k); ok {
		return s
	}
	kind, typ, verb := trace.SpanKindProducer, semconv.MessagingOperationTypeSend, "publish "
	switch k.op {
	case opEnqueue:
		typ, verb = semconv.MessagingOperationTypeCreate, "create "
	case opProcess:
		kind, typ, verb = trace.SpanKindConsumer, semconv.MessagingOperationTypeProcess, "process "
	}
	attrs := append(k.common(), typ)
	if k.op == opProcess {
		attrs = append(attrs, partitionAttr(k.partition))
	}
	s := &spanStart{name: verb + k.topic, opts: []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithAttributes(attrs...)}}
	return t.starts.add(k, s)
}

// produce starts a producer span of kind k for rec, a child of the span
// in ctx unless opts say otherwise, and writes its context into rec.
func (t *T) produce(ctx context.Context, k setKey, rec *kgo.Record, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t.idle() {
		t.Inject(ctx, rec)
		return ctx, noSpan
	}
	ctx, span := t.begin(ctx, k, opts)
	if span.IsRecording() {
		span.SetAttributes(recordAttrs(make([]attribute.KeyValue, 0, 2), rec)...)
	}
	t.Inject(ctx, rec)
	return ctx, span
}

// begin starts a span of kind k.
func (t *T) begin(ctx context.Context, k setKey, opts []trace.SpanStartOption) (context.Context, trace.Span) {
	s := t.start(k)
	if len(opts) > 0 {
		opts = append(opts, s.opts...)
	} else {
		opts = s.opts
	}
	return t.tracer.Start(ctx, s.name, opts...)
}

// Published ends a publish span with where rec landed or why it did not,
// and counts it: messaging.client.sent.messages, evbus.publish.bytes and
// messaging.client.operation.duration since start.
func (t *T) Published(ctx context.Context, span trace.Span, rec *kgo.Record, start time.Time, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	} else if span.IsRecording() {
		span.SetAttributes(partitionAttr(rec.Partition), semconv.MessagingKafkaOffset(int(rec.Offset)))
	}
	span.End()
	m := t.attrs(setKey{op: opPublish, topic: rec.Topic, failed: err != nil})
	m.count.Add(1)
	if err == nil {
		m.bytes.Add(int64(recordBytes(rec)))
	}
	if t.sendTime.Enabled(ctx) {
		t.sendTime.Float64Histogram.Record(ctx, time.Since(start).Seconds(), m.record...)
	}
}

// setKey names the attributes of a span start or a measurement.
type setKey struct {
	op, topic, group, outcome string
	partition                 int32
	failed                    bool
}

// common returns the attributes of k that its spans and its measurements
// share.
func (k setKey) common() []attribute.KeyValue {
	kv := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationName(k.op),
		semconv.MessagingDestinationName(k.topic),
	}
	if k.group != "" {
		kv = append(kv, semconv.MessagingConsumerGroupName(k.group))
	}
	return kv
}

// measure holds the counters of one attribute set (records: sent, or
// settled with an outcome; bytes sent) and its options, as the slices the
// variadic calls take: a slice made per call would be an allocation per
// record.
type measure struct {
	count, bytes atomic.Int64
	record       []metric.RecordOption
	observe      []metric.ObserveOption
}

// attrs returns the measurement options of k, built once: built per
// record, they cost more than the measurement.
func (t *T) attrs(k setKey) *measure {
	if m, ok := t.sets.load(k); ok {
		return m
	}
	kv := k.common()
	if k.outcome != "" {
		kv = append(kv, OutcomeKey.String(k.outcome))
	}
	if k.failed {
		kv = append(kv, semconv.ErrorTypeOther)
	}
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return t.sets.add(k, &measure{record: []metric.RecordOption{o}, observe: []metric.ObserveOption{o}})
}

// recordAttrs appends the span attributes a record carries, its key and
// ce_id, to attrs. The two strings share one allocation.
func recordAttrs(attrs []attribute.KeyValue, rec *kgo.Record) []attribute.KeyValue {
	key := rec.Key != nil && utf8.Valid(rec.Key)
	id, hasID := []byte(nil), false
	for _, h := range rec.Headers {
		if h.Key == wire.HeaderID {
			id, hasID = h.Value, true
			break
		}
	}
	var b strings.Builder
	if key {
		b.Grow(len(rec.Key) + len(id))
		b.Write(rec.Key)
	}
	b.Write(id)
	both := b.String()
	if key {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(both[:len(rec.Key)]))
	}
	if hasID {
		attrs = append(attrs, semconv.MessagingMessageID(both[len(both)-len(id):]))
	}
	return attrs
}

// partitionAttrs are the messaging.destination.partition.id attributes of
// the first partitions, so that most records need no strconv.
var partitionAttrs = func() (a [256]attribute.KeyValue) {
	for i := range a {
		a[i] = semconv.MessagingDestinationPartitionID(strconv.Itoa(i))
	}
	return a
}()

func partitionAttr(p int32) attribute.KeyValue {
	if p >= 0 && int(p) < len(partitionAttrs) {
		return partitionAttrs[p]
	}
	return semconv.MessagingDestinationPartitionID(strconv.Itoa(int(p)))
}

func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Process starts the "process <topic>" span of a record a consumer group
// handles: a child of the producer's span (the record's headers), or with
// LinkConsumers a new root linked to it. ctx is the consumer's own. The
// span carries the record's attributes (ce_id among them); the caller
// ends it with Settled.
//
// A replay (a record sent back from a dead-letter topic, replay true)
// always starts a new trace linked to the record's: the original trace
// ended with the dead letter, maybe days ago.
func (t *T) Process(ctx context.Context, rec *kgo.Record, group string, replay bool) (context.Context, trace.Span) {
	// The record's baggage goes to the handler either way.
	ctx = t.Extract(ctx, rec)
	if t.idle() {
		return ctx, noSpan
	}
	var opts []trace.SpanStartOption
	if producer := trace.SpanContextFromContext(ctx); producer.IsValid() && (t.linkConsume || replay) {
		opts = []trace.SpanStartOption{trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: producer})}
	}
	ctx, span := t.begin(ctx, setKey{op: opProcess, topic: rec.Topic, group: group, partition: rec.Partition}, opts)
	if span.IsRecording() {
		span.SetAttributes(append(recordAttrs(make([]attribute.KeyValue, 0, 3), rec),
			semconv.MessagingKafkaOffset(int(rec.Offset)))...)
	}
	return ctx, span
}

// Retrying records on a process span that the handler's run attempt
// failed and will run again.
func (t *T) Retrying(span trace.Span, attempt int, err error) {
	if span.IsRecording() {
		span.AddEvent("retry", trace.WithAttributes(
			attribute.Int("evbus.attempt", attempt),
			attribute.String("exception.message", err.Error()),
		))
	}
}

// Outcomes of a settled record (the evbus.outcome attribute).
const (
	OutcomeOK           = "ok"
	OutcomeRetried      = "retried" // one handler run that failed and runs again
	OutcomeRetryTopic   = "retry-topic"
	OutcomeDeadLettered = "dead-lettered"
	OutcomeDuplicate    = "duplicate"
	OutcomeSkipped      = "skipped"
)

// OutcomeKey is the attribute of evbus.consumer.events that says how a
// record was settled.
const OutcomeKey = attribute.Key("evbus.outcome")

// outcomeAttrs are the outcome attributes of spans, made once.
var outcomeAttrs = func() map[string][]attribute.KeyValue {
	m := map[string][]attribute.KeyValue{}
	for _, o := range []string{OutcomeOK, OutcomeRetried, OutcomeRetryTopic, OutcomeDeadLettered, OutcomeDuplicate, OutcomeSkipped} {
		m[o] = []attribute.KeyValue{OutcomeKey.String(o)}
	}
	return m
}()

func outcomeAttr(outcome string) []attribute.KeyValue {
	if a, ok := outcomeAttrs[outcome]; ok {
		return a
	}
	return []attribute.KeyValue{OutcomeKey.String(outcome)}
}

// Outcomes counts the records of one topic and consumer group by how they
// were settled, in evbus.consumer.events. Get one per topic and group
// with T.Outcomes and keep it: a count is then an atomic add, with
// no lookup per record.
type Outcomes struct {
	t            *T
	topic, group string
	ok           *measure // the outcome of nearly every record
	ran, failed  *measure // handler runs, for messaging.process.duration
}

// Outcomes returns the counters of topic and group.
func (t *T) Outcomes(topic, group string) *Outcomes {
	k := setKey{op: opProcess, topic: topic, group: group}
	o := &Outcomes{t: t, topic: topic, group: group, ran: t.attrs(k)}
	k.failed = true
	o.failed = t.attrs(k)
	k.failed, k.outcome = false, OutcomeOK
	o.ok = t.attrs(k)
	return o
}

func (o *Outcomes) count(outcome string) {
	m := o.ok
	if outcome != OutcomeOK {
		m = o.t.attrs(setKey{op: opProcess, topic: o.topic, group: o.group, outcome: outcome})
	}
	m.count.Add(1)
}

// Settled ends a process span with the record's outcome (one of the
// Outcome constants; err for those that failed) and counts it in o.
func (t *T) Settled(ctx context.Context, span trace.Span, o *Outcomes, outcome string, err error) {
	if span.IsRecording() {
		span.SetAttributes(outcomeAttr(outcome)...)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
	o.count(outcome)
}

// Retried counts, in o, a handler run that failed and runs again.
func (t *T) Retried(ctx context.Context, o *Outcomes) { o.count(OutcomeRetried) }

// Timed tells whether Handled records anything, so a caller reads the
// clock (and calls Handled) only when it does.
func (t *T) Timed(ctx context.Context) bool { return t.processTime.Enabled(ctx) }

// Handled records one handler run of o's topic and group, from start, in
// messaging.process.duration.
func (t *T) Handled(ctx context.Context, o *Outcomes, start time.Time, err error) {
	m := o.ran
	if err != nil {
		m = o.failed
	}
	t.processTime.Float64Histogram.Record(ctx, time.Since(start).Seconds(), m.record...)
}

// Delayed records, in evbus.outbox.delay, how long an outbox row waited
// between its enqueue (created) and Kafka's acknowledgement.
func (t *T) Delayed(ctx context.Context, topic string, created time.Time) {
	if !t.outboxDelay.Enabled(ctx) {
		return
	}
	t.outboxDelay.Record(ctx, time.Since(created).Seconds(), t.attrs(setKey{op: opPublish, topic: topic}).record...)
}

// ObserveOutbox reports an outbox's backlog (evbus.outbox.backlog), the
// age of its oldest unpublished row (evbus.outbox.oldest_age) and the
// rows its relays cannot publish (evbus.outbox.stuck) whenever metrics
// are collected, by calling status. The returned function stops it.
func (t *T) ObserveOutbox(table string, status func(ctx context.Context) (backlog int64, oldest time.Duration, stuck int64, err error)) (stop func(), err error) {
	attrs := metric.WithAttributes(attribute.String("evbus.outbox.table", table))
	return stopper(t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, age, stuck, err := status(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(t.outboxBacklog, n, attrs)
		o.ObserveFloat64(t.outboxAge, age.Seconds(), attrs)
		o.ObserveInt64(t.outboxStuck, stuck, attrs)
		return nil
	}, t.outboxBacklog, t.outboxAge, t.outboxStuck))
}

// CacheKey is the attribute of evbus.registry.lookups: "hit" for a lookup
// answered from the client's cache, "miss" for one that asked the
// registry.
const CacheKey = attribute.Key("evbus.cache")

// ObserveRegistry reports a registry client's lookups
// (evbus.registry.lookups, by CacheKey) whenever metrics are collected, by
// calling stats; stats returns ok false once the client is gone, and
// nothing is reported for it then. The returned function stops it.
func (t *T) ObserveRegistry(stats func() (hits, misses uint64, ok bool)) (stop func(), err error) {
	hit, miss := metric.WithAttributes(CacheKey.String("hit")), metric.WithAttributes(CacheKey.String("miss"))
	return stopper(t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		h, m, ok := stats()
		if ok {
			o.ObserveInt64(t.registryLookups, int64(h), hit)
			o.ObserveInt64(t.registryLookups, int64(m), miss)
		}
		return nil
	}, t.registryLookups))
}

// Lag is one partition's consumer lag: records in it past the group's
// commit point.
type Lag struct {
	Topic     string
	Partition int32
	Records   int64
}

// ObserveLag reports a consumer group's lag per partition (evbus.consumer.lag)
// whenever metrics are collected, by calling lags. The returned function
// stops it.
func (t *T) ObserveLag(group string, lags func() []Lag) (stop func(), err error) {
	return stopper(t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for _, l := range lags() {
			o.ObserveInt64(t.consumerLag, l.Records, metric.WithAttributes(
				semconv.MessagingConsumerGroupName(group),
				semconv.MessagingDestinationName(l.Topic),
				partitionAttr(l.Partition),
			))
		}
		return nil
	}, t.consumerLag))
}

// stopper returns the function that unregisters reg, a callback the
// Observe methods registered.
func stopper(reg metric.Registration, err error) (stop func(), _ error) {
	if err != nil {
		return nil, err
	}
	return func() { _ = reg.Unregister() }, nil
}
