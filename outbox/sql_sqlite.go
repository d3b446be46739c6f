package outbox

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// sqliteStatements are the outbox's statements on SQLite, which has one
// writer at a time (no key locks), no advisory locks (one relay per
// database) and no notifications (the relay polls).
func sqliteStatements(n names) *statements {
	table, pub, relays := n.outbox, n.pub, n.relays
	name, schema := n.table.Name(), n.table.Schema()
	if schema == "" {
		schema = "main"
	}
	before, after := upgrade(sqliteUpgrade, n.table)
	// A batch's rows, on the four arguments from ?k on that rowsArgs
	// returns (see postgresStatements).
	rowsIn := func(k int) string {
		return fmt.Sprintf("shard = ?%d AND id BETWEEN ?%d AND ?%d AND id IN (SELECT value FROM json_each(?%d))", k, k+1, k+2, k+3)
	}
	del := "DELETE FROM " + table + " WHERE " + rowsIn(1)
	fetch := "SELECT id, topic, key, value, headers, created_at FROM " + table + " WHERE shard = ?1 AND NOT (id IN (SELECT value FROM json_each(?2)))"
	return &statements{
		ddl:           migration(sqliteDDL, n.table),
		upgradeDue:    fmt.Sprintf("SELECT count(*) FROM pragma_table_info('%s', '%s') WHERE name = 'published_at'", name, schema),
		upgradeBefore: before,
		upgradeAfter:  after,
		stuckDue:      fmt.Sprintf("SELECT (SELECT count(*) FROM pragma_table_info('%s_relays', '%s')) > 0 AND (SELECT count(*) FROM pragma_table_info('%s_relays', '%s') WHERE name = 'stuck') = 0", name, schema, name, schema),
		addStuck:      "ALTER TABLE " + relays + " ADD COLUMN stuck text NOT NULL DEFAULT ''",

		insert: func(t shape) string {
			var b strings.Builder
			b.WriteString("INSERT INTO " + table + " (" + insertColumns + ") VALUES ")
			writeRows(&b, t.rows, t.skip, func(n, _ int) string { return "?" + strconv.Itoa(n) }, func(int) string { return "" })
			return b.String()
		},

		backlog: "SELECT count(*), min(created_at) FROM " + table,
		// The relay is active as far as SQLite can tell.
		relays: "SELECT shard, holder, since, 1, idle, last_error, last_error_at, stuck FROM " + relays + " ORDER BY shard",

		claim:     "INSERT INTO " + relays + " (shard, holder, since, idle, stuck) VALUES (?1, ?2, ?3, false, '') ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, since = excluded.since, idle = false, stuck = ''",
		setIdle:   "UPDATE " + relays + " SET idle = ?1 WHERE shard = ?2",
		lastError: "UPDATE " + relays + " SET last_error = ?1, last_error_at = ?2 WHERE shard = ?3",
		saveStuck: "UPDATE " + relays + " SET stuck = ?1 WHERE shard = ?2",

		fetch:         fetch + " ORDER BY id LIMIT ?3",
		fetchSkipping: fetch + " AND topic || ' ' || hex(key) NOT IN (SELECT value FROM json_each(?4)) ORDER BY id LIMIT ?3",
		recheck:       "SELECT id FROM " + table + " WHERE " + rowsIn(1),
		del:           del,
		// SQLite takes no DELETE in a WITH clause: delAfterKeep follows.
		// A relay that dies between the two leaves the rows in both
		// tables: they are published again, and the copy already kept
		// stays.
		keep: fmt.Sprintf("INSERT OR IGNORE INTO %s (%s, published_at) SELECT %s, ?1 FROM %s WHERE %s",
			pub, movedColumns, movedColumns, table, rowsIn(2)),
		delAfterKeep: del,
		cleanup:      fmt.Sprintf("DELETE FROM %s WHERE id IN (SELECT id FROM %s WHERE published_at < ?1 LIMIT %d)", pub, pub, cleanupChunk),

		ids: func(ids []int64) any {
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
		},
		// A JSON array of "topic HEXKEY", as fetchSkipping compares them.
		keys: func(rows []StuckRow) []any {
			ks := make([]string, len(rows))
			for i, x := range rows {
				ks[i] = x.Topic + " " + strings.ToUpper(hex.EncodeToString(x.Key))
			}
			b, _ := json.Marshal(ks)
			return []any{string(b)}
		},
	}
}
