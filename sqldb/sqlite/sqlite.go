// Package sqlite opens SQLite databases for evbus, through the pure-Go
// modernc.org/sqlite driver (no cgo). It is a package of its own so that
// services on PostgreSQL do not compile the SQLite driver in.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/evbus/evbus/sqldb"
)

// Open opens (creating it if missing) the SQLite database in the file
// at path, set up for evbus's pattern of use: write-ahead logging (readers
// do not block the writer), a 10 s busy timeout, and transactions that take
// the write lock when they begin (BEGIN IMMEDIATE), so that two writers
// queue instead of one failing with SQLITE_BUSY when it upgrades from
// reading to writing. path may carry its own query parameters.
func Open(ctx context.Context, path string) (*sqldb.SQLDB, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: Open: empty path: want the database file's path")
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	db, err := sql.Open("sqlite", "file:"+path+sep+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	return sqldb.SQL(db, sqldb.SQLite), nil
}
