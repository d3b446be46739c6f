package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Conn is one connection taken out of a pool, for session state that
// must stay on one connection: PostgreSQL session advisory locks and
// LISTEN.
type Conn interface {
	Querier
	// WaitForNotification waits for a notification on a channel the
	// connection LISTENs to. ErrNotifyUnsupported when the driver has
	// none.
	WaitForNotification(ctx context.Context) error
	// Close closes the connection; it does not go back to the pool, so
	// its session state (locks, LISTEN) ends with it.
	Close()
}

// Conner is a DB that hands out connections of its own. PgxDB and SQLDB
// are Conners.
type Conner interface {
	Conn(ctx context.Context) (Conn, error)
}

// ErrNotifyUnsupported is WaitForNotification's error on a connection
// whose driver cannot wait for notifications (SQLite, or PostgreSQL
// through a database/sql driver other than pgx's).
var ErrNotifyUnsupported = errors.New("sqldb: the driver cannot wait for notifications")

// Conn takes a connection out of the pool.
func (d *PgxDB) Conn(ctx context.Context) (Conn, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	c, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &pgxConn{pgxQuerier{r: c}, c}, nil
}

type pgxConn struct {
	pgxQuerier
	c *pgxpool.Conn
}

func (c *pgxConn) WaitForNotification(ctx context.Context) error {
	_, err := c.c.Conn().WaitForNotification(ctx)
	return err
}

func (c *pgxConn) Close() {
	conn := c.c.Hijack()
	_ = conn.Close(context.Background())
}

// Conn takes a connection out of the pool.
func (d *SQLDB) Conn(ctx context.Context) (Conn, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	c, err := d.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &sqlConn{sqlQuerier{c}, c}, nil
}

type sqlConn struct {
	sqlQuerier
	c *sql.Conn
}

func (c *sqlConn) WaitForNotification(ctx context.Context) error {
	err := c.c.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return ErrNotifyUnsupported
		}
		_, err := pc.Conn().WaitForNotification(ctx)
		return err
	})
	return err
}

func (c *sqlConn) Close() {
	// ErrBadConn from Raw makes database/sql close the connection instead
	// of pooling it.
	_ = c.c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.c.Close()
}
