package outbox

import (
	_ "embed"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/evbus/evbus/sqldb"
)

// statements are an outbox's SQL for its dialect and table, built once by
// New: sql_postgres.go and sql_sqlite.go write every statement evbus runs
// on the outbox's tables, and say what the dialect can do, so that the
// rest of the package neither writes SQL nor asks which dialect it runs
// on. testdata/statements.golden shows every statement's final text.
type statements struct {
	// ddl creates the tables and indexes (Outbox.DDL). upgradeDue counts
	// the columns that say the tables are from before the published rows'
	// table, which upgradeBefore and upgradeAfter upgrade around ddl;
	// stuckDue says the relays' table has no stuck column, which
	// addStuck adds.
	ddl                                     string
	upgradeDue, upgradeBefore, upgradeAfter string
	stuckDue, addStuck                      string

	// insert returns the statement that writes the rows of shape t.
	insert func(t shape) string
	// inlineQuery: a business statement runs as a WITH clause of the
	// first insert; else on its own before it.
	inlineQuery bool
	// keyLocks: the first insert of a transaction takes the advisory
	// lock of each (topic, key) it writes (shape.locks), and may notify
	// the relays (shape.notify).
	keyLocks bool

	// backlog and relays read Status: the unpublished rows, and the
	// shards' relays.
	backlog, relays string

	// session: relays compete for each shard with an advisory lock
	// (tryLocks: the shards to try) held on a connection
	// of their own, which also listens for wake-ups (listen); else there
	// is one relay per database, which claims every shard.
	session          bool
	listen, tryLocks string
	// claim records the relay as a shard's holder (shard, holder, since);
	// setIdle (idle, shard), lastError (error, at, shard) and saveStuck
	// (stuck rows as JSON, shard) record its state for Status.
	claim, setIdle, lastError, saveStuck string

	// batchSettings set up the transaction of a batch's statements; ""
	// when they run each on its own, outside a transaction.
	batchSettings string
	// fetch reads a shard's oldest rows (shard, ids not to read, limit);
	// fetchSkipping also skips the keys of stuck rows (keys' arguments
	// after the limit).
	fetch, fetchSkipping string
	// recheck reads which of a batch's rows are still there (the four
	// arguments of rowsArgs).
	recheck string
	// del deletes a batch's rows (rowsArgs). keep keeps them in the
	// published rows' table (the time they were published, then rowsArgs),
	// and deletes them too unless delAfterKeep must follow.
	del, keep, delAfterKeep string
	// cleanup deletes up to cleanupChunk rows published before its
	// argument.
	cleanup string

	// ids returns a list of ids as the statements' argument, and keys
	// the stuck rows' keys as fetchSkipping's arguments.
	ids  func(ids []int64) any
	keys func(rows []StuckRow) []any
}

// cleanupChunk is how many published rows a statement of cleanup deletes
// at most, so no statement holds many locks for long.
const cleanupChunk = 10_000

// movedColumns are the columns a row keeps when it is published.
const movedColumns = "id, shard, topic, key, value, headers, created_at"

// insertColumns are the columns an insert writes, six parameters a row.
const insertColumns = "shard, topic, key, value, headers, created_at"

// shape is what the text of one statement that inserts rows depends on:
// the business statement query (inlineQuery) with its skip parameters,
// the rows, whether it takes the advisory locks (keyLocks: locks is 1 for
// one lock, 2 for several, after the rows' parameters) and whether it
// notifies.
type shape struct {
	query             string
	skip, rows, locks int
	notify            bool
}

// names are what statements need to name an outbox's tables: the table,
// the table's name as New got it (the channel of its notifications), the
// quoted names of the outbox, published rows' and relays' tables, and
// the first keys of Enqueue's and the relays' advisory locks.
type names struct {
	table               sqldb.Table
	name                string
	outbox, pub, relays string
	lockKey, relayID    int32
}

// newStatements returns the statements of dialect d on the outbox table
// named table.
func newStatements(d sqldb.Dialect, table string) (*statements, error) {
	// The names made from the table's: its other tables and its indexes.
	t, err := sqldb.QuoteTable(d, table, "_published_at", "_relays", "_pending", "_pkey")
	if err != nil {
		return nil, fmt.Errorf("outbox: Table: %w", err)
	}
	n := names{
		table: t, name: table,
		outbox: t.String(), pub: t.Suffixed("_published").String(), relays: t.Suffixed("_relays").String(),
		lockKey: int32(hash("evbus-enqueue:" + table)),
		relayID: int32(hash("evbus-relay:" + table)),
	}
	switch d.Name() {
	case sqldb.Postgres.Name():
		return postgresStatements(n), nil
	case sqldb.SQLite.Name():
		return sqliteStatements(n), nil
	}
	return nil, fmt.Errorf("outbox: dialect %q: want postgres or sqlite", d.Name())
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

var (
	//go:embed migrations/postgres.sql
	postgresDDL string
	//go:embed migrations/sqlite.sql
	sqliteDDL string
	//go:embed migrations/upgrade-postgres.sql
	postgresUpgrade string
	//go:embed migrations/upgrade-sqlite.sql
	sqliteUpgrade string
)

// migration returns a migration file with t's names in place of the
// default ones, which the files quote.
func migration(file string, t sqldb.Table) string {
	return strings.NewReplacer(
		`"evbus_outbox_published_at" ON "evbus_outbox_published"`, t.Suffixed("_published").IndexOn("_at"),
		`"evbus_outbox_published"`, t.Suffixed("_published").String(), // the table, or an index when dropped
		`"evbus_outbox_relays"`, t.Suffixed("_relays").String(),
		`"evbus_outbox_pending"`, t.Index("_pending"),
		`"evbus_outbox_pkey"`, t.Local("_pkey"),
		`"evbus_outbox"`, t.String(),
	).Replace(file)
}

// upgrade returns a migration file of an upgrade cut at its "after" line.
func upgrade(file string, t sqldb.Table) (before, after string) {
	before, after, _ = strings.Cut(migration(file, t), "\n-- after\n")
	return before, after
}

// writeRows writes n parenthesized rows of insertColumns' parameters,
// numbered after the first skip, for VALUES: row writes one row's
// parameter c, and tail what follows a row's parameters.
func writeRows(b *strings.Builder, n, skip int, param func(n, c int) string, tail func(i int) string) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		writeRow(b, i, skip, param)
		b.WriteString(tail(i))
		b.WriteByte(')')
	}
}

// writeRow writes the six parameters of row i, numbered after the first
// skip.
func writeRow(b *strings.Builder, i, skip int, param func(n, c int) string) {
	for c := range 6 {
		if c > 0 {
			b.WriteString(", ")
		}
		b.WriteString(param(skip+6*i+c+1, c))
	}
}

// rowsArgs returns the arguments that name the rows ids (at least one)
// of shard in recheck, del and keep: the shard, the stretch of its
// primary key they lie in, and the ids.
func (s *statements) rowsArgs(shard int, ids []int64) []any {
	return []any{shard, slices.Min(ids), slices.Max(ids), s.ids(ids)}
}
