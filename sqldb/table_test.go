package sqldb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evbus/evbus/sqldb"
)

// QuoteTable quotes every part, folds case as unquoted names fold, and
// puts an index's schema where each dialect takes it.
func TestQuoteTable(t *testing.T) {
	for _, c := range []struct {
		d                     sqldb.Dialect
		name                  string
		table, index, indexOn string
	}{
		{sqldb.Postgres, "order", `"order"`, `"order_idx"`, `"order_idx" ON "order"`},
		{sqldb.Postgres, "MySchema.Select", `"myschema"."select"`, `"myschema"."select_idx"`, `"select_idx" ON "myschema"."select"`},
		{sqldb.SQLite, "user", `"user"`, `"user_idx"`, `"user_idx" ON "user"`},
		{sqldb.SQLite, "main.outbox", `"main"."outbox"`, `"main"."outbox_idx"`, `"main"."outbox_idx" ON "outbox"`},
	} {
		tb, err := sqldb.QuoteTable(c.d, c.name, "_idx")
		if err != nil {
			t.Fatalf("%s %q: %v", c.d.Name(), c.name, err)
		}
		if tb.String() != c.table || tb.Index("_idx") != c.index || tb.IndexOn("_idx") != c.indexOn {
			t.Errorf("%s %q: %s, %s, %s; want %s, %s, %s", c.d.Name(), c.name, tb, tb.Index("_idx"), tb.IndexOn("_idx"), c.table, c.index, c.indexOn)
		}
	}
	long := strings.Repeat("a", 60)
	if _, err := sqldb.QuoteTable(sqldb.SQLite, long, "_published_at"); !errors.Is(err, sqldb.ErrInvalidIdentifier) || !strings.Contains(err.Error(), long+"_published_at") {
		t.Errorf("a name whose derived name is too long: %v", err)
	}
	if _, err := sqldb.QuoteTable(sqldb.Postgres, `x"; DROP TABLE y; --`); !errors.Is(err, sqldb.ErrInvalidIdentifier) || !strings.Contains(err.Error(), sqldb.IdentifierRule) {
		t.Errorf("an injection: %v, want ErrInvalidIdentifier stating the rule", err)
	}
}
