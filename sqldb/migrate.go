package sqldb

import (
	"context"
	"fmt"
	"strings"
)

// migrationLock is the PostgreSQL advisory lock key every evbus migration
// takes ("evbus" in ASCII).
const migrationLock = 0x6576627573

// Migrate runs the statements of a migration file (separated by ";", with
// "--" comment lines) in one transaction. On PostgreSQL the transaction
// first takes an advisory lock every evbus migration shares, so service
// instances that start together migrate one after the other: CREATE ... IF
// NOT EXISTS is not safe against a concurrent twin there (the second fails
// on a catalog unique index instead of finding the table).
func Migrate[Tx any](ctx context.Context, db DB[Tx], ddl string) error {
	return InTx(ctx, db, func(tx Tx) error {
		q := db.In(tx)
		if db.Dialect().Name() == Postgres.Name() {
			if _, err := q.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock)); err != nil {
				return fmt.Errorf("sqldb: migration lock: %w", err)
			}
		}
		for _, stmt := range statements(ddl) {
			if _, err := q.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}

// statements splits a migration file into its statements, without the
// comment lines.
func statements(ddl string) []string {
	var b strings.Builder
	for line := range strings.Lines(ddl) {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line)
		}
	}
	var out []string
	for _, s := range strings.Split(b.String(), ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
