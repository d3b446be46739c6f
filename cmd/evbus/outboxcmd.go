package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/evbus/evbus/internal/redact"
	"github.com/evbus/evbus/outbox"
	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

func init() {
	register(command{
		name:    "outbox status",
		summary: "an outbox's backlog, oldest unpublished row and relays",
		usage: `
usage: evbus outbox status --db DSN [--table T] [--json]

Reads the outbox table of a service's database: how many committed rows
wait to be published, how old the oldest is, and for each shard the relay
that holds it, whether it still does, whether it is idle, and its last
error. The database is PostgreSQL (a postgres:// URL) or SQLite (a path,
or sqlite:path).

example:
  evbus outbox status --db postgres://orders@db:5432/orders
  EVBUS_DB=sqlite:/var/lib/orders/orders.db evbus outbox status --json`,
		env: map[string]string{"db": "EVBUS_DB", "table": "EVBUS_OUTBOX_TABLE"},
		setup: func(fs *flag.FlagSet, _ *conn) func(context.Context, *stdio) error {
			dsn := fs.String("db", "", "the service's database: postgres://user@host:port/db or a SQLite path (sqlite:path)")
			table := fs.String("table", outbox.DefaultTable, "the outbox table, optionally schema.table")
			asJSON := fs.Bool("json", false, "print the status as one JSON object, for scripts")
			timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the database")
			return func(ctx context.Context, std *stdio) error {
				if err := wantArgs(std, 0, 0, ""); err != nil {
					return err
				}
				if *dsn == "" {
					return usagef("no database: pass --db or set EVBUS_DB")
				}
				ctx, cancel := context.WithTimeout(ctx, *timeout)
				defer cancel()
				st, err := outboxStatus(ctx, *dsn, *table)
				if err != nil {
					return err
				}
				if *asJSON {
					return json.NewEncoder(std.out).Encode(st)
				}
				printOutboxStatus(std, *table, st)
				return nil
			}
		},
	})
}

// outboxStatus opens the database dsn names and reads the outbox's status.
func outboxStatus(ctx context.Context, dsn, table string) (outbox.Status, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return outbox.Status{}, usagef("--db: not a PostgreSQL URL: %v", err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return outbox.Status{}, err
		}
		defer pool.Close()
		if err := pool.Ping(ctx); err != nil {
			return outbox.Status{}, fmt.Errorf("PostgreSQL at %s:%d does not answer: %v; check --db and that the server runs", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
		}
		return readStatus(ctx, sqldb.DB[pgx.Tx](sqldb.Pgx(pool)), table)
	}
	if strings.Contains(dsn, "://") {
		return outbox.Status{}, usagef("--db: unknown database URL scheme in %q: want postgres:// or a SQLite path", redact.URL(dsn))
	}
	db, err := sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		return outbox.Status{}, err
	}
	defer db.Pool().Close()
	return readStatus(ctx, sqldb.DB[*sql.Tx](db), table)
}

func readStatus[Tx any](ctx context.Context, db sqldb.DB[Tx], table string) (outbox.Status, error) {
	ob, err := outbox.New(db, nil, outbox.Table(table))
	if err != nil {
		return outbox.Status{}, usagef("--table: %v", err)
	}
	st, err := ob.Status(ctx)
	if err != nil {
		return st, fmt.Errorf("%w (is %s the outbox table, and was it migrated?)", err, table)
	}
	return st, nil
}

func printOutboxStatus(std *stdio, table string, st outbox.Status) {
	fmt.Fprintf(std.out, "outbox %s: %d unpublished", table, st.Backlog)
	if st.Backlog > 0 {
		fmt.Fprintf(std.out, ", oldest %s ago (%s)", st.Age.Round(time.Millisecond), st.Oldest.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(std.out)
	if len(st.Relays) == 0 {
		fmt.Fprintln(std.out, "no relay has run yet")
		return
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tHOLDER\tSINCE\tACTIVE\tIDLE\tLAST ERROR")
	for _, r := range st.Relays {
		lastErr := "-"
		if r.LastError != "" {
			lastErr = r.LastErrorAt.UTC().Format(time.RFC3339) + " " + r.LastError
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%v\t%s\n", r.Shard, r.Holder, r.Since.UTC().Format(time.RFC3339), r.Active, r.Idle, lastErr)
	}
	tw.Flush()
}
