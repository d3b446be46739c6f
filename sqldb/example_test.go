package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

// InTx commits what fn wrote, or rolls it back when fn fails; statements
// are written once for every dialect through Dialect.
func ExampleInTx() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sqldb")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "shop.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Pool().Close()
	d := db.Dialect()
	db.Exec(ctx, "CREATE TABLE stock (sku TEXT PRIMARY KEY, qty INTEGER)")
	err = sqldb.InTx(ctx, db, func(tx *sql.Tx) error {
		_, err := db.In(tx).Exec(ctx, "INSERT INTO stock VALUES ("+d.Arg(1)+", "+d.Arg(2)+")", "sku-1", 7)
		return err
	})
	var qty int
	sqldb.QueryRow(ctx, db, "SELECT qty FROM stock WHERE sku = "+d.Arg(1), []any{"sku-1"}, &qty)
	fmt.Println(err, qty)
	// Output: <nil> 7
}
