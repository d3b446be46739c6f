package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/wire"
)

// Relay publishes the outbox's committed rows to Kafka, in id order per
// shard, and then marks them published (or deletes them). Run one in every
// replica of a service: per shard, one relay publishes and the others
// stand by (see docs/design/outbox.md).
//
// A Relay is not bound to the transaction type of its Outbox: it runs its
// own transactions, through the function its Outbox gave it.
type Relay struct {
	// sql, ocfg, d and db are its Outbox's statements, configuration,
	// dialect and database; tx runs a transaction on that database.
	sql  *statements
	ocfg config
	d    sqldb.Dialect
	db   sqldb.Querier
	tx   func(ctx context.Context, fn func(q sqldb.Querier) error) error

	cl     *kgo.Client
	conner sqldb.Conner
	cfg    relayConfig
	// keep and del end a batch (see mark): keep copies its rows into the
	// published rows' table ("" with DeleteOnPublish), del deletes them
	// ("" when keep did).
	keep, del string
	// work holds a token for each connection of the pool the shards may
	// work their batches on at once: Connections less the session's.
	work chan struct{}
	// seeds are the client's seed brokers, named in errors.
	seeds []string
	// batchMax is the client's kgo.ProducerBatchMaxBytesFn.
	batchMax func(topic string) int32
	limits   topicLimits
	health   health
	// logEvery is how often a lasting failure is logged again, and
	// stuckRecheck how often the stuck rows are looked at again.
	logEvery, stuckRecheck time.Duration
	// afterPublish, when set, runs after Kafka acknowledged a batch and
	// before the batch is marked (tests kill the process there).
	afterPublish func()
}

type relayConfig struct {
	name       string
	batch      int
	poll       time.Duration
	takeover   time.Duration
	ackTimeout time.Duration
	maxBackoff time.Duration
	conns      int
}

// RelayOption configures a Relay: its options are those of Outbox.Relay,
// and the Outbox's Options (Logger, Telemetry) apply to its relays too.
// An option only records its value; Outbox.Relay checks them all and
// names the one at fault.
type RelayOption func(*relayConfig)

// RelayName names the relay in Status (default host name/process id).
func RelayName(name string) RelayOption { return func(c *relayConfig) { c.name = name } }

// BatchSize is the most rows the relay reads and publishes at once
// (default 1000). Twice that is the most events a crash between Kafka's
// acknowledgement and the mark can publish twice.
func BatchSize(n int) RelayOption { return func(c *relayConfig) { c.batch = n } }

// PollInterval is how often an idle relay looks for rows without being
// woken (default 500ms): the latency on SQLite, and the fallback on
// PostgreSQL when a notification is missed or Notify is off.
func PollInterval(d time.Duration) RelayOption { return func(c *relayConfig) { c.poll = d } }

// TakeoverInterval is how often a standby tries to take a shard (default
// 1s): with the time PostgreSQL takes to see a dead holder's connection
// close, how long a shard goes unpublished after its relay dies.
func TakeoverInterval(d time.Duration) RelayOption { return func(c *relayConfig) { c.takeover = d } }

// AckTimeout is how long Kafka may take to acknowledge a batch before the
// relay reports it in Status as unreachable (default 5s). The relay keeps
// waiting: the Kafka client retries, in order, until Kafka is back, and
// the rows stay in the outbox meanwhile.
func AckTimeout(d time.Duration) RelayOption { return func(c *relayConfig) { c.ackTimeout = d } }

// MaxBackoff caps the wait between retries after Kafka failed records
// (default 5s; the wait starts at 100ms and doubles).
func MaxBackoff(d time.Duration) RelayOption { return func(c *relayConfig) { c.maxBackoff = d } }

// Connections is the most connections of the database's pool the relay
// uses at once (default 2). On PostgreSQL one of them is the relay's
// session, held while the relay runs: it holds the advisory locks of the
// shards the relay publishes and listens for wake-ups. The others are
// taken from the pool while a batch is read or marked and given back at
// once, never while Kafka takes a batch; the shards take turns on them.
// On SQLite there is no session. More than one connection per shard (and
// the session) is never used. The relay refuses a pool that it would
// leave without a connection for the service.
func Connections(n int) RelayOption { return func(c *relayConfig) { c.conns = n } }

// ErrPoolTooSmall: the relay would take every connection of the
// database's pool, leaving the service none.
var ErrPoolTooSmall = errors.New("outbox: the pool is too small for the relay")

// Relay returns a relay that publishes the outbox through cl, which must
// be an idempotent producer waiting for all in-sync replicas (franz-go's
// defaults; see bus.CheckProducer), and must take a batch of the largest
// event Enqueue accepts (MaxEventBytes). The caller keeps cl and closes it
// after Run returned. The database must hand out connections of its own
// (sqldb.Conner: Pgx and SQL do) and have room for Connections and one
// more for the service (ErrPoolTooSmall).
func (o *Outbox[Tx]) Relay(cl *kgo.Client, opts ...RelayOption) (*Relay, error) {
	if cl == nil {
		return nil, errors.New("outbox: Relay needs a Kafka client")
	}
	if err := bus.CheckProducer(cl); err != nil {
		return nil, fmt.Errorf("outbox: Relay: %w", err)
	}
	conner, ok := o.db.(sqldb.Conner)
	if !ok {
		return nil, fmt.Errorf("outbox: Relay: %T cannot hand out a connection of its own (sqldb.Conner)", o.db)
	}
	host, _ := os.Hostname()
	cfg := relayConfig{
		name: host + "/" + strconv.Itoa(os.Getpid()), batch: 1000, poll: 500 * time.Millisecond,
		takeover: time.Second, ackTimeout: 5 * time.Second, maxBackoff: 5 * time.Second,
		conns: 2,
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("outbox: Relay: option %d is nil", i+1)
		}
		opt(&cfg)
	}
	session := 0 // the connections the session takes
	if o.sql.session {
		session = 1
	}
	switch {
	case cfg.batch < 1 || cfg.batch > 100_000:
		return nil, fmt.Errorf("outbox: BatchSize(%d): want 1 to 100000", cfg.batch)
	case cfg.poll <= 0:
		return nil, fmt.Errorf("outbox: PollInterval(%v): want a positive duration", cfg.poll)
	case cfg.takeover <= 0:
		return nil, fmt.Errorf("outbox: TakeoverInterval(%v): want a positive duration", cfg.takeover)
	case cfg.ackTimeout <= 0:
		return nil, fmt.Errorf("outbox: AckTimeout(%v): want a positive duration", cfg.ackTimeout)
	case cfg.maxBackoff <= 0:
		return nil, fmt.Errorf("outbox: MaxBackoff(%v): want a positive duration", cfg.maxBackoff)
	case cfg.conns < session+1:
		return nil, fmt.Errorf("outbox: Connections(%d): want at least %d (%d for the session and 1 for batches)", cfg.conns, session+1, session)
	}
	conns := min(cfg.conns, session+o.cfg.shards)
	if pool, ok := poolSize(o.db); ok && conns >= pool {
		return nil, fmt.Errorf("%w: the pool holds %d connections and the relay of Shards(%d) takes up to %d (Connections(%d)), leaving the service none: give the pool more (pgxpool MaxConns, sql.DB.SetMaxOpenConns) or the relay fewer",
			ErrPoolTooSmall, pool, o.cfg.shards, conns, cfg.conns)
	}
	batchMax, _ := cl.OptValue(kgo.ProducerBatchMaxBytesFn).(func(string) int32)
	if batchMax == nil {
		return nil, errors.New("outbox: Relay: the Kafka client does not tell its kgo.ProducerBatchMaxBytes")
	}
	if limit := int(batchMax("")); limit < o.cfg.maxEvent {
		return nil, fmt.Errorf("outbox: Relay: the Kafka client takes batches of up to %d bytes (kgo.ProducerBatchMaxBytes), less than the %d bytes of the largest event Enqueue accepts (MaxEventBytes): such an event could never be published; pass outbox.MaxEventBytes(%d) to New, or raise the client's limit",
			limit, o.cfg.maxEvent, limit)
	}
	seeds, _ := cl.OptValue(kgo.SeedBrokers).([]string)
	r := &Relay{
		sql: o.sql, ocfg: o.cfg, d: o.d, db: o.db,
		tx: func(ctx context.Context, fn func(q sqldb.Querier) error) error {
			return sqldb.InTx(ctx, o.db, func(tx Tx) error { return fn(o.db.In(tx)) })
		},
		cl: cl, conner: conner, cfg: cfg, keep: o.sql.keep, del: o.sql.delAfterKeep,
		work: make(chan struct{}, conns-session), seeds: seeds, batchMax: batchMax,
		logEvery: 30 * time.Second, stuckRecheck: 30 * time.Second,
	}
	r.limits.topics = make(map[string]topicLimit)
	r.health.work = make([]error, o.cfg.shards)
	r.health.stuck = make(map[int][]StuckRow)
	r.health.logged = make(map[string]time.Time)
	if o.cfg.deleteNow {
		r.keep, r.del = "", o.sql.del
	}
	return r, nil
}

// poolSize returns the most connections db's pool opens, when it has a
// bound.
func poolSize(db any) (int, bool) {
	switch d := db.(type) {
	case *sqldb.PgxDB:
		return int(d.Pool().Config().MaxConns), true
	case *sqldb.SQLDB:
		n := d.Pool().Stats().MaxOpenConnections
		return n, n > 0
	}
	return 0, false
}

// Run relays until ctx is done, competing for every shard, and returns
// context.Cause(ctx) then. Errors of the database and of Kafka are
// logged, recorded in Status and Ready, and retried; they do not end
// Run.
func (r *Relay) Run(ctx context.Context) error {
	if ctx == nil {
		return errors.New("outbox: Run: nil context")
	}
	if err := r.health.start(); err != nil {
		return err
	}
	defer r.health.stop()
	wakes := make([]chan struct{}, r.ocfg.shards)
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	if stop, err := r.ocfg.tel.ObserveOutbox(r.ocfg.table, func(ctx context.Context) (int64, time.Duration, int64, error) {
		s, err := status(ctx, r.db, r.sql, r.ocfg.table)
		var stuck int64
		for _, rs := range s.Relays {
			stuck += int64(len(rs.Stuck))
		}
		return s.Backlog, s.Age, stuck, err
	}); err == nil {
		defer stop()
	} else {
		r.ocfg.log.Warn("outbox: backlog metrics not registered", "table", r.ocfg.table, "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.watchKafka(ctx) })
	if r.sql.session {
		wg.Go(func() { r.session(ctx, wakes) })
	} else {
		// SQLite has no lock to compete for: run one relay per database.
		for shard := range wakes {
			wg.Go(func() { r.runShard(ctx, shard, wakes[shard], true) })
		}
	}
	wg.Wait()
	return context.Cause(ctx)
}

// session holds the relay's PostgreSQL session until ctx is done, taking
// it again after the database failed.
func (r *Relay) session(ctx context.Context, wakes []chan struct{}) {
	for ctx.Err() == nil {
		err := r.holdSession(ctx, wakes)
		if ctx.Err() != nil {
			return
		}
		r.fail(&r.health.session, "database", fmt.Errorf("outbox: relay session: %w", err))
		sleep(ctx, r.cfg.takeover)
	}
}

// holdSession takes a connection of its own, the session, and on it the
// advisory lock of every shard no other relay holds, trying again every
// TakeoverInterval for the others; it runs a worker per shard it holds,
// and wakes them when the outbox notifies. The lock of a shard is held
// while the session lasts: when the relay dies, the server drops the
// connection and the locks with it. When the session fails, the workers
// end before the session is closed, so no two relays ever work a shard at
// once (see docs/design/outbox.md for a session cut off by the
// network).
func (r *Relay) holdSession(ctx context.Context, wakes []chan struct{}) error {
	conn, err := r.conner.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	held := make([]bool, len(wakes))
	wakeAll := func() {
		for s, w := range wakes {
			if held[s] {
				select {
				case w <- struct{}{}:
				default:
				}
			}
		}
	}
	if r.ocfg.notify {
		// The workers, once started, read the table before they wait
		// for a notification: none is lost.
		if _, err := conn.Exec(ctx, r.sql.listen); err != nil {
			return err
		}
	}
	waits := true // the driver can wait for notifications
	var missing []int64
	for {
		missing = missing[:0]
		for s, h := range held {
			if !h {
				missing = append(missing, int64(s))
			}
		}
		if len(missing) > 0 || !waits {
			// Also what tells, without notifications, that the
			// session still answers.
			got, err := r.tryLocks(ctx, conn, missing)
			if err != nil {
				return err
			}
			for _, s := range got {
				if err := r.claim(ctx, conn, s); err != nil {
					return err
				}
				held[s] = true
				wg.Go(func() { r.runShard(wctx, s, wakes[s], false) })
			}
		}
		r.ok(&r.health.session, "database")
		if waits {
			// Waiting also reads the connection: a session the server
			// closed ends the wait at once.
			wait, stop := context.WithTimeout(ctx, r.cfg.takeover)
			err := conn.WaitForNotification(wait)
			timedOut := wait.Err() != nil // before stop, which ends wait too
			stop()
			switch {
			case err == nil:
				wakeAll()
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, sqldb.ErrNotifyUnsupported):
				waits = false
			case !timedOut:
				return err
			}
		} else {
			sleep(ctx, r.cfg.takeover)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// tryLocks takes the advisory locks of shards that no session holds, on
// conn, and returns those it took. With no shards it only checks that
// conn answers.
func (r *Relay) tryLocks(ctx context.Context, conn sqldb.Conn, shards []int64) ([]int, error) {
	rows, err := conn.Query(ctx, r.sql.tryLocks, shards)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		got = append(got, int(s))
	}
	return got, rows.Err()
}

type row struct {
	id      int64
	topic   string
	key     []byte
	value   []byte
	headers []byte
	created sqldb.Time
}

// quickPolls is how many times, a millisecond apart, a relay that found
// nothing looks again before it waits for a wake-up: under a steady load
// it keeps finding rows, and a row committed meanwhile (notified or not)
// waits a millisecond at most.
const quickPolls = 16

// claim records the relay as shard's holder, through q.
func (r *Relay) claim(ctx context.Context, q sqldb.Querier, shard int) error {
	if _, err := q.Exec(ctx, r.sql.claim, shard, r.cfg.name, r.d.Time(time.Now())); err != nil {
		return err
	}
	r.ocfg.log.Info("outbox: relay took its shard", "table", r.ocfg.table, "shard", shard, "relay", r.cfg.name)
	return nil
}

// inTx runs fn with a connection of the pool, taken for fn alone and
// counted against Connections: in a transaction with the batchSettings,
// or each statement on its own where there are none (SQLite).
func (r *Relay) inTx(ctx context.Context, fn func(q sqldb.Querier) error) error {
	select {
	case r.work <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.work }()
	if r.sql.batchSettings == "" {
		return fn(r.db)
	}
	return r.tx(ctx, func(q sqldb.Querier) error {
		if _, err := q.Exec(ctx, r.sql.batchSettings); err != nil {
			return err
		}
		return fn(q)
	})
}

// exec runs one statement on a connection of the pool, counted against
// Connections.
func (r *Relay) exec(ctx context.Context, query string, args ...any) error {
	select {
	case r.work <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.work }()
	_, err := r.db.Exec(ctx, query, args...)
	return err
}

// fetch reads the oldest unpublished rows of st's shard other than those
// in sent (the batch Kafka is taking) and those of st's keys into batch.
func (r *Relay) fetch(ctx context.Context, q sqldb.Querier, st *stuck, sent []int64, batch []row) ([]row, error) {
	s := r.sql
	query, args := s.fetch, []any{st.shard, s.ids(sent), r.cfg.batch}
	if len(st.rows) > 0 {
		query, args = s.fetchSkipping, append(args, s.keys(st.rows)...)
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return batch, err
	}
	defer rows.Close()
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.id, &x.topic, &x.key, &x.value, &x.headers, &x.created); err != nil {
			return batch, err
		}
		batch = append(batch, x)
	}
	return batch, rows.Err()
}

// records returns batch's records, up to the first row whose headers are
// damaged (and the error naming it): nothing after it is published, so
// its key's order holds; an operator must repair the row. The records
// share one allocation, and their headers another: the batch is sent and
// settled as a whole.
func records(batch []row) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(batch))
	all := make([]kgo.Record, len(batch))
	hs := make([]kgo.RecordHeader, 0, 10*len(batch))
	for i, x := range batch {
		n := len(hs)
		var err error
		if hs, err = wire.AppendParsedHeadersColumn(hs, x.headers); err != nil {
			return recs, fmt.Errorf("outbox: row %d: %w", x.id, err)
		}
		// Capped, so a header the relay adds (trace context) does not
		// overwrite the next record's.
		all[i] = kgo.Record{Topic: x.topic, Key: x.key, Value: x.value, Headers: hs[n:len(hs):len(hs)], Timestamp: x.created.Time}
		recs = append(recs, &all[i])
	}
	return recs, nil
}

// flight is a batch of records sent to Kafka. The relay waits for its
// own records alone (done), never for the other records of a client it
// may share with the service. mu guards errs and left, which the
// records' promises write.
type flight struct {
	recs  []*kgo.Record // nil for a row held back
	mu    sync.Mutex
	errs  map[*kgo.Record]error // the records Kafka failed
	left  int                   // the records Kafka has not settled
	done  chan struct{}         // closed when left is 0
	start time.Time
	// unlinger ends the flush that keeps the client from lingering on
	// the batch's records, and flushed is closed once it ended.
	unlinger context.CancelFunc
	flushed  chan struct{}
}

// land ends the flight's flush and waits for it to end: every goroutine
// a batch starts ends with the batch.
func (f *flight) land() {
	f.unlinger()
	<-f.flushed
}

// send produces recs, the records of batch's first rows, but for those
// that cannot be published (they become stuck) and those of keys that
// have a stuck row (held back, nil in the flight); wait waits for the
// outcome. The caller lands the flight, on every path.
func (r *Relay) send(ctx context.Context, st *stuck, batch []row, recs []*kgo.Record) (*flight, error) {
	f := &flight{recs: recs, done: make(chan struct{}), start: time.Now(), flushed: make(chan struct{})}
	fctx, unlinger := context.WithCancel(ctx)
	f.unlinger = unlinger
	tel := r.ocfg.tel
	spans := make([]trace.Span, len(recs))
	var errs []error
	for i, rec := range recs {
		if st.holds(rec.Topic, rec.Key) {
			recs[i] = nil
			continue
		}
		rec.Context, spans[i] = tel.Relay(ctx, rec)
		if size, limit := batchBytes(rec), r.limit(ctx, rec.Topic); size > limit.bytes {
			err := fmt.Errorf("%w: its record takes %d bytes in a batch of its own, over the %d %s takes", kerr.MessageTooLarge, size, limit.bytes, limit.by)
			tel.Published(rec.Context, spans[i], rec, f.start, err)
			recs[i] = nil
			errs = append(errs, r.setStuck(ctx, st, batch[i], size, err))
			continue
		}
		f.left++
	}
	if f.left == 0 {
		close(f.done)
		unlinger()
	}
	for i, rec := range recs {
		if rec == nil {
			continue
		}
		span := spans[i]
		r.cl.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			tel.Published(rec.Context, span, rec, f.start, err)
			if err == nil {
				tel.Delayed(rec.Context, rec.Topic, rec.Timestamp)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if err != nil {
				if f.errs == nil {
					f.errs = make(map[*kgo.Record]error)
				}
				f.errs[rec] = err
			}
			if f.left--; f.left == 0 {
				close(f.done)
				unlinger()
			}
		})
	}
	// Produce lingers for more records; nothing more is coming. The
	// flush stops lingering, and waits for every record of the client,
	// so it ends as soon as the batch's own records are settled (or the
	// batch is given up on: land).
	go func() {
		defer close(f.flushed)
		_ = r.cl.Flush(fctx)
	}()
	return f, errors.Join(errs...)
}

// wait waits until Kafka acknowledged or failed each of f's records, or
// ctx is done (an error then: the rows stay unmarked). The client retries
// what Kafka did not take, in order, for as long as it takes, so a batch
// is never given up on while Kafka is away: after AckTimeout it is
// reported in Status, and the wait goes on.
func (r *Relay) wait(ctx context.Context, shard int, f *flight) error {
	stalled := time.NewTicker(r.cfg.ackTimeout)
	defer stalled.Stop()
	for {
		select {
		case <-f.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-stalled.C:
			f.mu.Lock()
			n := f.left
			f.mu.Unlock()
			err := fmt.Errorf("outbox: Kafka has not acknowledged %d of %d records for %v; waiting", n, len(f.recs), r.cfg.ackTimeout)
			r.ocfg.log.Warn("outbox: publishing", "table", r.ocfg.table, "shard", shard, "err", err)
			if err := r.lastError(ctx, shard, err); err != nil {
				return err
			}
		}
	}
}

// mark ends the rows ids of shard that Kafka acknowledged: it moves them
// to the published rows' table, or deletes them (DeleteOnPublish).
func (r *Relay) mark(ctx context.Context, q sqldb.Querier, shard int, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows := r.sql.rowsArgs(shard, ids)
	if r.keep != "" {
		if _, err := q.Exec(ctx, r.keep, append([]any{r.d.Time(time.Now())}, rows...)...); err != nil {
			return err
		}
	}
	if r.del == "" {
		return nil
	}
	_, err := q.Exec(ctx, r.del, rows...)
	return err
}

// lastError records err as the shard's last error.
func (r *Relay) lastError(ctx context.Context, shard int, err error) error {
	return r.exec(ctx, r.sql.lastError, err.Error(), r.d.Time(time.Now()), shard)
}

// cleanup deletes rows published longer than the retention ago, in
// chunks of their own transactions, so no statement holds many locks for
// long.
func (r *Relay) cleanup(ctx context.Context) error {
	before := r.d.Time(time.Now().Add(-r.ocfg.retention))
	for n := int64(cleanupChunk); n == cleanupChunk; {
		err := r.inTx(ctx, func(q sqldb.Querier) error {
			var err error
			n, err = q.Exec(ctx, r.sql.cleanup, before)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
