package outbox

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/evbus/evbus/sqldb"
)

var update = flag.Bool("update", false, "rewrite testdata/statements.golden")

// TestStatementsGolden checks every statement of both dialects, for the
// default table and a schema-qualified one, against
// testdata/statements.golden, where a reader reviews the SQL without
// running it. Regenerate it with: go test ./outbox -run Golden -update
func TestStatementsGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# Every statement of the outbox, as New builds it (sql_postgres.go, sql_sqlite.go).\n")
	b.WriteString("# Regenerate: go test ./outbox -run Golden -update\n")
	for _, d := range []sqldb.Dialect{sqldb.Postgres, sqldb.SQLite} {
		for _, table := range []string{"evbus_outbox", "events.outbox"} {
			s, err := newStatements(d, table)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "\n######## %s, Table(%q)\n", d.Name(), table)
			writeStatements(t, &b, s)
		}
	}
	got := b.String()
	const file = "testdata/statements.golden"
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v: run go test ./outbox -run Golden -update", err)
	}
	if got != string(want) {
		t.Errorf("the statements differ from %s: review the change, then run go test ./outbox -run Golden -update\n%s", file, firstDiff(string(want), got))
	}
}

// writeStatements writes each field of s: every statement text, the
// insert of each shape the dialect runs, and what the dialect can do.
// Reflection, so that a statement added to the struct shows in the golden
// file without more code here.
func writeStatements(t *testing.T, b *strings.Builder, s *statements) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		name, f := v.Type().Field(i).Name, v.Field(i)
		switch f.Kind() {
		case reflect.String:
			fmt.Fprintf(b, "\n-- %s\n%s\n", name, f.String())
		case reflect.Bool:
			fmt.Fprintf(b, "\n-- %s: %v\n", name, f.Bool())
		case reflect.Func:
			switch name {
			case "insert":
				for _, sh := range insertShapes(s) {
					fmt.Fprintf(b, "\n-- insert %+v\n%s\n", sh, s.insert(sh))
				}
			case "ids":
				fmt.Fprintf(b, "\n-- ids([3 1 2]): %#v\n", s.ids([]int64{3, 1, 2}))
			case "keys":
				fmt.Fprintf(b, "\n-- keys: %#v\n", s.keys([]StuckRow{{Topic: "orders", Key: []byte("o-1")}}))
			default:
				t.Fatalf("statements.%s: say in writeStatements how the golden file shows it", name)
			}
		default:
			t.Fatalf("statements.%s: say in writeStatements how the golden file shows it", name)
		}
	}
}

// insertShapes are the shapes of insert that Outbox.inserts builds on s's
// dialect: one row and several, with and without the key locks and the
// notification, and with a business statement.
func insertShapes(s *statements) []shape {
	if !s.keyLocks {
		return []shape{{rows: 1}, {rows: 3}}
	}
	biz := "UPDATE orders SET state = $1 WHERE id = $2"
	return []shape{
		{rows: 1}, // a later chunk of a large call
		{rows: 1, locks: 1},
		{rows: 1, locks: 1, notify: true},
		{rows: 3, locks: 2, notify: true},
		{query: biz, skip: 2, rows: 1, locks: 1},
		{query: biz, skip: 2, rows: 2, locks: 2, notify: true},
	}
}

// firstDiff shows the first line where want and got differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant: %s\n got: %s", i+1, wl, gl)
		}
	}
	return ""
}
