package sqldb

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Class is what an error of the database says about running the same
// work again: the one place where evbus reads SQLSTATEs and SQLite's result
// codes.
type Class uint8

const (
	// Unclassified: nothing in the error says; whether the database
	// answers (DB.Ping) does.
	Unclassified Class = iota
	// Unavailable: the database cannot serve now (it cannot be reached,
	// the connection was lost, it is shutting down or starting, it is out
	// of connections, disk or memory, or it is a read-only standby): wait,
	// then run the work again.
	Unavailable
	// Conflict: a concurrent transaction won (serialization failure,
	// deadlock, a lock not granted; SQLite busy or locked): run the
	// transaction again.
	Conflict
	// Refused: the statement's data broke a rule (data exceptions, class
	// 22; integrity constraints, class 23, also at COMMIT for deferred
	// ones; program limits, class 54; SQLite's constraint, too big and
	// mismatch): the same data fails again.
	Refused
	// Aborted: the transaction had already failed (25P02), or COMMIT
	// rolled back (pgx.ErrTxCommitRollback): a statement failed earlier and
	// its error was not acted on.
	Aborted
)

func (c Class) String() string {
	switch c {
	case Unavailable:
		return "unavailable"
	case Conflict:
		return "conflict"
	case Refused:
		return "refused"
	case Aborted:
		return "aborted"
	}
	return "unclassified"
}

// Classify sorts err, an error of a statement, a commit or a connection.
// It reads PostgreSQL's SQLSTATE from any error with an SQLState method
// (pgconn.PgError, through pgx or database/sql), SQLite's result code from
// any error with a Code() int method (modernc.org/sqlite's Error), and
// knows pgx's and the network's connection errors. A cancelled or expired
// context is Unclassified: whose deadline it was is not the database's to
// say.
func Classify(err error) Class {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Unclassified
	case errors.Is(err, pgx.ErrTxCommitRollback):
		return Aborted
	}
	if st, ok := errors.AsType[sqlStateError](err); ok {
		return classifySQLState(st.SQLState())
	}
	if lite, ok := errors.AsType[resultCodeError](err); ok {
		return classifySQLite(lite.Code())
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return Unavailable
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return Unavailable
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) {
		return Unavailable
	}
	return Unclassified
}

// sqlStateError is PostgreSQL's error, through any driver.
type sqlStateError interface {
	error
	SQLState() string
}

// resultCodeError is SQLite's error (modernc.org/sqlite's *Error).
type resultCodeError interface {
	error
	Code() int
}

// classifySQLState sorts a PostgreSQL SQLSTATE (Appendix A of its manual).
func classifySQLState(code string) Class {
	if len(code) != 5 {
		return Unclassified
	}
	switch code {
	case "40001", "40P01", "55P03": // serialization_failure, deadlock_detected, lock_not_available
		return Conflict
	case "57P01", "57P02", "57P03", "57P04", "57P05": // admin, crash shutdown, cannot connect now, database dropped, idle session timeout
		return Unavailable
	case "25006": // read_only_sql_transaction: a standby, after a failover
		return Unavailable
	case "25P02": // in_failed_sql_transaction
		return Aborted
	case "40002": // transaction_integrity_constraint_violation
		return Refused
	}
	switch code[:2] {
	case "08", "53", "58": // connection exception, insufficient resources, system error
		return Unavailable
	case "22", "23", "54": // data exception, integrity constraint violation, program limit exceeded
		return Refused
	}
	return Unclassified
}

// classifySQLite sorts an SQLite result code, primary or extended.
func classifySQLite(code int) Class {
	switch code & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return Conflict
	case 7, 8, 10, 13, 14: // SQLITE_NOMEM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
		return Unavailable
	case 18, 19, 20: // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH
		return Refused
	}
	return Unclassified
}
