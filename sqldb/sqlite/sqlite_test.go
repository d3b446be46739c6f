package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evbus/evbus/sqldb"
	"github.com/evbus/evbus/sqldb/sqlite"
)

func TestOpenRefusesEmptyPath(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "path") {
		t.Fatalf("Open(\"\") = %v, want an error naming the path", err)
	}
}

// Writers that read before they write queue for the lock instead of
// failing with SQLITE_BUSY.
func TestConcurrentWritersQueue(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Pool().Close()
	if _, err := db.Exec(ctx, "CREATE TABLE counter (n INTEGER); INSERT INTO counter VALUES (0)"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*25)
	for range 8 {
		wg.Go(func() {
			for range 25 {
				errs <- sqldb.InTx(ctx, db, func(tx *sql.Tx) error {
					var n int
					if err := sqldb.QueryRow(ctx, db.In(tx), "SELECT n FROM counter", nil, &n); err != nil {
						return err
					}
					_, err := db.In(tx).Exec(ctx, "UPDATE counter SET n = ?1", n+1)
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := sqldb.QueryRow(ctx, db, "SELECT n FROM counter", nil, &n); err != nil || n != 200 {
		t.Fatalf("counter = %d (%v), want 200: lost updates", n, err)
	}
}
