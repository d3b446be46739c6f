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

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb"
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

// Logger receives the relay's events: shards taken and lost, errors
// (default: discarded).
func Logger(l *slog.Logger) RelayOption { return func(c *relayConfig) { c.log = l } }

// Relay returns a relay that publishes the outbox through cl, which must
// be an idempotent producer waiting for all in-sync replicas (franz-go's
// defaults; see bus.CheckProducer). The caller keeps cl and closes it
// after Run returned. The database must hand out connections of its own
// (sqldb.Conner: Pgx and SQL do).
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
		log: slog.New(slog.DiscardHandler),
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("outbox: Relay: option %d is nil", i+1)
		}
		opt(&cfg)
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
	}
	r := &Relay[Tx]{o: o, cl: cl, conner: conner, cfg: cfg, del: o.deleteRows(1)}
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

// Run relays until ctx is done, competing for every shard, and returns
// nil then. Errors of the database and of Kafka are logged, recorded in
// Status and retried; they do not end Run.
func (r *Relay[Tx]) Run(ctx context.Context) error {
	if ctx == nil {
		return errors.New("outbox: Relay.Run: nil context")
	}
	wakes := make([]chan struct{}, r.o.cfg.shards)
	for i := range wakes {
		wakes[i] = make(chan struct{}, 1)
	}
	if stop, err := r.o.cfg.tel.ObserveOutbox(r.o.cfg.table, func(ctx context.Context) (int64, time.Duration, error) {
		s, err := r.o.Status(ctx)
		return s.Backlog, s.Age, err
	}); err == nil {
		defer stop()
	} else {
		r.cfg.log.Warn("outbox: backlog metrics not registered", "table", r.o.cfg.table, "err", err)
	}
	var wg sync.WaitGroup
	if r.o.pg && r.o.cfg.notify {
		wg.Go(func() { r.listen(ctx, wakes) })
	}
	for shard := range wakes {
		wg.Go(func() { r.runShard(ctx, shard, wakes[shard]) })
	}
	wg.Wait()
	return nil
}

// listen turns the outbox's notifications into wake-ups of every shard.
func (r *Relay[Tx]) listen(ctx context.Context, wakes []chan struct{}) {
	wakeAll := func() {
		for _, w := range wakes {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
	for ctx.Err() == nil {
		conn, err := r.conner.Conn(ctx)
		if err == nil {
			if _, err = conn.Exec(ctx, `LISTEN "`+r.o.cfg.table+`"`); err == nil {
				wakeAll() // what was notified while nobody listened
			}
			for err == nil {
				if err = conn.WaitForNotification(ctx); err == nil {
					wakeAll()
				}
			}
			conn.Close()
		}
		if errors.Is(err, sqldb.ErrNotifyUnsupported) {
			r.cfg.log.Info("outbox: the driver cannot LISTEN; relays poll", "table", r.o.cfg.table)
			return
		}
		if ctx.Err() == nil {
			r.cfg.log.Warn("outbox: listening for wake-ups", "table", r.o.cfg.table, "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// runShard competes for shard until ctx is done: it waits its turn, and
// publishes while it holds the shard.
func (r *Relay[Tx]) runShard(ctx context.Context, shard int, wake <-chan struct{}) {
	for ctx.Err() == nil {
		held, err := r.hold(ctx, shard, wake)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.cfg.log.Warn("outbox: relay lost its shard", "table", r.o.cfg.table, "shard", shard, "err", err)
		} else if held {
			continue
		}
		sleep(ctx, r.cfg.takeover)
	}
}

// hold takes shard if no other relay holds it and publishes until ctx is
// done or the database fails. On PostgreSQL the shard is a session
// advisory lock on a connection of its own, on which the relay also reads
// and marks: while its statements succeed it still holds the lock, and
// when it dies the server drops the connection and the lock with it.
// SQLite has no such lock: run one relay per database.
func (r *Relay[Tx]) hold(ctx context.Context, shard int, wake <-chan struct{}) (held bool, err error) {
	conn, err := r.conner.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if r.o.pg {
		var ok bool
		if err := sqldb.QueryRow(ctx, conn, "SELECT pg_try_advisory_lock($1::int4, $2::int4)", []any{r.o.relayID, int32(shard)}, &ok); err != nil || !ok {
			return false, err
		}
		if _, err := conn.Exec(ctx, relaySession); err != nil {
			return true, err
		}
	}
	d := r.o.d
	if _, err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s (shard, holder, since, idle) VALUES (%s, %s, %s, false) ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, since = excluded.since, idle = false",
		r.o.relays, d.Arg(1), d.Arg(2), d.Arg(3)), shard, r.cfg.name, d.Time(time.Now())); err != nil {
		return true, err
	}
	r.cfg.log.Info("outbox: relay took its shard", "table", r.o.cfg.table, "shard", shard, "relay", r.cfg.name)
	return true, r.serve(ctx, conn, shard, wake)
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

// relaySession sets up the relay's connection on PostgreSQL. The
// connection is the relay's own, so these settings touch nothing else.
// The fetch must walk the primary key in id order and stop at BatchSize:
// statistics taken while the table held few rows make the planner collect
// the whole backlog with a bitmap scan and sort it instead (30-90 ms per
// batch over a backlog of 100,000 rows, five times the relay's other
// work). Custom plans see the ids of the batch in flight as a constant
// array, which PostgreSQL hashes, instead of comparing each row with each
// id. A mark lost with the last commits of a server crash only publishes
// those rows again, with the same ce_id, which at-least-once allows: the
// relay's commits do not wait for the disk, and leave the WAL flushes to
// the writers.
const relaySession = "SELECT set_config('enable_bitmapscan', 'off', false), set_config('enable_sort', 'off', false), set_config('plan_cache_mode', 'force_custom_plan', false), set_config('synchronous_commit', 'off', false)"

// serve publishes shard's rows on conn until ctx is done or the database
// fails.
//
// It works on two batches at once: while Kafka takes batch N, it marks
// batch N-1 and reads batch N+1 (the oldest unpublished rows other than
// N's), so the database's work and Kafka's overlap. Batch N+1 is sent
// only once every record of N is acknowledged: when one failed, N+1 is
// dropped unsent and the next round reads the table again, so a failed
// row is never overtaken by a later row of its key from another batch.
func (r *Relay[Tx]) serve(ctx context.Context, conn sqldb.Conn, shard int, wake <-chan struct{}) error {
	o, d := r.o, r.o.d
	fetch := fmt.Sprintf("SELECT id, topic, key, value, headers, created_at FROM %s WHERE shard = %s AND NOT (%s) ORDER BY id LIMIT %d",
		o.sqlTable, d.Arg(1), o.idIn(2), r.cfg.batch)
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
	mark := func() error {
		err := r.mark(mctx, conn, shard, acked)
		acked = acked[:0]
		return err
	}
	for ctx.Err() == nil {
		if shard == 0 && !o.cfg.deleteNow && time.Since(lastClean) > min(o.cfg.retention/4, time.Minute) {
			if err := r.cleanup(ctx, conn); err != nil {
				return err
			}
			lastClean = time.Now()
		}
		if ahead {
			batch, next, ahead = next, batch, false
		} else {
			var err error
			if batch, err = r.fetch(ctx, conn, fetch, shard, nil, batch[:0]); err != nil {
				return err
			}
		}
		if len(batch) == 0 {
			switch {
			case quiet < quickPolls:
				quiet++
				sleep(ctx, time.Millisecond)
			case !idle:
				// For Status.
				if _, err := conn.Exec(ctx, setIdle, true, shard); err != nil {
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
			if _, err := conn.Exec(ctx, setIdle, false, shard); err != nil {
				return err
			}
			idle = false
		}
		recs, damaged := records(batch)
		f := r.send(ctx, recs)
		if err := mark(); err != nil {
			return err
		}
		sent = sent[:0]
		for _, x := range batch {
			sent = append(sent, x.id)
		}
		var err error
		if next, err = r.fetch(ctx, conn, fetch, shard, sent, next[:0]); err != nil {
			return err
		}
		if err := r.wait(ctx, conn, shard, f); err != nil {
			return err
		}
		if r.afterPublish != nil {
			r.afterPublish()
		}
		failed := 0
		firstErr := damaged
		for i, rec := range recs {
			if err := f.errs[rec]; err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("outbox: publish row %d to %s: %w", batch[i].id, rec.Topic, err)
				}
				continue
			}
			acked = append(acked, batch[i].id)
		}
		if firstErr == nil && len(next) > 0 {
			ahead, backoff = true, 0
			continue
		}
		// A failure, or nothing more to publish: mark now.
		if err := mark(); err != nil {
			return err
		}
		if firstErr == nil {
			backoff = 0
			continue
		}
		if damaged != nil {
			failed++
		}
		r.cfg.log.Warn("outbox: publishing", "table", r.o.cfg.table, "shard", shard, "rows", failed, "err", firstErr)
		if err := r.lastError(ctx, conn, shard, firstErr); err != nil {
			return err
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), r.cfg.maxBackoff)
		sleep(ctx, backoff)
	}
	return mark()
}

// fetch reads the oldest unpublished rows of shard other than those in
// sent (the batch Kafka is taking) into batch.
func (r *Relay[Tx]) fetch(ctx context.Context, conn sqldb.Conn, query string, shard int, sent []int64, batch []row) ([]row, error) {
	rows, err := conn.Query(ctx, query, shard, r.o.idList(sent))
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
		if hs, err = appendParsedHeaders(hs, x.headers); err != nil {
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
	recs  []*kgo.Record
	mu    sync.Mutex
	errs  map[*kgo.Record]error // the records Kafka failed
	left  int
	done  chan struct{}
	start time.Time
}

// send produces recs; wait waits for the outcome.
func (r *Relay[Tx]) send(ctx context.Context, recs []*kgo.Record) *flight {
	f := &flight{recs: recs, left: len(recs), done: make(chan struct{}), start: time.Now()}
	tel := r.o.cfg.tel
	for _, rec := range recs {
		var span trace.Span
		rec.Context, span = tel.Relay(ctx, rec)
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
	if len(recs) == 0 {
		close(f.done)
	}
	// Produce lingers for more records; nothing more is coming.
	go func() { _ = r.cl.Flush(ctx) }()
	return f
}

// wait waits until Kafka acknowledged or failed each of f's records, or
// ctx is done (an error then: the rows stay unmarked). The client retries
// what Kafka did not take, in order, for as long as it takes, so a batch
// is never given up on while Kafka is away: after AckTimeout it is
// reported in Status, and the wait goes on.
func (r *Relay[Tx]) wait(ctx context.Context, conn sqldb.Conn, shard int, f *flight) error {
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
			if err := r.lastError(ctx, conn, shard, err); err != nil {
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
func (r *Relay[Tx]) mark(ctx context.Context, conn sqldb.Conn, shard int, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows := r.o.rowsArgs(shard, ids)
	if r.keep != "" {
		if _, err := conn.Exec(ctx, r.keep, append([]any{r.o.d.Time(time.Now())}, rows...)...); err != nil || r.o.pg {
			return err
		}
	}
	_, err := conn.Exec(ctx, r.del, rows...)
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
func (r *Relay[Tx]) lastError(ctx context.Context, conn sqldb.Conn, shard int, err error) error {
	o, d := r.o, r.o.d
	_, err = conn.Exec(ctx, fmt.Sprintf("UPDATE %s SET last_error = %s, last_error_at = %s WHERE shard = %s", o.relays, d.Arg(1), d.Arg(2), d.Arg(3)),
		err.Error(), d.Time(time.Now()), shard)
	return err
}

// cleanup deletes rows published longer than the retention ago, in
// chunks, so no statement holds many locks for long.
func (r *Relay[Tx]) cleanup(ctx context.Context, conn sqldb.Conn) error {
	o, d := r.o, r.o.d
	const chunk = 10_000
	del := fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE published_at < %s LIMIT %d)", o.pub, o.pub, d.Arg(1), chunk)
	before := d.Time(time.Now().Add(-o.cfg.retention))
	for {
		n, err := conn.Exec(ctx, del, before)
		if err != nil || n < chunk {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
