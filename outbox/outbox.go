package outbox

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/tracing"
)

// DefaultTable is the outbox table's name unless Table says otherwise.
const DefaultTable = "evbus_outbox"

var (
	//go:embed migrations/postgres.sql
	postgresDDL string
	//go:embed migrations/sqlite.sql
	sqliteDDL string
)

// Outbox writes events into the outbox table in the caller's
// transactions (Enqueue) and hands the table to relays (Relay). It is safe
// for concurrent use.
type Outbox[Tx any] struct {
	db      sqldb.DB[Tx]
	enc     *bus.Encoder
	d       sqldb.Dialect
	pg      bool
	cfg     config
	relays  string // the relays table
	lockKey int32  // the first key of Enqueue's advisory locks
	relayID int32  // the first key of the relays' advisory locks
	insert  string // Enqueue's statement on PostgreSQL
}

type config struct {
	table     string
	shards    int
	notify    bool
	retention time.Duration
	deleteNow bool
	tel       *tracing.Telemetry
}

// Option configures an Outbox.
type Option func(*config)

// Table names the outbox table (default DefaultTable, "evbus_outbox"),
// optionally schema-qualified. The relays' table is its name with
// "_relays" appended.
func Table(name string) Option { return func(c *config) { c.table = name } }

// Shards splits the outbox into n shards by a hash of topic and key
// (default 1). Each shard has its own relay election, so n relay
// instances can publish in parallel; the order of one key is kept because
// a key always falls in the same shard. Changing n while rows are
// unpublished can reorder those rows' keys: drain the outbox first.
func Shards(n int) Option { return func(c *config) { c.shards = n } }

// Notify sets whether Enqueue wakes an idle relay with pg_notify on
// PostgreSQL (default true; SQLite always polls). Off, relays poll.
func Notify(on bool) Option { return func(c *config) { c.notify = on } }

// Retention keeps published rows for d (default 7 days) for audit and
// re-publishing; the relay of shard 0 deletes older ones.
func Retention(d time.Duration) Option { return func(c *config) { c.retention = d } }

// DeleteOnPublish deletes rows once Kafka has acknowledged them, instead
// of keeping them for the Retention.
func DeleteOnPublish() Option { return func(c *config) { c.deleteNow = true } }

// Telemetry sets where the outbox's spans and metrics go:
// tracing.Default() (the global OpenTelemetry providers) by default.
// Enqueue writes the caller's trace context into the row; the relay's
// publish span continues that trace (tracing.LinkRelay links instead),
// and records evbus.outbox.delay, evbus.outbox.backlog and
// evbus.outbox.oldest_age.
func Telemetry(t *tracing.Telemetry) Option {
	return func(c *config) {
		if t != nil {
			c.tel = t
		}
	}
}

// New returns the outbox on db's table, encoding events with enc.
//
// enc may be nil for an outbox that only relays, migrates and reports
// Status (a relay process of its own, an operator's tool): the rows carry
// their encoded records. Enqueue needs it.
func New[Tx any](db sqldb.DB[Tx], enc *bus.Encoder, opts ...Option) (*Outbox[Tx], error) {
	if db == nil {
		return nil, errors.New("outbox: New needs a database")
	}
	cfg := config{table: DefaultTable, shards: 1, notify: true, retention: 7 * 24 * time.Hour, tel: tracing.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if err := sqldb.ValidIdentifier(cfg.table); err != nil {
		return nil, fmt.Errorf("outbox: Table: %w", err)
	}
	relays := cfg.table + "_relays"
	if err := sqldb.ValidIdentifier(relays); err != nil {
		return nil, fmt.Errorf("outbox: Table: %q is too long to append _relays: %w", cfg.table, err)
	}
	if cfg.shards < 1 || cfg.shards > 1024 {
		return nil, fmt.Errorf("outbox: Shards(%d): want 1 to 1024", cfg.shards)
	}
	if cfg.retention <= 0 && !cfg.deleteNow {
		return nil, fmt.Errorf("outbox: Retention(%v): want a positive duration, or DeleteOnPublish", cfg.retention)
	}
	d := db.Dialect()
	o := &Outbox[Tx]{
		db: db, enc: enc, d: d, pg: d.Name() == sqldb.Postgres.Name(), cfg: cfg, relays: relays,
		lockKey: int32(hash("evbus-enqueue:" + cfg.table)),
		relayID: int32(hash("evbus-relay:" + cfg.table)),
	}
	if !o.pg && d.Name() != sqldb.SQLite.Name() {
		return nil, fmt.Errorf("outbox: dialect %q: want postgres or sqlite", d.Name())
	}
	if o.pg {
		o.insert = o.pgInsert()
	}
	return o, nil
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// DDL returns the statements that create the outbox's tables and indexes
// for the dialect: migrations/postgres.sql or migrations/sqlite.sql with
// the configured table name.
func (o *Outbox[Tx]) DDL() string {
	ddl := sqliteDDL
	if o.pg {
		ddl = postgresDDL
	}
	// Index names take no schema: they live in their table's.
	base := o.cfg.table[strings.LastIndexByte(o.cfg.table, '.')+1:]
	return strings.NewReplacer(
		"evbus_outbox_relays", o.relays,
		"evbus_outbox_pending", base+"_pending",
		"evbus_outbox_published", base+"_published",
		DefaultTable, o.cfg.table,
	).Replace(ddl)
}

// Migrate creates the outbox's tables and indexes if they do not exist.
func (o *Outbox[Tx]) Migrate(ctx context.Context) error {
	if err := sqldb.Migrate(ctx, o.db, o.DDL()); err != nil {
		return fmt.Errorf("outbox: migrate %s: %w", o.cfg.table, err)
	}
	return nil
}

// pgInsert is Enqueue's one statement on PostgreSQL: it takes the
// transaction's advisory lock of every (topic, key) it writes, in a fixed
// order (no deadlock between two Enqueues), then inserts the rows in the
// order given, then notifies when a relay of one of the rows' shards said
// it is idle.
func (o *Outbox[Tx]) pgInsert() string {
	notify := "SELECT NULL WHERE false"
	if o.cfg.notify {
		notify = fmt.Sprintf("SELECT pg_notify('%s', '') FROM %s WHERE idle AND shard = ANY($3) LIMIT 1", o.cfg.table, o.relays)
	}
	return fmt.Sprintf(`WITH l AS (SELECT pg_advisory_xact_lock($1::int4, k) FROM unnest($2::int4[]) AS k),
ins AS (INSERT INTO %s (shard, topic, key, value, headers, created_at)
  SELECT u.s, u.t, u.k, u.v, u.h, u.c FROM unnest($3::int4[], $4::text[], $5::bytea[], $6::bytea[], $7::bytea[], $8::timestamptz[]) WITH ORDINALITY AS u(s, t, k, v, h, c, n)
  WHERE (SELECT count(*) FROM l) >= 0 ORDER BY u.n)
%s`, o.cfg.table, notify)
}

// Enqueue encodes events (values or pointers of the encoder's registered
// types) and writes them into the outbox in tx, in the order given. It
// fails, writing nothing, when an event cannot be encoded; the caller then
// rolls tx back. The rows become visible to the relay when tx commits.
//
// On PostgreSQL, Enqueue holds a transaction-scoped advisory lock on each
// (topic, key) it writes until tx ends, so transactions that write one key
// take turns, and a key's rows get their ids in commit order (see the
// package documentation). Enqueue events of several keys in one call
// rather than in several calls in varying key order: two transactions
// locking two keys in opposite orders deadlock, and PostgreSQL aborts one.
func (o *Outbox[Tx]) Enqueue(ctx context.Context, tx Tx, events ...any) error {
	if len(events) == 0 {
		return nil
	}
	query, args, err := o.statement(ctx, events)
	if err != nil {
		return err
	}
	if _, err := o.db.In(tx).Exec(ctx, query, args...); err != nil {
		return fmt.Errorf("outbox: enqueue into %s: %w", o.cfg.table, err)
	}
	return nil
}

// Queue adds to b the statement that enqueues events, as Enqueue would
// run it, for a caller that sends its business statements and the outbox
// rows to PostgreSQL in one pgx batch, in its transaction: one round trip
// instead of two, which is what a writer's transaction rate depends on.
// The statement's error comes with the batch's results.
func Queue(ctx context.Context, o *Outbox[pgx.Tx], b *pgx.Batch, events ...any) error {
	if len(events) == 0 {
		return nil
	}
	query, args, err := o.statement(ctx, events)
	if err != nil {
		return err
	}
	b.Queue(query, args...)
	return nil
}

// statement encodes events and returns the statement that writes their
// rows, with its arguments.
func (o *Outbox[Tx]) statement(ctx context.Context, events []any) (string, []any, error) {
	if o.enc == nil {
		return "", nil, errors.New("outbox: Enqueue on an outbox made without a *bus.Encoder: pass one to New")
	}
	n := len(events)
	shards := make([]int32, n)
	topics := make([]string, n)
	keys := make([][]byte, n)
	values := make([][]byte, n)
	headers := make([][]byte, n)
	times := make([]time.Time, n)
	locks := make([]int32, n)
	for i, ev := range events {
		rec, err := o.enc.Record(ctx, ev)
		if err != nil {
			return "", nil, fmt.Errorf("outbox: enqueue event %d of %d: %w", i+1, n, err)
		}
		// The row carries a span of the caller's trace: the relay's
		// publish span continues it.
		o.cfg.tel.Create(ctx, rec)
		h := keyHash(rec.Topic, rec.Key)
		shards[i] = int32(h % uint32(o.cfg.shards))
		locks[i] = int32(h)
		topics[i], keys[i], values[i], times[i] = rec.Topic, rec.Key, rec.Value, rec.Timestamp
		headers[i] = appendHeaders(nil, rec.Headers)
	}
	if o.pg {
		slices.Sort(locks)
		locks = slices.Compact(locks)
		return o.insert, []any{o.lockKey, locks, shards, topics, keys, values, headers, times}, nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + o.cfg.table + " (shard, topic, key, value, headers, created_at) VALUES ")
	args := make([]any, 0, 6*n)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		j := len(args)
		fmt.Fprintf(&b, "(%s, %s, %s, %s, %s, %s)", o.d.Arg(j+1), o.d.Arg(j+2), o.d.Arg(j+3), o.d.Arg(j+4), o.d.Arg(j+5), o.d.Arg(j+6))
		args = append(args, shards[i], topics[i], keys[i], values[i], headers[i], o.d.Time(times[i]))
	}
	return b.String(), args, nil
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
}

// Status reads the outbox's state.
func (o *Outbox[Tx]) Status(ctx context.Context) (Status, error) {
	var s Status
	var oldest sqldb.Time
	if err := sqldb.QueryRow(ctx, o.db, "SELECT count(*), min(created_at) FROM "+o.cfg.table+" WHERE published_at IS NULL", nil, &s.Backlog, &oldest); err != nil {
		return s, fmt.Errorf("outbox: status of %s: %w", o.cfg.table, err)
	}
	if oldest.Valid {
		s.Oldest, s.Age = oldest.Time, time.Since(oldest.Time)
	}
	active := "1"
	if o.pg {
		active = fmt.Sprintf("EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = %d::oid AND objid = shard::oid AND objsubid = 2)", uint32(o.relayID))
	}
	rows, err := o.db.Query(ctx, "SELECT shard, holder, since, "+active+", idle, last_error, last_error_at FROM "+o.relays+" ORDER BY shard")
	if err != nil {
		return s, fmt.Errorf("outbox: status of %s: %w", o.relays, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r RelayStatus
		var since, errAt sqldb.Time
		var act, idle any
		if err := rows.Scan(&r.Shard, &r.Holder, &since, &act, &idle, &r.LastError, &errAt); err != nil {
			return s, fmt.Errorf("outbox: status of %s: %w", o.relays, err)
		}
		r.Since, r.LastErrorAt, r.Active, r.Idle = since.Time, errAt.Time, truth(act), truth(idle)
		s.Relays = append(s.Relays, r)
	}
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("outbox: status of %s: %w", o.relays, err)
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
