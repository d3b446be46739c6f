package sqldb

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Dialect is what differs between SQL databases in the statements evbus
// runs. Statements otherwise stay within what PostgreSQL and SQLite share
// (INSERT ... ON CONFLICT DO NOTHING, RETURNING, SAVEPOINT).
type Dialect interface {
	// Name names the database: "postgres", "sqlite".
	Name() string
	// Arg returns the placeholder of the n-th argument of a statement,
	// from 1.
	Arg(n int) string
	// BytesType is the column type of byte strings.
	BytesType() string
	// TimeType is the column type of instants; Time gives the value to
	// bind for one, and a Time scans one back.
	TimeType() string
	// Time returns the value to bind for t in a column of TimeType.
	Time(t time.Time) any
	// IdentityColumn is the definition of an auto-incrementing 64-bit
	// primary key column named name.
	IdentityColumn(name string) string
}

// Postgres is PostgreSQL's dialect, for Pgx and for database/sql with
// pgx's stdlib driver.
var Postgres Dialect = postgres{}

// SQLite is SQLite's dialect, for database/sql with modernc.org/sqlite.
// Instants are stored as integer microseconds since the Unix epoch, which
// compare and sort as instants (SQLite has no time type).
var SQLite Dialect = sqlite{}

type postgres struct{}

func (postgres) Name() string         { return "postgres" }
func (postgres) Arg(n int) string     { return "$" + strconv.Itoa(n) }
func (postgres) BytesType() string    { return "bytea" }
func (postgres) TimeType() string     { return "timestamptz" }
func (postgres) Time(t time.Time) any { return t.UTC() }
func (postgres) IdentityColumn(name string) string {
	return name + " bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
}

type sqlite struct{}

func (sqlite) Name() string         { return "sqlite" }
func (sqlite) Arg(n int) string     { return "?" + strconv.Itoa(n) }
func (sqlite) BytesType() string    { return "BLOB" }
func (sqlite) TimeType() string     { return "INTEGER" }
func (sqlite) Time(t time.Time) any { return t.UnixMicro() }
func (sqlite) IdentityColumn(name string) string {
	return name + " INTEGER PRIMARY KEY AUTOINCREMENT"
}

// Time scans an instant written through Dialect.Time, whatever the
// dialect: a time the driver parsed, or integer microseconds.
type Time struct {
	time.Time
	Valid bool // false for NULL
}

// Scan implements sql.Scanner (pgx uses it too).
func (t *Time) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = Time{}
	case time.Time:
		*t = Time{Time: v.UTC(), Valid: true}
	case int64:
		*t = Time{Time: time.UnixMicro(v).UTC(), Valid: true}
	default:
		return fmt.Errorf("sqldb: cannot scan %T as a time", src)
	}
	return nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)

// IdentifierRule is the rule every table name of evbus follows, as
// ValidIdentifier's error states it.
const IdentifierRule = "letters, digits and underscores, not starting with a digit, at most 63 characters, optionally qualified by a schema name of the same form (schema.table); SQL keywords are fine, case does not matter"

// ValidIdentifier checks that name can be a table name of evbus: letters,
// digits and underscores, not starting with a digit, at most 63
// characters, optionally qualified by a schema name of the same form
// ("events.outbox"). Anything else, quotes and spaces included, is
// refused: names come from configuration, and configuration must not be
// able to inject SQL. QuoteTable makes a valid name fit for statements.
func ValidIdentifier(name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("sqldb: %q is not a valid table name: want %s: %w", name, IdentifierRule, ErrInvalidIdentifier)
	}
	return nil
}

// ErrInvalidIdentifier is wrapped by ValidIdentifier's error.
var ErrInvalidIdentifier = fmt.Errorf("invalid identifier")
