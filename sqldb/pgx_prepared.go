package sqldb

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgxTx is what ExecPrepared needs of a pgx.Tx: Prepare, which fails once
// the transaction has ended (so that a statement never runs on a
// connection handed to someone else), and the connection.
type pgxTx interface {
	Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error)
	Conn() *pgx.Conn
}

// ExecPrepared runs query in the transaction as pgx's default mode does
// (prepared on the connection once, then bound and executed in one round
// trip), but encodes arguments of the common types itself: a string as
// text, and in PostgreSQL's binary form []byte for bytea, int32, int64 and
// int for integer and bigint, time.Time for timestamptz and []int32 for
// integer[]. pgx plans each argument's encoding through its type map,
// which for a statement of ten arguments costs the writer more than all
// the rest of its work. It is pgx's Exec when the pool's connection
// configuration has a tracer (which must see every statement) or a mode
// other than pgx.QueryExecModeCacheStatement, and when an argument is of
// another type.
func (q pgxQuerier) ExecPrepared(ctx context.Context, query string, args ...any) (int64, error) {
	tx, ok := q.r.(pgxTx)
	if !ok || !q.prepare {
		return q.Exec(ctx, query, args...)
	}
	c := tx.Conn()
	// With query as its name, pgx keeps the statement for the
	// connection's life and finds it again without a round trip; pgx's
	// Exec of query would use it too.
	sd, err := tx.Prepare(ctx, query, query)
	if err != nil {
		return 0, err
	}
	p := paramsPool.Get().(*params)
	defer p.release()
	if !p.encode(sd.ParamOIDs, args) {
		return q.Exec(ctx, query, args...)
	}
	tag, err := c.PgConn().ExecPrepared(ctx, sd.Name, p.values, p.formats, nil).Close()
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "26000" { // invalid_sql_statement_name
			// The server dropped it (DISCARD ALL): forget it, so that
			// the next call prepares it again.
			_ = c.Deallocate(context.WithoutCancel(ctx), query)
		}
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// prepares reports whether ExecPrepared runs its own path on connections
// of cfg: pgx's default mode, which prepares statements, and no tracer.
// (pgx.Conn.Config copies the configuration: too dear for every call.)
func prepares(cfg *pgx.ConnConfig) bool {
	return cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement && cfg.Tracer == nil
}

// pgEpoch is PostgreSQL's zero time, in microseconds since Unix's.
const pgEpoch = 946_684_800_000_000

// params are a statement's arguments in the protocol's form.
type params struct {
	values  [][]byte
	formats []int16
	buf     []byte // room for the binary forms of numbers, times and arrays
}

var paramsPool = sync.Pool{New: func() any { return new(params) }}

// release returns p to paramsPool, holding none of the arguments.
func (p *params) release() {
	clear(p.values)
	p.values, p.formats, p.buf = p.values[:0], p.formats[:0], p.buf[:0]
	paramsPool.Put(p)
}

// encode sets p to args, for parameters of types oids; false when an
// argument is not one it encodes (pgx will) or there are not as many as
// parameters (pgx reports it).
func (p *params) encode(oids []uint32, args []any) bool {
	if len(oids) != len(args) {
		return false
	}
	for i, a := range args {
		v, format, ok := p.encodeOne(oids[i], a)
		if !ok {
			return false
		}
		p.values = append(p.values, v)
		p.formats = append(p.formats, format)
	}
	return true
}

// encodeOne returns the value and format code of a, a parameter of type
// oid, as pgx would send it; false when it is not a type handled here.
// The values share memory with a or p.buf: they are read until the
// statement is sent.
func (p *params) encodeOne(oid uint32, a any) ([]byte, int16, bool) {
	const text, bin = pgtype.TextFormatCode, pgtype.BinaryFormatCode
	switch v := a.(type) {
	case nil:
		return nil, bin, true
	case string:
		// As pgx does: text, which the parameter's type parses.
		return unsafe.Slice(unsafe.StringData(v), len(v)), text, true
	case []byte:
		return v, bin, oid == pgtype.ByteaOID
	case int32:
		return p.integer(oid, int64(v))
	case int64:
		return p.integer(oid, v)
	case int:
		return p.integer(oid, int64(v))
	case time.Time:
		if oid != pgtype.TimestamptzOID {
			return nil, 0, false
		}
		return p.take(binary.BigEndian.AppendUint64(p.buf, uint64(v.UnixMicro()-pgEpoch))), bin, true
	case []int32:
		if oid != pgtype.Int4ArrayOID {
			return nil, 0, false
		}
		// One dimension (none when empty), no nulls, int4 elements.
		b := binary.BigEndian.AppendUint32(p.buf, uint32(min(len(v), 1)))
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, pgtype.Int4OID)
		if len(v) > 0 {
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = binary.BigEndian.AppendUint32(b, 1)
		}
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, 4)
			b = binary.BigEndian.AppendUint32(b, uint32(x))
		}
		return p.take(b), bin, true
	}
	return nil, 0, false
}

// integer encodes n for an integer or bigint parameter; false for another
// type, or a value the parameter's type cannot hold (pgx reports it).
func (p *params) integer(oid uint32, n int64) ([]byte, int16, bool) {
	switch {
	case oid == pgtype.Int8OID:
		return p.take(binary.BigEndian.AppendUint64(p.buf, uint64(n))), pgtype.BinaryFormatCode, true
	case oid == pgtype.Int4OID && n >= math.MinInt32 && n <= math.MaxInt32:
		return p.take(binary.BigEndian.AppendUint32(p.buf, uint32(n))), pgtype.BinaryFormatCode, true
	}
	return nil, 0, false
}

// take takes b, p.buf with a value appended, as p.buf and returns the
// value.
func (p *params) take(b []byte) []byte {
	start := len(p.buf)
	p.buf = b
	return b[start:]
}
