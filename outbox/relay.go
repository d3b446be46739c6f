package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
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
// stand by (see the package documentation).
type Relay[Tx any] struct {
	o      *Outbox[Tx]
	cl     *kgo.Client
	conner sqldb.Conner
	cfg    relayConfig
	// keep and del end a batch (see mark), built once: keep copies its
	// rows into the published rows' table (and on PostgreSQL deletes
	// them too), del deletes them.
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
	log        *slog.Logger
}

// RelayOption configures a Relay.
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

// Logger receives the relay's events: shards taken and lost, errors
// (default slog.Default()).
func Logger(l *slog.Logger) RelayOption { return func(c *relayConfig) { c.log = l } }

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
func (o *Outbox[Tx]) Relay(cl *kgo.Client, opts ...RelayOption) (*Relay[Tx], error) {
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
		conns: 2, log: slog.Default(),
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("outbox: Relay: option %d is nil", i+1)
		}
		opt(&cfg)
	}
	session := 0 // the connections the session takes
	if o.pg {
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
	case cfg.log == nil:
		return nil, errors.New("outbox: Logger(nil): want a logger")
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
	r := &Relay[Tx]{
		o: o, cl: cl, conner: conner, cfg: cfg, del: o.deleteRows(1),
		work: make(chan struct{}, conns-session), seeds: seeds, batchMax: batchMax,
		logEvery: 30 * time.Second, stuckRecheck: 30 * time.Second,
	}
	r.limits.topics = make(map[string]topicLimit)
	r.health.stuck = make(map[int][]StuckRow)
	r.health.logged = make(map[string]time.Time)
	d := o.d
	switch {
	case o.cfg.deleteNow: // nothing kept
	case o.pg:
		// One statement: a row is in one table or the other.
		r.keep = fmt.Sprintf("WITH m AS (%s RETURNING %s) INSERT INTO %s (%s, published_at) SELECT %s, %s::timestamptz FROM m",
			o.deleteRows(2), movedColumns, o.pub, movedColumns, movedColumns, d.Arg(1))
	default:
		// SQLite takes no DELETE in a WITH clause: del follows. A relay
		// that dies between the two leaves the rows in both tables: they
		// are published again, and the copy already kept stays.
		r.keep = fmt.Sprintf("INSERT OR IGNORE INTO %s (%s, published_at) SELECT %s, %s FROM %s WHERE %s",
			o.pub, movedColumns, movedColumns, d.Arg(1), o.sqlTable, o.rowsIn(2))
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
func (r *Relay[Tx]) Run(ctx context.Context) error {
	if ctx == nil {
		return errors.New("outbox: Run: nil context")
	}
	if err := r.health.start(); err != nil {
		return err
	}
	defer r.health.stop()
	wakes := make([]chan struct{}, r.o.cfg.shards)
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	if stop, err := r.o.cfg.tel.ObserveOutbox(r.o.cfg.table, func(ctx context.Context) (int64, time.Duration, int64, error) {
		s, err := r.o.Status(ctx)
		var stuck int64
		for _, rs := range s.Relays {
			stuck += int64(len(rs.Stuck))
		}
		return s.Backlog, s.Age, stuck, err
	}); err == nil {
		defer stop()
	} else {
		r.cfg.log.Warn("outbox: backlog metrics not registered", "table", r.o.cfg.table, "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.watchKafka(ctx) })
	if r.o.pg {
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
func (r *Relay[Tx]) session(ctx context.Context, wakes []chan struct{}) {
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
// once (see the package documentation for a session cut off by the
// network).
func (r *Relay[Tx]) holdSession(ctx context.Context, wakes []chan struct{}) error {
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
	if r.o.cfg.notify {
		// The workers, once started, read the table before they wait
		// for a notification: none is lost.
		if _, err := conn.Exec(ctx, `LISTEN "`+r.o.cfg.table+`"`); err != nil {
			return err
		}
	}
	o, d := r.o, r.o.d
	claim := fmt.Sprintf("INSERT INTO %s (shard, holder, since, idle, stuck) VALUES (%s, %s, %s, false, '') ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, since = excluded.since, idle = false, stuck = ''",
		o.relays, d.Arg(1), d.Arg(2), d.Arg(3))
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
			got, err := tryLocks(ctx, conn, o.relayID, missing)
			if err != nil {
				return err
			}
			for _, s := range got {
				if _, err := conn.Exec(ctx, claim, s, r.cfg.name, d.Time(time.Now())); err != nil {
					return err
				}
				held[s] = true
				r.cfg.log.Info("outbox: relay took its shard", "table", o.cfg.table, "shard", s, "relay", r.cfg.name)
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
func tryLocks(ctx context.Context, conn sqldb.Conn, relayID int32, shards []int64) ([]int, error) {
	rows, err := conn.Query(ctx, "SELECT s FROM unnest($2::int8[]) AS s WHERE pg_try_advisory_lock($1::int4, s::int4)", relayID, shards)
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

// runShard publishes shard's rows until ctx is done, through the
// database's failures. claim (SQLite) records the relay as the shard's
// holder first; on PostgreSQL the session did.
func (r *Relay[Tx]) runShard(ctx context.Context, shard int, wake <-chan struct{}, claim bool) {
	defer r.health.setStuck(shard, nil)
	// The shard's stuck rows outlive a serve that a database failure
	// ended: forgetting them would let their keys' later rows go first.
	st := stuck{shard: shard}
	for ctx.Err() == nil {
		err := r.serve(ctx, shard, wake, claim, &st)
		if ctx.Err() != nil {
			return
		}
		r.fail(&r.health.work, "database", fmt.Errorf("outbox: relay shard %d: %w", shard, err))
		sleep(ctx, r.cfg.takeover)
	}
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

// relaySettings set up the transaction of a batch's statements on
// PostgreSQL; they end with it, so the pool's connection goes back as it
// came. The fetch must walk the primary key in id order and stop at
// BatchSize: statistics taken while the table held few rows make the
// planner collect the whole backlog with a bitmap scan and sort it
// instead (30-90 ms per batch over a backlog of 100,000 rows, five times
// the relay's other work). Custom plans see the ids of the batch in
// flight as a constant array, which PostgreSQL hashes, instead of
// comparing each row with each id. A mark lost with the last commits of a
// server crash only publishes those rows again, with the same ce_id,
// which at-least-once allows: the relay's commits do not wait for the
// disk, and leave the WAL flushes to the writers.
const relaySettings = "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true), set_config('synchronous_commit', 'off', true)"

// inTx runs fn with a connection of the pool, taken for fn alone and
// counted against Connections: on PostgreSQL in a transaction with the
// relay's settings, on SQLite each statement on its own.
func (r *Relay[Tx]) inTx(ctx context.Context, fn func(q sqldb.Querier) error) error {
	select {
	case r.work <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.work }()
	if !r.o.pg {
		return fn(r.o.db)
	}
	return sqldb.InTx(ctx, r.o.db, func(tx Tx) error {
		q := r.o.db.In(tx)
		if _, err := q.Exec(ctx, relaySettings); err != nil {
			return err
		}
		return fn(q)
	})
}

// exec runs one statement on a connection of the pool, counted against
// Connections.
func (r *Relay[Tx]) exec(ctx context.Context, query string, args ...any) error {
	select {
	case r.work <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.work }()
	_, err := r.o.db.Exec(ctx, query, args...)
	return err
}

// serve publishes shard's rows until ctx is done or the database fails.
//
// It works on two batches at once: while Kafka takes batch N, it marks
// batch N-1 and reads batch N+1 (the oldest unpublished rows other than
// N's), so the database's work and Kafka's overlap. Batch N+1 is sent
// only once every record of N is acknowledged: when one failed, N+1 is
// dropped unsent and the next round reads the table again, so a failed
// row is never overtaken by a later row of its key from another batch.
// A row that can never be published (see stuck) holds back the later
// rows of its key, and no other.
func (r *Relay[Tx]) serve(ctx context.Context, shard int, wake <-chan struct{}, claim bool, st *stuck) error {
	o, d := r.o, r.o.d
	if claim {
		if err := r.exec(ctx, fmt.Sprintf("INSERT INTO %s (shard, holder, since, idle, stuck) VALUES (%s, %s, %s, false, '') ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, since = excluded.since, idle = false, stuck = ''",
			o.relays, d.Arg(1), d.Arg(2), d.Arg(3)), shard, r.cfg.name, d.Time(time.Now())); err != nil {
			return err
		}
		r.cfg.log.Info("outbox: relay took its shard", "table", o.cfg.table, "shard", shard, "relay", r.cfg.name)
	}
	setIdle := fmt.Sprintf("UPDATE %s SET idle = %s WHERE shard = %s", o.relays, d.Arg(1), d.Arg(2))
	var (
		quiet       int
		idle        bool
		backoff     time.Duration
		lastClean   time.Time
		batch, next []row
		ahead       bool    // next holds the batch read while Kafka took batch
		sent        []int64 // the ids of batch, while Kafka takes it
		acked       []int64 // acknowledged, not yet marked
		poll        = time.NewTimer(r.cfg.poll)
	)
	defer poll.Stop()
	// What Kafka acknowledged is marked even when ctx ended meanwhile:
	// else it would be published again.
	mctx := context.WithoutCancel(ctx)
	// fetch reads the oldest rows not in sent into into, after marking
	// what Kafka acknowledged: one transaction.
	fetch := func(into []row) ([]row, error) {
		ctx, cancel := context.WithTimeout(mctx, 30*time.Second)
		defer cancel()
		err := r.inTx(ctx, func(q sqldb.Querier) error {
			if err := r.mark(ctx, q, shard, acked); err != nil {
				return err
			}
			var err error
			into, err = r.fetch(ctx, q, st, sent, into[:0])
			return err
		})
		if err == nil {
			acked = acked[:0]
		}
		return into, err
	}
	for ctx.Err() == nil {
		if shard == 0 && !o.cfg.deleteNow && time.Since(lastClean) > min(o.cfg.retention/4, time.Minute) {
			if err := r.cleanup(ctx); err != nil {
				return err
			}
			lastClean = time.Now()
		}
		if err := r.recheck(ctx, st); err != nil {
			return err
		}
		if ahead {
			batch, next, ahead = next, batch, false
		} else {
			var err error
			sent = sent[:0]
			if batch, err = fetch(batch); err != nil {
				return err
			}
		}
		r.ok(&r.health.work, "database")
		if len(batch) == 0 {
			switch {
			case quiet < quickPolls:
				quiet++
				sleep(ctx, time.Millisecond)
			case !idle:
				// For Status.
				if err := r.exec(ctx, setIdle, true, shard); err != nil {
					return err
				}
				idle = true
			default:
				poll.Reset(r.cfg.poll)
				select {
				case <-ctx.Done():
				case <-wake:
				case <-poll.C:
				}
			}
			continue
		}
		quiet = 0
		if idle {
			if err := r.exec(ctx, setIdle, false, shard); err != nil {
				return err
			}
			idle = false
		}
		recs, damaged := records(batch)
		f, err := r.send(ctx, st, batch, recs)
		if err != nil {
			return err
		}
		sent = sent[:0]
		for i, rec := range f.recs {
			if rec != nil {
				sent = append(sent, batch[i].id)
			}
		}
		if next, err = fetch(next); err != nil {
			return err
		}
		if err := r.wait(ctx, shard, f); err != nil {
			return err
		}
		if r.afterPublish != nil {
			r.afterPublish()
		}
		failed := 0
		firstErr := damaged
		for i, rec := range f.recs {
			if rec == nil {
				continue // held back
			}
			err := f.errs[rec]
			if err == nil {
				acked = append(acked, batch[i].id)
				continue
			}
			if permanent(err) {
				// The later rows of its key in this batch went
				// with it; none after.
				if err := r.setStuck(ctx, st, batch[i], batchBytes(rec), err); err != nil {
					return err
				}
				continue
			}
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("outbox: publish row %d to %s: %w", batch[i].id, rec.Topic, err)
			}
		}
		if firstErr == nil && len(next) > 0 {
			ahead, backoff = true, 0
			continue
		}
		// A failure, or nothing more to publish: mark now.
		sent = sent[:0]
		if err := r.inTx(mctx, func(q sqldb.Querier) error { return r.mark(mctx, q, shard, acked) }); err != nil {
			return err
		}
		acked = acked[:0]
		if firstErr == nil {
			backoff = 0
			continue
		}
		if damaged != nil {
			failed++
		}
		r.cfg.log.Warn("outbox: publishing", "table", r.o.cfg.table, "shard", shard, "rows", failed, "err", firstErr)
		if err := r.lastError(ctx, shard, firstErr); err != nil {
			return err
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), r.cfg.maxBackoff)
		sleep(ctx, backoff)
	}
	return r.inTx(mctx, func(q sqldb.Querier) error { return r.mark(mctx, q, shard, acked) })
}

// fetch reads the oldest unpublished rows of st's shard other than those
// in sent (the batch Kafka is taking) and those of st's keys into batch.
func (r *Relay[Tx]) fetch(ctx context.Context, q sqldb.Querier, st *stuck, sent []int64, batch []row) ([]row, error) {
	o, d := r.o, r.o.d
	query := fmt.Sprintf("SELECT id, topic, key, value, headers, created_at FROM %s WHERE shard = %s AND NOT (%s)", o.sqlTable, d.Arg(1), o.idIn(2))
	args := []any{st.shard, o.idList(sent)}
	if len(st.rows) > 0 {
		if o.pg {
			query += fmt.Sprintf(" AND (topic, key) NOT IN (SELECT * FROM unnest(%s::text[], %s::bytea[]))", d.Arg(3), d.Arg(4))
		} else {
			query += fmt.Sprintf(" AND topic || ' ' || hex(key) NOT IN (SELECT value FROM json_each(%s))", d.Arg(3))
		}
		args = append(args, st.args(o.pg)...)
	}
	query += fmt.Sprintf(" ORDER BY id LIMIT %d", r.cfg.batch)
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

// flight is a batch of records sent to Kafka.
type flight struct {
	recs  []*kgo.Record // nil for a row held back
	mu    sync.Mutex
	errs  map[*kgo.Record]error // the records Kafka failed
	left  int
	done  chan struct{}
	start time.Time
}

// send produces recs, the records of batch's first rows, but for those
// that cannot be published (they become stuck) and those of keys that
// have a stuck row (held back, nil in the flight); wait waits for the
// outcome.
func (r *Relay[Tx]) send(ctx context.Context, st *stuck, batch []row, recs []*kgo.Record) (*flight, error) {
	f := &flight{recs: recs, done: make(chan struct{}), start: time.Now()}
	tel := r.o.cfg.tel
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
			}
		})
	}
	// Produce lingers for more records; nothing more is coming.
	go func() { _ = r.cl.Flush(ctx) }()
	return f, errors.Join(errs...)
}

// wait waits until Kafka acknowledged or failed each of f's records, or
// ctx is done (an error then: the rows stay unmarked). The client retries
// what Kafka did not take, in order, for as long as it takes, so a batch
// is never given up on while Kafka is away: after AckTimeout it is
// reported in Status, and the wait goes on.
func (r *Relay[Tx]) wait(ctx context.Context, shard int, f *flight) error {
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
			r.cfg.log.Warn("outbox: publishing", "table", r.o.cfg.table, "shard", shard, "err", err)
			if err := r.lastError(ctx, shard, err); err != nil {
				return err
			}
		}
	}
}

// idIn returns the condition "id is one of the ids of argument n" (the
// argument is idList's).
func (o *Outbox[Tx]) idIn(n int) string {
	if o.pg {
		return fmt.Sprintf("id = ANY(%s::int8[])", o.d.Arg(n))
	}
	return fmt.Sprintf("id IN (SELECT value FROM json_each(%s))", o.d.Arg(n))
}

// idList returns ids as idIn's argument.
func (o *Outbox[Tx]) idList(ids []int64) any {
	if o.pg {
		if ids == nil {
			ids = []int64{} // not NULL, which no id is or is not in
		}
		return ids
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// mark ends the rows ids of shard that Kafka acknowledged: it moves them
// to the published rows' table, or deletes them (DeleteOnPublish).
func (r *Relay[Tx]) mark(ctx context.Context, q sqldb.Querier, shard int, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows := r.o.rowsArgs(shard, ids)
	if r.keep != "" {
		if _, err := q.Exec(ctx, r.keep, append([]any{r.o.d.Time(time.Now())}, rows...)...); err != nil || r.o.pg {
			return err
		}
	}
	_, err := q.Exec(ctx, r.del, rows...)
	return err
}

// movedColumns are the columns a row keeps when it is published.
const movedColumns = "id, shard, topic, key, value, headers, created_at"

// rowsIn returns the condition "the row is one of a batch's", on the four
// arguments from n on that rowsArgs returns. It names the stretch of the
// primary key the batch lies in, besides its ids, so that PostgreSQL
// reads that stretch alone: without statistics on the table (a new one)
// it would otherwise read all of the shard and filter it by the ids.
func (o *Outbox[Tx]) rowsIn(n int) string {
	d := o.d
	return fmt.Sprintf("shard = %s AND id BETWEEN %s AND %s AND %s", d.Arg(n), d.Arg(n+1), d.Arg(n+2), o.idIn(n+3))
}

// deleteRows deletes the rows of a batch, given as rowsIn(n).
func (o *Outbox[Tx]) deleteRows(n int) string {
	return "DELETE FROM " + o.sqlTable + " WHERE " + o.rowsIn(n)
}

// rowsArgs returns rowsIn's arguments for the rows ids (at least one) of
// shard.
func (o *Outbox[Tx]) rowsArgs(shard int, ids []int64) []any {
	return []any{shard, slices.Min(ids), slices.Max(ids), o.idList(ids)}
}

// lastError records err as the shard's last error.
func (r *Relay[Tx]) lastError(ctx context.Context, shard int, err error) error {
	o, d := r.o, r.o.d
	return r.exec(ctx, fmt.Sprintf("UPDATE %s SET last_error = %s, last_error_at = %s WHERE shard = %s", o.relays, d.Arg(1), d.Arg(2), d.Arg(3)),
		err.Error(), d.Time(time.Now()), shard)
}

// cleanup deletes rows published longer than the retention ago, in
// chunks of their own transactions, so no statement holds many locks for
// long.
func (r *Relay[Tx]) cleanup(ctx context.Context) error {
	o, d := r.o, r.o.d
	const chunk = 10_000
	del := fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE published_at < %s LIMIT %d)", o.pub, o.pub, d.Arg(1), chunk)
	before := d.Time(time.Now().Add(-o.cfg.retention))
	for n := int64(chunk); n == chunk; {
		err := r.inTx(ctx, func(q sqldb.Querier) error {
			var err error
			n, err = q.Exec(ctx, del, before)
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
