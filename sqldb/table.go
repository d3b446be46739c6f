package sqldb

import (
	"fmt"
	"strings"
)

// Table is a table name as evbus writes it into statements: checked with
// ValidIdentifier and quoted, so that every valid name works as it is,
// SQL keywords ("order", "user", "select") included. Unquoted SQL names
// are case-insensitive (PostgreSQL folds them to lower case), and so are
// these: a Table is the lower-case name, quoted, so it names the table an
// unquoted statement of the same name would.
//
// A schema-qualified name works on both dialects: a PostgreSQL schema, or
// an SQLite database ("main", "temp" or an attached one). The one place
// where they differ is an index's name, which IndexOn writes.
type Table struct {
	schema, name string // lower case; schema "" when unqualified
	sqlite       bool
}

// QuoteTable checks name (ValidIdentifier) and returns it as a Table of
// dialect d. Each suffix names a table, index or constraint that is
// named after it (name+suffix, in its schema), which must be 63
// characters at most as well.
func QuoteTable(d Dialect, name string, suffixes ...string) (Table, error) {
	if err := ValidIdentifier(name); err != nil {
		return Table{}, err
	}
	t := Table{sqlite: d.Name() == SQLite.Name()}
	lower := strings.ToLower(name)
	if s, n, ok := strings.Cut(lower, "."); ok {
		t.schema, t.name = s, n
	} else {
		t.name = lower
	}
	for _, suffix := range suffixes {
		if derived := t.name + suffix; len(derived) > 63 {
			return Table{}, fmt.Errorf("sqldb: table %q: the name %q made from it is longer than 63 characters; use a shorter table name (want %s): %w", name, derived, IdentifierRule, ErrInvalidIdentifier)
		}
	}
	return t, nil
}

// String returns the quoted name: "schema"."name", or "name".
func (t Table) String() string { return t.qualified(t.name) }

// Schema returns the schema's name, unquoted, "" for an unqualified name.
func (t Table) Schema() string { return t.schema }

// Name returns the table's own name, unquoted, without the schema.
func (t Table) Name() string { return t.name }

// Suffixed returns the table named after t with suffix appended, in t's
// schema.
func (t Table) Suffixed(suffix string) Table {
	t.name += suffix
	return t
}

// Local returns the quoted name, without the schema, of what is named
// after t with suffix and lives in t's schema: a constraint.
func (t Table) Local(suffix string) string { return quote(t.name + suffix) }

// Index returns the quoted, schema-qualified name of the index named
// after t with suffix, as DROP INDEX takes it.
func (t Table) Index(suffix string) string { return t.qualified(t.name + suffix) }

// IndexOn returns what follows "CREATE INDEX [IF NOT EXISTS]" for the
// index named after t with suffix: its name, ON and the table. PostgreSQL
// creates an index in its table's schema and takes the schema on the
// table; SQLite takes it on the index, and the table's name alone.
func (t Table) IndexOn(suffix string) string {
	if t.sqlite {
		return t.Index(suffix) + " ON " + quote(t.name)
	}
	return quote(t.name+suffix) + " ON " + t.String()
}

func (t Table) qualified(name string) string {
	if t.schema == "" {
		return quote(name)
	}
	return quote(t.schema) + "." + quote(name)
}

// quote quotes a name that passed ValidIdentifier: it holds no quote.
func quote(name string) string { return `"` + name + `"` }
