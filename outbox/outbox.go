package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/tracing"
	"github.com/evbus/evbus/wire"
)

// defaultTable is the outbox table's name unless Table says otherwise.
const defaultTable = "evbus_outbox"

// Outbox writes events into the outbox table in the caller's
// transactions (Enqueue) and hands the table to relays (Relay). It is safe
// for concurrent use.
type Outbox[Tx any] struct {
	db  sqldb.DB[Tx]
	enc *bus.Encoder
	d   sqldb.Dialect
	sql *statements
	cfg config

	// born is when New made the Outbox, and notified when (since born) a
	// statement last notified the relays, minus notifyEvery at first.
	born     time.Time
	notified atomic.Int64

	texts  sync.Map // shape -> stmt: the statements built so far
	ntexts atomic.Int64
}

type config struct {
	table     string
	shards    int
	notify    bool
	retention time.Duration
	deleteNow bool
	maxEvent  int
	telOpt    telemetry.Choice // as given; New resolves it into tel
	tel       *telemetry.T
	log       *slog.Logger
}

// Option configures an Outbox, and the relays made from it. An option
// only records its value; New checks them all and names the one at
// fault.
type Option func(*config)

// Table names the outbox table, optionally schema-qualified
// ("events.outbox": a PostgreSQL schema, or an SQLite database).
// Default: "evbus_outbox". The published rows' table is its name with
// "_published" appended, and the relays' table with "_relays". The name
// follows sqldb.ValidIdentifier's rule, checked by New, and is quoted in
// every statement (sqldb.QuoteTable), so SQL keywords are fine.
func Table(name string) Option { return func(c *config) { c.table = name } }

// Shards splits the outbox into n shards by a hash of topic and key
// (default 1). Each shard has its own relay election, so n relay
// instances can publish in parallel; the order of one key is kept because
// a key always falls in the same shard. Changing n while rows are
// unpublished can reorder those rows' keys: drain the outbox first.
func Shards(n int) Option { return func(c *config) { c.shards = n } }

// Notify sets whether Enqueue wakes the relays with pg_notify on
// PostgreSQL (default true; SQLite always polls): at most one statement
// every few milliseconds per Outbox notifies, so that concurrent commits
// do not take turns on the server's notification lock. Off, relays poll.
func Notify(on bool) Option { return func(c *config) { c.notify = on } }

// Retention keeps published rows for d (default 7 days) for audit and
// re-publishing, in the published rows' table (see Table); the relay of
// shard 0 deletes older ones.
func Retention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// DeleteOnPublish deletes rows once Kafka has acknowledged them, instead
// of keeping them for the Retention.
func DeleteOnPublish() Option { return func(c *config) { c.deleteNow = true } }

// MaxEventBytes is the largest event Enqueue accepts, counted as Kafka
// counts a record batch that holds its record alone (key, value, headers
// and the batch's overhead). Default: 1,000,012, franz-go's default
// kgo.ProducerBatchMaxBytes, which Kafka's default max.message.bytes
// (1,048,588) takes, so a relay's client with the default takes every
// event Enqueue accepts. Enqueue
// refuses a larger one with bus.ErrTooLarge, so that no row is written
// that a relay could never publish; Relay refuses a Kafka client whose
// kgo.ProducerBatchMaxBytes is smaller. Set it to the smallest
// max.message.bytes of the outbox's topics when one is lower than the
// default: the relay checks each record against its topic's, and a row
// over it is stuck (see StuckRow).
func MaxEventBytes(n int) Option { return func(c *config) { c.maxEvent = n } }

// Telemetry sets where the outbox's spans and metrics go:
// tracing.Default() (the global OpenTelemetry providers) by default.
// Enqueue writes the caller's trace context into the row; the relay's
// publish span continues that trace (tracing.LinkRelay links instead),
// and records evbus.outbox.delay, evbus.outbox.backlog and
// evbus.outbox.oldest_age. New refuses nil.
func Telemetry(t *tracing.Telemetry) Option {
	return func(c *config) { c.telOpt.Set((*telemetry.T)(t)) }
}

// Logger receives the events of the outbox's relays: shards taken and
// lost, stuck rows, errors of the database and of Kafka. Default:
// slog.Default(). An option of the Outbox, as Telemetry is, rather than
// of each Relay: the outbox's events go to one place, and the logger
// option has one name in every evbus package. New refuses nil.
func Logger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// New returns the outbox on db's table, encoding events with enc.
//
// enc may be nil for an outbox that only relays, migrates and reports
// Status (a relay process of its own, an operator's tool): the rows carry
// their encoded records. Enqueue needs it.
func New[Tx any](db sqldb.DB[Tx], enc *bus.Encoder, opts ...Option) (*Outbox[Tx], error) {
	if err := sqldb.Check(db); err != nil {
		return nil, fmt.Errorf("outbox: New: %w", err)
	}
	cfg := config{table: defaultTable, shards: 1, notify: true, retention: 7 * 24 * time.Hour, maxEvent: defaultMaxEventBytes, log: slog.Default()}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("outbox: New: option %d is nil", i+1)
		}
		o(&cfg)
	}
	tel, err := cfg.telOpt.Resolve("outbox")
	if err != nil {
		return nil, err
	}
	cfg.tel = tel
	if cfg.shards < 1 || cfg.shards > 1024 {
		return nil, fmt.Errorf("outbox: Shards(%d): want 1 to 1024", cfg.shards)
	}
	if cfg.maxEvent < 512 || cfg.maxEvent > 1<<30 {
		return nil, fmt.Errorf("outbox: MaxEventBytes(%d): want 512 to %d, as kgo.ProducerBatchMaxBytes", cfg.maxEvent, 1<<30)
	}
	if cfg.retention <= 0 && !cfg.deleteNow {
		return nil, fmt.Errorf("outbox: Retention(%v): want a positive duration, or DeleteOnPublish", cfg.retention)
	}
	if cfg.log == nil {
		return nil, errors.New("outbox: Logger(nil): pass a *slog.Logger, or leave the option out (slog.Default())")
	}
	d := db.Dialect()
	stmts, err := newStatements(d, cfg.table)
	if err != nil {
		return nil, err
	}
	o := &Outbox[Tx]{db: db, enc: enc, d: d, sql: stmts, cfg: cfg, born: time.Now()}
	o.notified.Store(-int64(notifyEvery))
	return o, nil
}

// DDL returns the statements that create the outbox's tables and indexes
// for the dialect: migrations/postgres.sql or migrations/sqlite.sql with
// the configured table name.
func (o *Outbox[Tx]) DDL() string { return o.sql.ddl }

// Migrate creates the outbox's tables and indexes if they do not exist,
// and upgrades those of an evbus from before the published rows' table
// (migrations/upgrade-*.sql), keeping every row.
func (o *Outbox[Tx]) Migrate(ctx context.Context) error {
	if ctx == nil {
		return errors.New("outbox: Migrate: nil context")
	}
	s := o.sql
	// The relays' stuck column came later than their table.
	if err := sqldb.Migrate(ctx, o.db, s.ddl, sqldb.Upgrade{Due: s.upgradeDue, Before: s.upgradeBefore, After: s.upgradeAfter}, sqldb.Upgrade{Due: s.stuckDue, After: s.addStuck}); err != nil {
		return fmt.Errorf("outbox: migrate %s: %w", o.cfg.table, err)
	}
	return nil
}

// chunkRows is how many rows one statement inserts, so that a statement
// stays under the parameter limits (PostgreSQL 65,535; SQLite 32,766)
// however many events one call writes.
const chunkRows = 1000

// Enqueue encodes events (values or pointers of the encoder's registered
// types) and writes them into the outbox in tx, in the order given. It
// fails, writing nothing, when an event cannot be encoded; the caller then
// rolls tx back. The rows become visible to the relay when tx commits.
//
// On PostgreSQL, Enqueue holds a transaction-scoped advisory lock on each
// (topic, key) it writes until tx ends, so transactions that write one key
// take turns, and a key's rows get their ids in commit order (see
// docs/design/outbox.md). Enqueue events of several keys in one call
// rather than in several calls in varying key order: two transactions
// locking two keys in opposite orders deadlock, and PostgreSQL aborts one.
func (o *Outbox[Tx]) Enqueue(ctx context.Context, tx Tx, events ...any) error {
	return o.Exec(ctx, tx, "", nil, events...)
}

// Exec runs the business statement query with args and enqueues events
// as Enqueue does, in tx. On PostgreSQL both go to the server as one
// statement (query becomes a data-modifying WITH clause of the outbox
// insert): one round trip and one statement less per transaction, which
// is what many concurrent writers' transaction rate depends on. query is
// then an INSERT, UPDATE or DELETE (what PostgreSQL accepts in WITH),
// with its parameters numbered from $1; the outbox's come after them. On
// SQLite, query runs first, then the insert.
//
// Exec reports no row count: when the business statement's effect
// decides whether the events are due (an update guarded by a version
// that may match no row), run it alone and call Enqueue.
//
// With pgx, Exec and Enqueue run their statements through
// sqldb.ExecPrepared: prepared on the transaction's connection, where
// they stay, for the first 64 statement shapes (business statement, rows,
// notification) an Outbox builds; the others as pgx runs any statement.
func (o *Outbox[Tx]) Exec(ctx context.Context, tx Tx, query string, args []any, events ...any) error {
	if ctx == nil {
		return errors.New("outbox: Enqueue: nil context")
	}
	// A nil tx (a nil pgx.Tx or *sql.Tx) gets sqldb's querier whose
	// statements fail, naming it.
	q := o.db.In(tx)
	return o.inserts(ctx, query, args, events, func(s stmt, a []any, rows int) error {
		var n int64
		var err error
		if s.prepare {
			n, err = sqldb.ExecPrepared(ctx, q, s.text, a...)
		} else {
			n, err = q.Exec(ctx, s.text, a...)
		}
		if err == nil && rows >= 0 && n != int64(rows) {
			// The statement inserts every row or fails; anything else
			// would lose events silently.
			err = fmt.Errorf("inserted %d of %d rows", n, rows)
		}
		if err != nil {
			if query != "" {
				return fmt.Errorf("outbox: exec and enqueue into %s: %w", o.cfg.table, err)
			}
			return fmt.Errorf("outbox: enqueue into %s: %w", o.cfg.table, err)
		}
		return nil
	})
}

// Queue adds to b the statements that enqueue events, as Enqueue would
// run them, for a caller that sends its business statements and the
// outbox rows to PostgreSQL in one pgx batch, in its transaction: one
// round trip instead of two. The statements' errors come with the batch's
// results. Exec also saves the second statement.
func Queue(ctx context.Context, o *Outbox[pgx.Tx], b *pgx.Batch, events ...any) error {
	return o.inserts(ctx, "", nil, events, func(s stmt, a []any, _ int) error {
		b.Queue(s.text, a...)
		return nil
	})
}

// notifyEvery is how often, at most, an Outbox's statements notify the
// relays. A commit that notifies holds the server's notification lock
// until its commit is on disk, so notifying commits take turns; at most
// one per notifyEvery per process keeps the others free of that lock.
// A row that does not notify is found all the same: the relay woken by
// the notification of a row at most notifyEvery older keeps looking every
// millisecond for quickPolls milliseconds after the last row it found.
const notifyEvery = 4 * time.Millisecond

// notifyDue reports whether the statement being built notifies, and if
// so starts a new notifyEvery.
func (o *Outbox[Tx]) notifyDue() bool {
	now := time.Since(o.born)
	last := o.notified.Load()
	return now-time.Duration(last) >= notifyEvery && o.notified.CompareAndSwap(last, int64(now))
}

// inserts encodes events and calls run with each statement that runs
// query (when not empty) and writes the events' rows, in order, its
// arguments and the number of rows it inserts into the outbox (-1 for
// query alone); it returns the first error of the encoding or of run.
//
// With keyLocks (PostgreSQL) the first statement takes the transaction's
// advisory lock of every (topic, key) written, in a fixed order (no
// deadlock between two Enqueues), before any row gets its id; the rows
// get theirs in the order given; and, with Notify, it notifies the relays
// when no statement of this Outbox did in the last notifyEvery.
func (o *Outbox[Tx]) inserts(ctx context.Context, query string, args []any, events []any, run func(s stmt, args []any, rows int) error) error {
	if len(events) == 0 {
		if query == "" {
			return nil
		}
		return run(stmt{text: query}, args, -1)
	}
	if o.enc == nil {
		return errors.New("outbox: Enqueue on an outbox made without a *bus.Encoder: pass one to New")
	}
	// Without inlineQuery (SQLite) the business statement runs alone, once
	// the events are encoded.
	var biz string
	var bizArgs []any
	if query != "" && !o.sql.inlineQuery {
		biz, bizArgs, query, args = query, args, "", nil
	}
	// The arguments of every statement, one after the other: the business
	// statement's, then the rows', then room for the first statement's
	// lock, so that a call of one statement copies none.
	n, m := len(events), len(args)
	vals := make([]any, 0, m+6*n+1)
	vals = append(vals, args...)
	var one [1]int32 // the lock of one key (the common case) takes no allocation
	locks := one[:0]
	s := scratches.Get().(*scratch)
	defer s.release()
	rec := &s.rec
	rec.Headers = s.headers[:0] // RecordInto writes every event's headers into this room
	for i, ev := range events {
		if err := o.enc.RecordInto(ctx, ev, rec); err != nil {
			return fmt.Errorf("outbox: enqueue event %d of %d: %w", i+1, n, err)
		}
		// The row carries a span of the caller's trace: the relay's
		// publish span continues it.
		o.cfg.tel.Create(ctx, rec)
		if err := o.tooLarge(ev, rec, i+1, n); err != nil {
			return err
		}
		h := keyHash(rec.Topic, rec.Key)
		if o.sql.keyLocks {
			locks = append(locks, int32(h))
		}
		vals = append(vals, int32(h%uint32(o.cfg.shards)), rec.Topic, rec.Key, rec.Value, wire.AppendHeadersColumn(nil, rec.Headers), o.d.Time(rec.Timestamp))
	}
	if biz != "" {
		if err := run(stmt{text: biz}, bizArgs, -1); err != nil {
			return err
		}
	}
	for start := 0; start < n; start += chunkRows {
		end := min(start+chunkRows, n)
		a := vals[m+6*start : m+6*end]
		if start == 0 {
			a = vals[:m+6*end]
		}
		if end < n {
			a = slices.Clip(a) // the lock's argument must not overwrite the next rows
		}
		t := shape{query: query, skip: len(args), rows: end - start}
		if o.sql.keyLocks && start == 0 {
			slices.Sort(locks)
			locks = slices.Compact(locks)
			t.locks = min(len(locks), 2)
			if len(locks) == 1 {
				a = append(a, locks[0])
			} else {
				a = append(a, slices.Clone(locks)) // a copy, so that one does not escape
			}
			t.notify = o.cfg.notify && o.notifyDue()
		}
		if err := run(o.text(t), a, end-start); err != nil {
			return err
		}
		query, args = "", nil
	}
	return nil
}

// scratch is the record statements encodes each event into, and room for
// its headers: what a row needs is copied out of it (the headers column)
// or shares the record's buffer (key, value), so one serves every event.
type scratch struct {
	rec     kgo.Record
	headers [bus.RecordHeaders]kgo.RecordHeader
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

// release returns s to scratches, holding nothing of the last event.
func (s *scratch) release() {
	*s = scratch{}
	scratches.Put(s)
}

// maxTexts bounds the statement texts an Outbox keeps, for a caller whose
// business statements are built anew every time; the first maxPrepared
// of them are prepared on each connection that runs them, where they stay
// for the connection's life.
const (
	maxTexts    = 1024
	maxPrepared = 64
)

// stmt is a statement's text, and whether Exec runs it prepared.
type stmt struct {
	text    string
	prepare bool
}

// text returns the statement of shape t, built once for the few shapes a
// service runs over and over.
func (o *Outbox[Tx]) text(t shape) stmt {
	if q, ok := o.texts.Load(t); ok {
		return q.(stmt)
	}
	q := stmt{text: o.sql.insert(t)}
	if n := o.ntexts.Add(1); n <= maxTexts {
		q.prepare = n <= maxPrepared
		o.texts.Store(t, q)
	}
	return q
}

// keyHash places a (topic, key) in a shard and names its advisory lock.
func keyHash(topic string, key []byte) uint32 {
	h := fnv.New32a()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(key)
	return h.Sum32()
}

// Status is the outbox's state, for operators.
type Status struct {
	// Backlog is the number of committed rows not yet published.
	Backlog int64
	// Oldest is when the oldest of them was enqueued (zero when none),
	// and Age how long ago.
	Oldest time.Time
	Age    time.Duration
	// Relays has an entry for every shard a relay has held.
	Relays []RelayStatus
}

// RelayStatus is the state of one shard's relay.
type RelayStatus struct {
	Shard int
	// Holder names the relay that took the shard last (RelayName), and
	// Since when.
	Holder string
	Since  time.Time
	// Active reports whether Holder still holds the shard (PostgreSQL:
	// its advisory lock is held; SQLite: always true, unknown).
	Active bool
	// Idle: the relay found nothing to publish and waits for a wake-up.
	Idle bool
	// LastError is the last publishing error, and LastErrorAt its time.
	LastError   string
	LastErrorAt time.Time
	// Stuck lists the rows the relay cannot publish (the first 100),
	// oldest first: each holds back the later rows of its key.
	Stuck []StuckRow
}

// Status reads the outbox's state.
func (o *Outbox[Tx]) Status(ctx context.Context) (Status, error) {
	if ctx == nil {
		return Status{}, errors.New("outbox: Status: nil context")
	}
	return status(ctx, o.db, o.sql, o.cfg.table)
}

// status reads the Status of the outbox table on db.
func status(ctx context.Context, db sqldb.Querier, stmts *statements, table string) (Status, error) {
	var s Status
	var oldest sqldb.Time
	if err := sqldb.QueryRow(ctx, db, stmts.backlog, nil, &s.Backlog, &oldest); err != nil {
		return s, fmt.Errorf("outbox: status of %s: %w", table, err)
	}
	if oldest.Valid {
		s.Oldest, s.Age = oldest.Time, time.Since(oldest.Time)
	}
	rows, err := db.Query(ctx, stmts.relays)
	if err != nil {
		return s, fmt.Errorf("outbox: status of %s: %w", table+"_relays", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r RelayStatus
		var since, errAt sqldb.Time
		var act, idle any
		var stuck string
		if err := rows.Scan(&r.Shard, &r.Holder, &since, &act, &idle, &r.LastError, &errAt, &stuck); err != nil {
			return s, fmt.Errorf("outbox: status of %s: %w", table+"_relays", err)
		}
		if stuck != "" {
			if err := json.Unmarshal([]byte(stuck), &r.Stuck); err != nil {
				return s, fmt.Errorf("outbox: status of %s: shard %d's stuck rows: %w", table+"_relays", r.Shard, err)
			}
		}
		r.Since, r.LastErrorAt, r.Active, r.Idle = since.Time, errAt.Time, truth(act), truth(idle)
		s.Relays = append(s.Relays, r)
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("outbox: status of %s: %w", table+"_relays", err)
	}
	return s, nil
}

// truth reads a boolean column of either dialect.
func truth(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case int64:
		return b != 0
	}
	return false
}
