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
// on a catalog unique index instead of finding the table). The upgrades
// that are due run around the file's statements, in the same transaction.
func Migrate[Tx any](ctx context.Context, db DB[Tx], ddl string, upgrades ...Upgrade) error {
	return InTx(ctx, db, func(tx Tx) error {
		q := db.In(tx)
		if db.Dialect().Name() == Postgres.Name() {
			if _, err := q.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock)); err != nil {
				return fmt.Errorf("sqldb: migration lock: %w", err)
			}
		}
		var due []Upgrade
		for _, u := range upgrades {
			var n int64
			if err := QueryRow(ctx, q, u.Due, nil, &n); err != nil {
				return fmt.Errorf("sqldb: whether an upgrade is due: %w", err)
			}
			if n > 0 {
				due = append(due, u)
			}
		}
		run := func(ddl string) error {
			for _, stmt := range statements(ddl) {
				if _, err := q.Exec(ctx, stmt); err != nil {
					return err
				}
			}
			return nil
		}
		for _, u := range due {
			if err := run(u.Before); err != nil {
				return fmt.Errorf("sqldb: upgrade: %w", err)
			}
		}
		if err := run(ddl); err != nil {
			return err
		}
		for _, u := range due {
			if err := run(u.After); err != nil {
				return fmt.Errorf("sqldb: upgrade: %w", err)
			}
		}
		return nil
	})
}

// An Upgrade converts tables an earlier evbus created, which a
// migration's CREATE ... IF NOT EXISTS statements would leave as they
// are. When Due (a query of one row and one count) counts more than
// zero, Migrate runs Before's statements, then the migration's, then
// After's.
type Upgrade struct {
	Due, Before, After string
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
