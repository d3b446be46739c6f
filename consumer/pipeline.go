package consumer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// The pipeline settles one record in steps, each of which either passes
// the record on or settles it:
//
//	open      headers -> bus.Meta; a CloudEvent missing a required
//	          attribute is poison
//	route     the handler registered for (topic, ce_type); without ce_type,
//	          for the writer schema's full name; none: skip or dead-letter
//	decode    Avro -> *T; poison is dead-lettered at once, an unavailable
//	          registry is waited out on the same record
//	invoke    the handler, retried with back-off; then the next retry
//	          topic or the dead-letter topic
//
// Writing to a retry or dead-letter topic is retried until it succeeds:
// the record is settled (and its offset committable) only then.
//
// Errors are sorted by kind: permanentError (the handler says retrying is
// pointless), poisonError (the record itself is bad), transientError (not
// the record's fault: wait and try the same record again, never
// dead-letter). HandleTx handlers run in a transaction of the service's
// database (invokeTx, or processBatch for several records at once); judge
// decides whether a failure there is the database's (a transient error)
// or the record's.

// outcome says how a step left the record.
type outcome int

const (
	proceed outcome = iota // go on to the next step
	settled                // handled, skipped, or written to a retry or dead-letter topic
	stopped                // the partition stopped first: not settled, not committed
)

// envelope is a record on its way through the pipeline.
type envelope struct {
	rec *kgo.Record
	// lane is the record's lane, nil for a record of a batch: its
	// handler calls may keep a concurrency slot for the lane's next
	// record (Consumer.call).
	lane *lane
	// ctx is the record's: the partition's, with the record's process
	// span when one is recorded (span).
	ctx          context.Context
	span         trace.Span
	meta         bus.Meta
	ceType       []byte // nil when the record has no ce_type
	schemaHeader []byte // __value_schema_id, when present
	origin       wire.Origin
	prior        int       // handler runs in earlier stages (retry topics)
	due          time.Time // retry topics: when the handler may run again
}

// handling is what a handler call gets besides the value: the event's
// metadata and its context. It is allocated with the value.
type handling struct {
	meta bus.Meta
	ctx  handlerContext
}

// handlerContext is a handler's context: the event's metadata (what
// bus.WithMeta would add, without a context.WithValue per call) and the
// attempt number (Attempt).
type handlerContext struct {
	context.Context
	meta    *bus.Meta
	attempt int
}

func (c *handlerContext) Value(key any) any {
	switch key {
	case bus.MetaKey:
		return c.meta
	case attemptKey{}:
		return c.attempt
	}
	return c.Context.Value(key)
}

// process settles rec, a record of lane l. It returns false when the
// partition stopped first.
func (c *Consumer) process(p *partition, l *lane, rec *kgo.Record) bool {
	env := &envelope{rec: rec, lane: l}
	return c.processOpened(p, env, c.open(p, env))
}

// processOpened settles a record that open has read into env; err is
// open's. It returns false when the partition stopped first.
func (c *Consumer) processOpened(p *partition, env *envelope, err error) bool {
	c.trace(p, env)
	if err != nil {
		return c.deadLetter(p, env, wire.KindPoison, env.prior, err) == settled
	}
	if !env.due.IsZero() {
		p.drop(env.lane)
		if !c.waitDue(p, env.due) {
			return false
		}
	}
	b, out := c.route(p, env)
	if out != proceed {
		return out == settled
	}
	h, v, out := c.decode(p, env, b)
	if out != proceed {
		return out == settled
	}
	return c.invoke(p, env, b, h, v, nil) == settled
}

// trace starts the record's process span.
func (c *Consumer) trace(p *partition, env *envelope) {
	env.ctx, env.span = c.cfg.tel.Process(p.ctx, env.rec, c.group, p.replay())
}

// settle reports how a record was settled: to the span, the metrics and
// the Observe function, which gets o with the record's Meta.
func (c *Consumer) settle(p *partition, env *envelope, o Outcome) {
	var outcome string
	switch o.Result {
	case Handled:
		outcome = tracing.OutcomeOK
	case Duplicate:
		outcome = tracing.OutcomeDuplicate
	case Skipped:
		outcome = tracing.OutcomeSkipped
	case SentToRetry:
		outcome = tracing.OutcomeRetryTopic
	case DeadLettered:
		outcome = tracing.OutcomeDeadLettered
	}
	if env.span != nil {
		c.cfg.tel.Settled(env.ctx, env.span, p.outcomes, outcome, o.Err)
	}
	if c.cfg.observe != nil {
		o.Group, o.Meta = c.group, env.meta
		c.cfg.observe(o)
	}
}

// waitDue waits until a retry record is due; false when the partition
// stopped first. Other partitions go on; fetching this one is paused
// during a long wait.
func (c *Consumer) waitDue(p *partition, due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	if d >= holdFetchAfter {
		defer p.holdFetch()()
	}
	return p.sleep(d)
}

// holdFetchAfter: shorter waits for a retry record do not pause fetching
// its partition (pausing drops what was fetched, to be fetched again).
const holdFetchAfter = 500 * time.Millisecond

// open reads the record's headers into env.
//
// A record with ce_specversion claims to be a CloudEvent and must carry
// ce_id, ce_source and ce_type (the CloudEvents required attributes), and
// ce_time, when present, must be RFC 3339. A record with ce_id headers of
// different values is poison, whatever the mode: taking one of them would
// let two deliveries, or two groups, take different ids; several of the
// same value count as one. A record without ce_specversion
// is taken as a plain Confluent Avro record from a foreign producer: it is
// routed by ce_type when present, else by its writer schema's full name;
// its id is "kafka:<topic>/<partition>/<offset>" when it has no ce_id, and
// its time the record's timestamp when it has no ce_time.
func (c *Consumer) open(p *partition, env *envelope) error {
	rec := env.rec
	m := &env.meta
	m.Key, m.Headers = rec.Key, rec.Headers
	env.origin = wire.Origin{Topic: p.home.topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
	m.Topic, m.Partition, m.Offset = env.origin.Topic, env.origin.Partition, env.origin.Offset
	var (
		spec, hasTime bool
		timeText      string
		retryBad      []string
		ids           int  // ce_id headers
		idsDiffer     bool // two of them with different values
	)
	for i := range rec.Headers {
		h := &rec.Headers[i]
		if !wire.IsCloudEventsHeader(h.Key) && h.Key != codec.ValueSchemaIDHeader {
			if p.home.n > 0 && wire.IsRetryHeader(h.Key) && !env.retryHeader(h) ||
				p.replay() && wire.IsOriginHeader(h.Key) && !env.setOrigin(h.Key, string(h.Value)) {
				retryBad = append(retryBad, h.Key)
			}
			continue
		}
		switch h.Key {
		case wire.HeaderSpecVersion:
			spec = true
		case wire.HeaderID:
			idsDiffer = idsDiffer || ids > 0 && string(h.Value) != m.ID
			ids++
			m.ID = text(h.Value)
		case wire.HeaderType:
			env.ceType = h.Value
			if env.ceType == nil {
				env.ceType = []byte{}
			}
		case wire.HeaderSource:
			m.Source = text(h.Value)
		case wire.HeaderSubject:
			m.Subject = text(h.Value)
		case wire.HeaderTime:
			timeText, hasTime = text(h.Value), true
		case wire.HeaderCorrelationID:
			m.CorrelationID = text(h.Value)
		case wire.HeaderCausationID:
			m.CausationID = text(h.Value)
		case codec.ValueSchemaIDHeader:
			env.schemaHeader = h.Value
		}
	}

	if m.ID == "" && !spec {
		m.ID = "kafka:" + env.origin.Topic + "/" + itoa(int64(env.origin.Partition)) + "/" + itoa(env.origin.Offset)
	}
	if len(retryBad) > 0 {
		return poison("retry or replay headers that do not parse: %s", strings.Join(retryBad, ", "))
	}
	if idsDiffer {
		m.Type = string(env.ceType)
		return poison("%d %s headers with different values: which one names the event is a guess; a record carries one", ids, wire.HeaderID)
	}
	if limit := c.cfg.maxValueBytes; limit > 0 && len(rec.Value) > limit {
		m.Type = string(env.ceType)
		return poison("the value is %d bytes, more than the %d this consumer decodes (consumer.MaxValueBytes)", len(rec.Value), limit)
	}
	if spec {
		var missing []string
		if m.ID == "" {
			missing = append(missing, wire.HeaderID)
		}
		if m.Source == "" {
			missing = append(missing, wire.HeaderSource)
		}
		if len(env.ceType) == 0 {
			missing = append(missing, wire.HeaderType)
		}
		if len(missing) > 0 {
			m.Type = string(env.ceType)
			return poison("a CloudEvent (it has %s) without the required %s", wire.HeaderSpecVersion, strings.Join(missing, ", "))
		}
	}
	if hasTime {
		t, err := parseTime(timeText)
		if err != nil {
			m.Type = string(env.ceType)
			return poison("%s %q is not RFC 3339", wire.HeaderTime, timeText)
		}
		m.Time = t
	} else {
		m.Time = rec.Timestamp
	}
	return nil
}

// text returns b as a string without copying it. b is a header value of
// a fetched record: nothing writes to those bytes once franz-go has
// returned the record (evbus never recycles records into franz-go's
// pools), and Meta.Key and Meta.Headers share the same memory anyway.
// Saving the copy saves an allocation per record.
func text(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseTime parses an RFC 3339 time. The form publishers write,
// 2006-01-02T15:04:05[.fraction]Z, takes a fast path.
func parseTime(s string) (time.Time, error) {
	n := len(s)
	if n < 20 || n > 30 || s[n-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Parse(time.RFC3339Nano, s)
	}
	num := func(i, j int) int {
		v := 0
		for ; i < j; i++ {
			d := s[i] - '0'
			if d > 9 {
				return -1
			}
			v = v*10 + int(d)
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	nsec := 0
	if n > 20 {
		if s[19] != '.' || n == 21 {
			return time.Parse(time.RFC3339Nano, s)
		}
		frac := n - 1 - 20
		if nsec = num(20, n-1); nsec < 0 {
			return time.Parse(time.RFC3339Nano, s)
		}
		for ; frac < 9; frac++ {
			nsec *= 10
		}
	} else if s[19] != 'Z' {
		return time.Parse(time.RFC3339Nano, s)
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Parse(time.RFC3339Nano, s) // out of range: let it say why
	}
	// time.Unix rather than time.Date: the date is valid, so the
	// arithmetic below is all there is to do (time.Date normalizes).
	secs := unixDays(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
	return time.Unix(secs, int64(nsec)).UTC(), nil
}

// daysIn returns the number of days of month in year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// unixDays returns the days from 1970-01-01 to a date of the proleptic
// Gregorian calendar (years from 0), counting from March so that the
// leap day comes last in its year.
func unixDays(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := (year+400)/400 - 1 // year >= -1
	yoe := year - era*400
	doy := (153*((month+9)%12)+2)/5 + day - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// retryHeader reads one of the retry headers; false when it does not parse.
func (env *envelope) retryHeader(h *kgo.RecordHeader) bool {
	v := string(h.Value)
	switch h.Key {
	case wire.HeaderRetryAttempts:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return false
		}
		env.prior = n
	case wire.HeaderRetryDue:
		t, err := parseTime(v)
		if err != nil {
			return false
		}
		env.due = t
	case wire.HeaderRetryOriginalPartition, wire.HeaderRetryOriginalOffset, wire.HeaderRetryOriginalTimestamp:
		return env.setOrigin(h.Key, v)
	}
	return true
}

// setOrigin sets the part of env's origin a retry-original-* or
// dlt-original-* header names; false when v does not parse.
func (env *envelope) setOrigin(key, v string) bool {
	switch key {
	case wire.HeaderRetryOriginalPartition, wire.HeaderDLTOriginalPartition:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return false
		}
		env.origin.Partition = int32(n)
	case wire.HeaderRetryOriginalOffset, wire.HeaderDLTOriginalOffset:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		env.origin.Offset = n
	case wire.HeaderRetryOriginalTimestamp, wire.HeaderDLTOriginalTimestamp:
		t, err := parseTime(v)
		if err != nil {
			return false
		}
		env.origin.Timestamp = t
	}
	return true
}

// route finds the record's handler.
func (c *Consumer) route(p *partition, env *envelope) (*binding, outcome) {
	byType := p.handlers
	if env.ceType == nil {
		for n := 1; ; n++ {
			name, err := c.writerName(p.ctx, env)
			if err == nil {
				env.meta.Type = name
				break
			}
			if isPoison(err) {
				return nil, c.deadLetter(p, env, wire.KindPoison, env.prior, err)
			}
			if !c.waitTransient(p, env, n, err) {
				return nil, stopped
			}
		}
	}
	var b *binding
	if env.ceType != nil {
		b = byType[string(env.ceType)]
	} else {
		b = byType[env.meta.Type]
	}
	if b != nil {
		env.meta.Type = b.name // shared, not a copy per record
		return b, proceed
	}
	if env.ceType != nil {
		env.meta.Type = string(env.ceType)
	}
	if c.cfg.unhandled == DeadLetter {
		return nil, c.deadLetter(p, env, wire.KindPermanent, env.prior,
			fmt.Errorf("no handler for %s on topic %s in group %s", env.meta.Type, p.home.topic, c.group))
	}
	c.skip(p, env)
	return nil, settled
}

// writerName returns the full name of the record the value was written
// as: the writer schema's, or that of the union branch it carries.
func (c *Consumer) writerName(ctx context.Context, env *envelope) (string, error) {
	f, err := codec.ParseFrame(env.rec.Value, env.schemaHeader)
	if err != nil {
		return "", &poisonError{err: err}
	}
	var w *codec.Schema
	if f.HasGUID() {
		_, w, err = c.reg.SchemaByGUID(ctx, f.GUIDString())
	} else {
		w, err = c.reg.SchemaByID(ctx, f.ID)
	}
	if err != nil {
		return "", classify(err)
	}
	if w.IsUnion() {
		branches := w.Branches()
		i, n := binary.Varint(f.Body)
		if n <= 0 || i < 0 || i >= int64(len(branches)) || branches[i] == "" {
			return "", poison("%w: union branch index does not name a record of schema %d", codec.ErrUndecodable, f.ID)
		}
		return branches[i], nil
	}
	if name := w.FullName(); name != "" {
		return name, nil
	}
	return "", poison("%w: writer schema %d is not a record, and the record has no %s", codec.ErrUndecodable, f.ID, wire.HeaderType)
}

// decode decodes the record's value into a new *T, and returns it with
// the rest of what a handler call needs.
func (c *Consumer) decode(p *partition, env *envelope, b *binding) (*handling, any, outcome) {
	for n := 1; ; n++ {
		h, v, err := c.decodeOnce(p.ctx, env, b)
		if err == nil {
			return h, v, proceed
		}
		if isPoison(err) {
			return nil, nil, c.deadLetter(p, env, wire.KindPoison, env.prior, err)
		}
		if !c.waitTransient(p, env, n, err) {
			return nil, nil, stopped
		}
	}
}

// decodeOnce is one try of decode; its error is a poisonError or a
// transientError.
func (c *Consumer) decodeOnce(ctx context.Context, env *envelope, b *binding) (*handling, any, error) {
	h, v := b.newCall()
	_, f, err := c.codec.DecodeWriter(ctx, env.rec.Value, env.schemaHeader, b.desc.Schema(), v)
	if err != nil {
		return nil, nil, classify(err)
	}
	env.meta.SchemaID = f.ID
	return h, v, nil
}

// invoke runs the handler until it succeeds, gives up, or the partition
// stops. h and v are the decoded record, or nil to decode it. failed, when
// not nil, is the error of a run that already happened (in a batch).
//
// A transient error (the database of a HandleTx handler failed) is waited
// out on the same record with fetching the partition paused; it counts no
// attempt.
func (c *Consumer) invoke(p *partition, env *envelope, b *binding, h *handling, v any, failed error) outcome {
	var resume func()
	defer func() {
		if resume != nil {
			resume()
		}
	}()
	for run, waits := 1, 0; ; {
		attempt := env.prior + run
		err := failed
		if failed != nil {
			failed = nil
		} else {
			if h == nil {
				// A fresh value: the handler may have changed the last one.
				var out outcome
				if h, v, out = c.decode(p, env, b); out != proceed {
					return out
				}
			}
			err = c.call(p, env, b, h, v, attempt)
		}
		switch {
		case err == nil:
			c.handled(p, env, v, attempt)
			return settled
		case err == errDuplicate:
			c.duplicate(p, env, v)
			return settled
		case err == errStopped || p.stopped.Load():
			// The failure may be the stop's own doing (a cancelled
			// context): leave the record to the next owner.
			return stopped
		case isPoison(err): // the record's message id (RequireEventID): no handler ran
			return c.deadLetter(p, env, wire.KindPoison, env.prior, err)
		case isTransient(err):
			waits++
			if resume == nil && !isConflict(err) {
				resume = p.holdFetch()
			}
			h = nil
			if !c.waitDatabase(p, env, waits, err) {
				return stopped
			}
			continue
		case IsPermanent(err):
			return c.giveUp(p, env, b, wire.KindPermanent, attempt, err)
		case run >= b.retry.MaxAttempts:
			return c.giveUp(p, env, b, wire.KindRetriesExhausted, attempt, err)
		}
		c.stats.retried.Add(1)
		c.cfg.tel.Retrying(env.span, attempt, err)
		c.cfg.tel.Retried(env.ctx, p.outcomes)
		wait := b.retry.delay(run)
		c.log.LogAttrs(context.Background(), slog.LevelInfo, "consumer: handler failed; retrying",
			env.attrs(slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
		if !p.sleep(wait) {
			return stopped
		}
		run++
		h = nil
	}
}

// errStopped: the partition stopped before the handler could run.
var errStopped = errors.New("consumer: partition stopped")

// call runs the handler once, in a concurrency slot.
//
// A lane keeps the slot of a call that succeeded for its next record's
// call, unless someone waits for a slot: taking and releasing a slot per
// record costs two atomic adds on a counter every partition shares. The
// slot is dropped whenever the lane would wait with it (a failed call,
// before a retry's back-off, a wait for a due time, the registry or a
// retry or dead-letter write, and, in partition.run, no record ready), so
// a record waiting holds none, and the slots held still count against
// Concurrency.
func (c *Consumer) call(p *partition, env *envelope, b *binding, h *handling, v any, attempt int) error {
	l := env.lane
	if l == nil || !l.slot {
		if !p.acquire() {
			return errStopped
		}
		if l != nil {
			l.slot = true
		}
	}
	err := c.run(p, env, b, h, v, attempt, nil)
	if l == nil {
		p.release()
	} else if err != nil || c.sem.contended() {
		p.drop(l)
	}
	return err
}

// run runs the handler once with the event's metadata and attempt number
// on its context: a HandleTx handler in tx when tx is not nil, else as
// registered. A panic becomes an error.
func (c *Consumer) run(p *partition, env *envelope, b *binding, h *handling, v any, attempt int, tx any) (err error) {
	// The clock is read only for a duration histogram that records.
	var start time.Time
	timed := c.cfg.tel.Timed(env.ctx)
	if timed {
		start = time.Now()
	}
	defer func() {
		if r := recover(); r != nil {
			err = c.panicked(env, r)
		}
		if timed {
			c.cfg.tel.Handled(env.ctx, p.outcomes, start, err)
		}
	}()
	// The handler may keep its context: what it points to is its own
	// (the envelope stays on the stack).
	h.meta = env.meta
	h.ctx = handlerContext{Context: env.ctx, meta: &h.meta, attempt: attempt}
	if tx != nil {
		return b.tx.handle(&h.ctx, tx, v, &h.meta)
	}
	return b.invoke(&h.ctx, v, &h.meta)
}

// panicked logs a handler's panic, with its stack, and returns it as the
// handler's error.
func (c *Consumer) panicked(env *envelope, r any, extra ...slog.Attr) error {
	c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: handler panicked",
		env.attrs(append(extra, slog.Any("panic", r), slog.String("stack", string(debug.Stack())))...)...)
	return &panicError{value: r}
}

// giveUp sends a record its handler gave up on to the next retry topic,
// if the handler has one left and the error is worth retrying, else to the
// dead-letter topic.
func (c *Consumer) giveUp(p *partition, env *envelope, b *binding, kind wire.FailureKind, attempts int, err error) outcome {
	if kind == wire.KindRetriesExhausted && p.home.n < len(b.retryTopics) {
		next := p.home.n + 1
		due := time.Now().Add(b.retryTopics[p.home.n])
		rec := wire.RetryRecord(env.rec, env.origin, c.group, next, attempts, err, due)
		if !c.write(p, env, rec) {
			return stopped
		}
		c.stats.retryTopic.Add(1)
		c.settle(p, env, Outcome{Result: SentToRetry, Attempts: attempts, Err: err})
		c.log.LogAttrs(context.Background(), slog.LevelInfo, "consumer: handler failed; record sent to a retry topic",
			env.attrs(slog.String("retry_topic", rec.Topic), slog.Int("attempts", attempts), slog.Time("due", due), slog.String("error", err.Error()))...)
		return settled
	}
	return c.deadLetter(p, env, kind, attempts, err)
}

// deadLetter writes the record to its dead-letter topic.
func (c *Consumer) deadLetter(p *partition, env *envelope, kind wire.FailureKind, attempts int, err error) outcome {
	rec := wire.DeadLetterRecord(env.rec, env.origin, c.group, kind, attempts, err, time.Now())
	if !c.write(p, env, rec) {
		return stopped
	}
	c.stats.deadLettered[kind].Add(1)
	c.settle(p, env, Outcome{Result: DeadLettered, Kind: kind, Attempts: attempts, Err: err})
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "consumer: record dead-lettered",
		env.attrs(slog.String("dead_letter_topic", rec.Topic), slog.String("kind", string(kind)), slog.Int("attempts", attempts), slog.String("error", errText(err)))...)
	return settled
}

// writeTimeout bounds one write to a retry or dead-letter topic.
const writeTimeout = 15 * time.Second

// write produces rec, trying again with back-off until it succeeds; false
// when the partition stopped first. The record it stands for is not
// settled (so not committed) before.
func (c *Consumer) write(p *partition, env *envelope, tmpl *kgo.Record) bool {
	p.drop(env.lane)
	for n := 1; ; n++ {
		r := &kgo.Record{Topic: tmpl.Topic, Key: tmpl.Key, Value: tmpl.Value, Headers: tmpl.Headers}
		// A span of the record's trace; the record carries it on.
		spanCtx, span := c.cfg.tel.Publish(env.ctx, r)
		start := time.Now()
		ctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
		err := c.cl.ProduceSync(ctx, r).FirstErr()
		cancel()
		c.cfg.tel.Published(spanCtx, span, r, start, err)
		if err == nil {
			return true
		}
		if p.stopped.Load() {
			return false
		}
		c.stats.publishFailures.Add(1)
		wait := c.cfg.retry.delay(n)
		c.log.LogAttrs(context.Background(), slog.LevelError, "consumer: could not write the record; trying again, its offset is not committed meanwhile",
			env.attrs(slog.String("to", tmpl.Topic), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
		if !p.sleep(wait) {
			return false
		}
	}
}

// waitTransient logs a failure that is not the record's fault and waits
// before the same record is tried again; false when the partition stopped.
func (c *Consumer) waitTransient(p *partition, env *envelope, n int, err error) bool {
	p.drop(env.lane)
	if p.stopped.Load() {
		return false
	}
	c.stats.decodeWaits.Add(1)
	wait := c.cfg.retry.delay(n)
	c.log.LogAttrs(context.Background(), slog.LevelWarn, "consumer: cannot decode for now; trying the same record again",
		env.attrs(slog.Int("try", n), slog.Duration("wait", wait), slog.String("error", err.Error()))...)
	return p.sleep(wait)
}

// classify sorts a decoding error: the codec's sentinels mean the record is
// poison; anything else (the registry unavailable, a cancelled context) is
// transient.
func classify(err error) error {
	for _, target := range []error{
		codec.ErrWrongMagic, codec.ErrTruncated, codec.ErrUnknownSchema,
		codec.ErrUndecodable, codec.ErrIncompatible, codec.ErrInvalidSchema,
	} {
		if errors.Is(err, target) {
			return &poisonError{err: err}
		}
	}
	return &transientError{err: err}
}

func isPoison(err error) bool {
	var pe *poisonError
	return errors.As(err, &pe)
}

// attrs are the log attributes of the record, then extra.
func (env *envelope) attrs(extra ...slog.Attr) []slog.Attr {
	return append([]slog.Attr{
		slog.String("event_id", env.meta.ID),
		slog.String("type", env.meta.Type),
		slog.String("topic", env.rec.Topic),
		slog.Int("partition", int(env.rec.Partition)),
		slog.Int64("offset", env.rec.Offset),
	}, extra...)
}
