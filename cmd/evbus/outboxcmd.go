package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
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
or sqlite:path, of a file that exists: nothing is created or written).
Whether a relay still holds its shard is known on PostgreSQL (its advisory
lock); SQLite cannot know, and says "unknown" (null in --json). --json
prints snake_case names, times in RFC 3339 and ages in seconds.

example:
  evbus outbox status --db postgres://orders@db:5432/orders
  EVBUS_DB=sqlite:/var/lib/orders/orders.db evbus outbox status --json`,
		env: map[string]string{"db": "EVBUS_DB", "table": "EVBUS_OUTBOX_TABLE"},
		setup: func(fs *flag.FlagSet, _ *conn) func(context.Context, *stdio) error {
			dsn := fs.String("db", "", "the service's database: postgres://user@host:port/db or a SQLite path (sqlite:path)")
			table := fs.String("table", "evbus_outbox", "the outbox table, optionally schema.table")
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
				st, knowsActive, err := outboxStatus(ctx, *dsn, *table)
				if err != nil {
					return err
				}
				if *asJSON {
					return json.NewEncoder(std.out).Encode(statusJSON(*table, st, knowsActive))
				}
				printOutboxStatus(std, *table, st, knowsActive)
				return nil
			}
		},
	})
}

// outboxStatus opens the database dsn names and reads the outbox's status;
// knowsActive is false where the database cannot tell whether a relay
// still holds its shard (SQLite).
func outboxStatus(ctx context.Context, dsn, table string) (st outbox.Status, knowsActive bool, err error) {
	src, err := openOutbox(ctx, dsn, table)
	if err != nil {
		return st, false, err
	}
	defer src.close()
	st, err = src.status(ctx)
	return st, src.knowsActive, err
}

// outboxSource is an outbox table of an open database, read-only.
type outboxSource struct {
	status      func(context.Context) (outbox.Status, error)
	knowsActive bool   // the database can tell whether a relay still holds its shard
	close       func() // closes the database's pool
}

// openOutbox opens the database dsn names (PostgreSQL URL or SQLite path
// of a file that exists: nothing is created) for reading table's status.
func openOutbox(ctx context.Context, dsn, table string) (outboxSource, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return outboxSource{}, usagef("--db: not a PostgreSQL URL: %v", err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return outboxSource{}, err
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return outboxSource{}, fmt.Errorf("PostgreSQL at %s:%d does not answer: %v; check --db and that the server runs", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
		}
		status, err := statusOf(sqldb.DB[pgx.Tx](sqldb.Pgx(pool)), table)
		if err != nil {
			pool.Close()
			return outboxSource{}, err
		}
		return outboxSource{status: status, knowsActive: true, close: pool.Close}, nil
	}
	if strings.Contains(dsn, "://") {
		return outboxSource{}, usagef("--db: unknown database URL scheme in %q: want postgres:// or a SQLite path", redact.URL(dsn))
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	file, _, hasQuery := strings.Cut(path, "?")
	if _, err := os.Stat(file); err != nil {
		return outboxSource{}, fmt.Errorf("--db: no SQLite database at %s (%v): check the path; evbus creates nothing there", file, err)
	}
	// mode=rw: a file removed meanwhile is an error, not created again.
	sep := "?"
	if hasQuery {
		sep = "&"
	}
	db, err := sqlite.Open(ctx, path+sep+"mode=rw")
	if err != nil {
		return outboxSource{}, err
	}
	status, err := statusOf(sqldb.DB[*sql.Tx](db), table)
	if err != nil {
		db.Pool().Close()
		return outboxSource{}, err
	}
	return outboxSource{status: status, close: func() { db.Pool().Close() }}, nil
}

// statusOf returns what reads the status of the outbox table of db.
func statusOf[Tx any](db sqldb.DB[Tx], table string) (func(context.Context) (outbox.Status, error), error) {
	ob, err := outbox.New(db, nil, outbox.Table(table))
	if err != nil {
		return nil, usagef("--table: %v", err)
	}
	return func(ctx context.Context) (outbox.Status, error) {
		st, err := ob.Status(ctx)
		if err != nil {
			return st, fmt.Errorf("%w (is %s the outbox table, and was it migrated?)", err, table)
		}
		return st, nil
	}, nil
}

// outboxJSON is the status as --json prints it: the names and units of
// dlt ls --json (snake_case, RFC 3339 times, null for none).
type outboxJSON struct {
	Table            string      `json:"table"`
	Backlog          int64       `json:"backlog"`
	Oldest           *time.Time  `json:"oldest"`
	OldestAgeSeconds float64     `json:"oldest_age_seconds"`
	Relays           []relayJSON `json:"relays"`
}

type relayJSON struct {
	Shard  int       `json:"shard"`
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
	// Active is null where the database cannot tell (SQLite).
	Active      *bool       `json:"active"`
	Idle        bool        `json:"idle"`
	LastError   string      `json:"last_error"`
	LastErrorAt *time.Time  `json:"last_error_at"`
	Stuck       []stuckJSON `json:"stuck"`
}

// stuckJSON is a row the relay cannot publish (outbox.StuckRow); its key
// as text, or {"base64": ...} when it is not.
type stuckJSON struct {
	ID     int64  `json:"id"`
	Topic  string `json:"topic"`
	Key    any    `json:"key"`
	Reason string `json:"reason"`
}

func statusJSON(table string, st outbox.Status, knowsActive bool) outboxJSON {
	out := outboxJSON{Table: table, Backlog: st.Backlog, Relays: []relayJSON{}}
	if st.Backlog > 0 {
		oldest := st.Oldest.UTC()
		out.Oldest, out.OldestAgeSeconds = &oldest, st.Age.Seconds()
	}
	for _, r := range st.Relays {
		rj := relayJSON{Shard: r.Shard, Holder: r.Holder, Since: r.Since.UTC(), Idle: r.Idle, LastError: r.LastError, Stuck: []stuckJSON{}}
		for _, x := range r.Stuck {
			rj.Stuck = append(rj.Stuck, stuckJSON{ID: x.ID, Topic: x.Topic, Key: bytesView(x.Key), Reason: x.Reason})
		}
		if knowsActive {
			rj.Active = &r.Active
		}
		if r.LastError != "" {
			at := r.LastErrorAt.UTC()
			rj.LastErrorAt = &at
		}
		out.Relays = append(out.Relays, rj)
	}
	return out
}

func printOutboxStatus(std *stdio, table string, st outbox.Status, knowsActive bool) {
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
		active := "unknown"
		if knowsActive {
			active = strconv.FormatBool(r.Active)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%s\n", r.Shard, r.Holder, r.Since.UTC().Format(time.RFC3339), active, r.Idle, lastErr)
	}
	tw.Flush()
	for _, r := range st.Relays {
		for _, x := range r.Stuck {
			fmt.Fprintf(std.out, "shard %d: row %d (topic %s, key %s) is stuck, and holds back the later rows of its key: %s\n",
				r.Shard, x.ID, x.Topic, bytesText(x.Key), x.Reason)
		}
	}
	if !knowsActive {
		fmt.Fprintln(std.out, "ACTIVE is unknown on SQLite: it cannot tell whether a holder's process still runs")
	}
}
