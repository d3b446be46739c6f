package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evbus/evbus/sqldb/sqlite"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "sqlite")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "service.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Pool().Close()
	var mode string
	db.Pool().QueryRow("PRAGMA journal_mode").Scan(&mode)
	fmt.Println(db.Dialect().Name(), mode)
	// Output: sqlite wal
}
