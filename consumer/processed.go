package consumer

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/evbus/evbus/sqldb"
)

// defaultTable is the processed-message table's name unless Table says
// otherwise.
const defaultTable = "evbus_processed"

// migrations holds the processed-message table's DDL, one file per
// dialect (named after Dialect.Name), for the default table name: what
// Migrate runs, and what teams that run their own migrations copy.
//
//go:embed migrations/*.sql
var migrations embed.FS

// MaxStoredIDLen is the longest message id, in bytes, that the
// processed-message table stores as it is (ProcessedID).
const MaxStoredIDLen = 512

// digestPrefix marks a message id stored as its digest.
const digestPrefix = "evbus-sha256:"

// ProcessedID returns the form in which the processed-message table
// stores a message id, the same on every database: the id itself when it
// is valid UTF-8 without NUL, at most MaxStoredIDLen bytes and does not
// begin with "evbus-sha256:"; else "evbus-sha256:" and the hex SHA-256 of
// its bytes. Kafka takes any bytes in a ce_id header, PostgreSQL's text
// takes neither NUL nor invalid UTF-8, and its index takes no entry of
// more than about 2.7 KB: every id gets a row, and distinct ids distinct
// rows (an id that looks like a digest is digested itself). Use it to
// look a message up in the table.
func ProcessedID(id string) string {
	if len(id) <= MaxStoredIDLen && utf8.ValidString(id) && !strings.ContainsRune(id, 0) && !strings.HasPrefix(id, digestPrefix) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return digestPrefix + hex.EncodeToString(sum[:])
}

// ProcessedOption configures a Processed.
type ProcessedOption func(*processedConfig)

type processedConfig struct {
	table string
}

// Table sets the processed-message table's name, optionally
// schema-qualified ("svc.processed": a
// PostgreSQL schema, or an SQLite database). It follows
// sqldb.ValidIdentifier's rule, checked by NewProcessed, and is quoted in
// every statement (sqldb.QuoteTable), so SQL keywords are fine; its index
// is named after it, with "_time_idx" appended. Default: evbus_processed.
func Table(name string) ProcessedOption {
	return func(c *processedConfig) { c.table = name }
}

// Processed is a processed-message table in the service's database: the
// set of message ids each consumer group has handled, written in the same
// transaction as the handler's own changes (HandleTx). Its methods are
// safe for concurrent use.
type Processed[Tx any] struct {
	db    sqldb.DB[Tx]
	table string
	ddl   string
	// Statements, written once for the table and dialect.
	claimOne, claimMany, unclaimOne, cleanup string
}

// cleanupChunk bounds the rows one Cleanup statement deletes, so that no
// transaction holds many locks for long.
const cleanupChunk = 5000

// NewProcessed returns the processed-message table of db. Create the
// table with Migrate, or with the statements of MigrationSQL (the files
// in the module's consumer/migrations directory, for the default name).
// It fails for a nil db, a bad table name (wrapping
// sqldb.ErrInvalidIdentifier), and a dialect evbus has no migration for.
func NewProcessed[Tx any](db sqldb.DB[Tx], opts ...ProcessedOption) (*Processed[Tx], error) {
	if err := sqldb.Check(db); err != nil {
		return nil, fmt.Errorf("consumer: NewProcessed: %w", err)
	}
	cfg := processedConfig{table: defaultTable}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("consumer: NewProcessed: option %d is nil", i+1)
		}
		o(&cfg)
	}
	d := db.Dialect()
	file, err := migrations.ReadFile("migrations/" + d.Name() + ".sql")
	if err != nil {
		return nil, fmt.Errorf("consumer: NewProcessed: no processed-message table migration for the %q dialect (evbus has postgres and sqlite)", d.Name())
	}
	const indexSuffix = "_time_idx"
	table, err := sqldb.QuoteTable(d, cfg.table, indexSuffix)
	if err != nil {
		return nil, fmt.Errorf("consumer: Table(%q): %w", cfg.table, err)
	}
	t, a := table.String(), d.Arg
	p := &Processed[Tx]{
		db:    db,
		table: cfg.table,
		// The files quote the default names.
		ddl: strings.NewReplacer(
			`"`+defaultTable+indexSuffix+`" ON "`+defaultTable+`"`, table.IndexOn(indexSuffix),
			`"`+defaultTable+`"`, t,
		).Replace(string(file)),
		claimOne:   "INSERT INTO " + t + " (consumer_group, message_id, processed_at) VALUES (" + a(1) + ", " + a(2) + ", " + a(3) + ") ON CONFLICT DO NOTHING",
		unclaimOne: "DELETE FROM " + t + " WHERE consumer_group = " + a(1) + " AND message_id = " + a(2),
		cleanup: "DELETE FROM " + t + " WHERE (consumer_group, message_id) IN (SELECT consumer_group, message_id FROM " + t +
			" WHERE processed_at < " + a(1) + " LIMIT " + itoa(cleanupChunk) + ")",
	}
	if d.Name() == sqldb.Postgres.Name() {
		// One statement for a whole batch, which also says which ids are
		// new. (SQLite runs in the process: a statement per id costs
		// little there.)
		p.claimMany = "INSERT INTO " + t + " (consumer_group, message_id, processed_at) SELECT $1::text, unnest($2::text[]), $3::timestamptz ON CONFLICT DO NOTHING RETURNING message_id"
	}
	return p, nil
}

// Table returns the table's name.
func (p *Processed[Tx]) Table() string { return p.table }

// MigrationSQL returns the statements Migrate runs: the migration file of
// the database's dialect, with the configured table name.
func (p *Processed[Tx]) MigrationSQL() string { return p.ddl }

// Migrate creates the table and its index if they are missing, in one
// transaction. It changes nothing that exists. Run it when the service
// starts, before the consumer, or run MigrationSQL with the service's own
// migrations.
func (p *Processed[Tx]) Migrate(ctx context.Context) error {
	if err := sqldb.Migrate(ctx, p.db, p.ddl); err != nil {
		return fmt.Errorf("consumer: creating the processed-message table %s: %w", p.table, err)
	}
	return nil
}

// Cleanup deletes the rows of every consumer group processed more than
// olderThan ago, and returns how many it deleted. It deletes in chunks of
// a few thousand rows, each its own statement, so it can run from every
// instance of a service at once (say, every hour): they delete each row
// once, and an error (a lock conflict between two of them) leaves the rest
// for the next run.
//
// Choose olderThan longer than the longest time after which a message can
// come again: the retention of the topics the group reads (a group reset
// to the earliest offset reads that far back) plus how long after a
// failure dead-letter records may be replayed (the dead-letter topic's
// retention, or the operators' habit). A message that comes back after
// its row was deleted is handled again.
func (p *Processed[Tx]) Cleanup(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("consumer: Cleanup(%v): want a positive age", olderThan)
	}
	before := p.db.Dialect().Time(time.Now().Add(-olderThan))
	var total int64
	for {
		n, err := p.db.Exec(ctx, p.cleanup, before)
		total += n
		if err != nil {
			return total, fmt.Errorf("consumer: cleaning up %s: %w", p.table, err)
		}
		if n < cleanupChunk {
			return total, nil
		}
	}
}

// txn is a transaction of a store, its type erased.
type txn struct {
	tx any
	q  sqldb.Querier
}

// store is a Processed with its transaction type erased, so the pipeline
// is not generic.
type store interface {
	begin(ctx context.Context) (txn, error)
	commit(ctx context.Context, t txn) error
	rollback(ctx context.Context, t txn)
	ping(ctx context.Context) error
	// claim inserts the rows of ids; fresh[i] says whether ids[i] was new
	// (only its first occurrence in ids can be).
	claim(ctx context.Context, t txn, group string, ids []string, at time.Time) (fresh []bool, err error)
	// unclaim deletes the rows of ids.
	unclaim(ctx context.Context, t txn, group string, ids []string) error
}

func (p *Processed[Tx]) begin(ctx context.Context) (txn, error) {
	tx, err := p.db.Begin(ctx)
	if err != nil {
		return txn{}, err
	}
	return txn{tx: tx, q: p.db.In(tx)}, nil
}

func (p *Processed[Tx]) commit(ctx context.Context, t txn) error { return p.db.Commit(ctx, t.tx.(Tx)) }

func (p *Processed[Tx]) rollback(ctx context.Context, t txn) {
	// Its error is not the news: the transaction is abandoned either way.
	_ = p.db.Rollback(context.WithoutCancel(ctx), t.tx.(Tx))
}

func (p *Processed[Tx]) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return p.db.Ping(ctx)
}

// pingTimeout bounds the check whether the database answers after a
// handler failed.
const pingTimeout = 5 * time.Second

func (p *Processed[Tx]) claim(ctx context.Context, t txn, group string, ids []string, at time.Time) ([]bool, error) {
	fresh := make([]bool, len(ids))
	if len(ids) == 1 || p.claimMany == "" {
		ts := p.db.Dialect().Time(at)
		for i, id := range ids {
			n, err := t.q.Exec(ctx, p.claimOne, group, id, ts)
			if err != nil {
				return nil, err
			}
			fresh[i] = n == 1
		}
		return fresh, nil
	}
	rows, err := t.q.Query(ctx, p.claimMany, group, ids, at)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	added := make(map[string]struct{}, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		added[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		if _, ok := added[id]; ok {
			fresh[i] = true
			delete(added, id) // a later occurrence is not new
		}
	}
	return fresh, nil
}

func (p *Processed[Tx]) unclaim(ctx context.Context, t txn, group string, ids []string) error {
	for _, id := range ids {
		if _, err := t.q.Exec(ctx, p.unclaimOne, group, id); err != nil {
			return err
		}
	}
	return nil
}
