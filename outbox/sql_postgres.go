package outbox

import (
	"fmt"
	"strconv"
	"strings"
)

// postgresStatements are the outbox's statements on PostgreSQL.
func postgresStatements(n names) *statements {
	table, pub, relays := n.outbox, n.pub, n.relays
	before, after := upgrade(postgresUpgrade, n.table)
	// A batch's rows, on the four arguments from $k on that rowsArgs
	// returns. It names the stretch of the primary key the batch lies
	// in, besides its ids, so that PostgreSQL reads that stretch alone:
	// without statistics on the table (a new one) it would otherwise read
	// all of the shard and filter it by the ids.
	rowsIn := func(k int) string {
		return fmt.Sprintf("shard = $%d AND id BETWEEN $%d AND $%d AND id = ANY($%d::int8[])", k, k+1, k+2, k+3)
	}
	fetch := "SELECT id, topic, key, value, headers, created_at FROM " + table + " WHERE shard = $1 AND NOT (id = ANY($2::int8[]))"
	return &statements{
		ddl:           migration(postgresDDL, n.table),
		upgradeDue:    fmt.Sprintf("SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass('%s') AND attname = 'published_at' AND NOT attisdropped", table),
		upgradeBefore: before,
		upgradeAfter:  after,
		stuckDue:      fmt.Sprintf("SELECT count(*) FROM pg_class WHERE oid = to_regclass('%s') AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('%s') AND attname = 'stuck' AND NOT attisdropped)", relays, relays),
		addStuck:      "ALTER TABLE " + relays + " ADD COLUMN stuck text NOT NULL DEFAULT ''",

		insert:      func(t shape) string { return postgresInsert(n, t) },
		inlineQuery: true,
		keyLocks:    true,

		backlog: "SELECT count(*), min(created_at) FROM " + table,
		// A shard's relay is active while a session holds its lock.
		relays: fmt.Sprintf("SELECT shard, holder, since, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = %d::oid AND objid = shard::oid AND objsubid = 2), idle, last_error, last_error_at, stuck FROM %s ORDER BY shard",
			uint32(n.relayID), relays),

		session:   true,
		listen:    `LISTEN "` + n.name + `"`,
		tryLocks:  fmt.Sprintf("SELECT s FROM unnest($1::int8[]) AS s WHERE pg_try_advisory_lock(%d, s::int4)", n.relayID),
		claim:     "INSERT INTO " + relays + " (shard, holder, since, idle, stuck) VALUES ($1, $2, $3, false, '') ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, since = excluded.since, idle = false, stuck = ''",
		setIdle:   "UPDATE " + relays + " SET idle = $1 WHERE shard = $2",
		lastError: "UPDATE " + relays + " SET last_error = $1, last_error_at = $2 WHERE shard = $3",
		saveStuck: "UPDATE " + relays + " SET stuck = $1 WHERE shard = $2",

		batchSettings: relaySettings,
		fetch:         fetch + " ORDER BY id LIMIT $3",
		fetchSkipping: fetch + " AND (topic, key) NOT IN (SELECT * FROM unnest($4::text[], $5::bytea[])) ORDER BY id LIMIT $3",
		recheck:       "SELECT id FROM " + table + " WHERE " + rowsIn(1),
		del:           "DELETE FROM " + table + " WHERE " + rowsIn(1),
		// One statement: a row is in one table or the other.
		keep: fmt.Sprintf("WITH m AS (DELETE FROM %s WHERE %s RETURNING %s) INSERT INTO %s (%s, published_at) SELECT %s, $1::timestamptz FROM m",
			table, rowsIn(2), movedColumns, pub, movedColumns, movedColumns),
		cleanup: fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE published_at < $1 LIMIT %d)", pub, pub, cleanupChunk),

		ids: func(ids []int64) any {
			if ids == nil {
				ids = []int64{} // not NULL, which no id is or is not in
			}
			return ids
		},
		keys: func(rows []StuckRow) []any {
			topics, keys := make([]string, len(rows)), make([][]byte, len(rows))
			for i, x := range rows {
				topics[i], keys[i] = x.Topic, x.Key
			}
			return []any{topics, keys}
		},
	}
}

// relaySettings set up the transaction of a batch's statements on
// PostgreSQL; they end with it, so the pool's connection goes back as it
// came. The fetch must walk the primary key in id order and stop at
// BatchSize: statistics taken while the table held few rows make the
// planner collect the whole backlog with a bitmap scan and sort it
// instead (30-90 ms per batch over a backlog of 100,000 rows, five times
// the relay's other work). Custom plans see the ids of the batch in
// flight as a constant array, which PostgreSQL hashes, instead of
// comparing each row with each id, and the batch's size. A mark lost
// with the last commits of a server crash only publishes those rows
// again, with the same ce_id, which at-least-once allows: the relay's
// commits do not wait for the disk, and leave the WAL flushes to the
// writers.
const relaySettings = "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true), set_config('synchronous_commit', 'off', true)"

// pgCasts type the parameters of a row, which are not the insert's
// target and would otherwise be text.
var pgCasts = [6]string{"::int4", "::text", "::bytea", "::bytea", "::bytea", "::timestamptz"}

func pgParam(n, c int) string { return "$" + strconv.Itoa(n) + pgCasts[c] }

// postgresInsert returns the insert of shape t.
//
// The locks (and the notification) are a condition of the insert's
// SELECT that holds no column, which PostgreSQL evaluates once, before it
// computes the first row and so before any row gets its id. One row (the
// common case) is a SELECT of its parameters with the condition as a
// one-time filter: one plan node, against three for a VALUES list sorted
// by its ordinal, about a tenth of the server's work of an Enqueue. One
// lock is a plain call, which PostgreSQL runs for less than a set over an
// array. Rows are scalar parameters, which PostgreSQL plans and runs for
// less than arrays.
func postgresInsert(n names, t shape) string {
	gate := ""
	if t.locks > 0 {
		arg := t.skip + 6*t.rows + 1
		if t.locks == 1 {
			gate = fmt.Sprintf("pg_advisory_xact_lock(%d, $%d::int4) IS NOT NULL", n.lockKey, arg)
		} else {
			gate = fmt.Sprintf("(SELECT count(pg_advisory_xact_lock(%d, k)) FROM unnest($%d::int4[]) AS k) > 0", n.lockKey, arg)
		}
		if t.notify {
			gate += fmt.Sprintf(" AND pg_notify('%s', '') IS NOT NULL", n.name)
		}
	}
	var b strings.Builder
	if t.query != "" {
		// A line of its own, so that a comment ending query ends there.
		b.WriteString("WITH biz AS (" + t.query + "\n) ")
	}
	b.WriteString("INSERT INTO " + n.outbox + " (" + insertColumns + ") SELECT ")
	if t.rows == 1 {
		writeRow(&b, 0, t.skip, pgParam)
		if gate != "" {
			b.WriteString(" WHERE " + gate)
		}
		return b.String()
	}
	b.WriteString("v.s, v.t, v.k, v.v, v.h, v.c FROM (VALUES ")
	writeRows(&b, t.rows, t.skip, pgParam, func(i int) string { return ", " + strconv.Itoa(i) })
	b.WriteString(") AS v(s, t, k, v, h, c, n)")
	if gate != "" {
		// A subquery, so that it runs once rather than per row.
		b.WriteString(" WHERE (SELECT " + gate + ")")
	}
	b.WriteString(" ORDER BY v.n")
	return b.String()
}
