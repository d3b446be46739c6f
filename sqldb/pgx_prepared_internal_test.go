package sqldb

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestParamsEncodeTheCommonTypes: the types ExecPrepared promises to
// encode itself are encoded, not handed back to pgx (which would write
// the same rows, only slower: TestExecPreparedWritesWhatExecWrites checks
// the rows).
func TestParamsEncodeTheCommonTypes(t *testing.T) {
	for _, c := range []struct {
		oid  uint32
		arg  any
		want bool
	}{
		{pgtype.TextOID, "s", true},
		{pgtype.Int4OID, "7", true},
		{pgtype.ByteaOID, []byte{1}, true},
		{pgtype.ByteaOID, []byte(nil), true},
		{pgtype.Int4OID, int32(1), true},
		{pgtype.Int4OID, 1, true},
		{pgtype.Int8OID, int64(1), true},
		{pgtype.Int8OID, int32(1), true},
		{pgtype.TimestamptzOID, time.Now(), true},
		{pgtype.Int4ArrayOID, []int32{1}, true},
		{pgtype.Int4OID, nil, true},
		{pgtype.JSONBOID, []byte("{}"), false},
		{pgtype.Int4OID, int64(1 << 31), false},
		{pgtype.Int8OID, uint64(1), false},
		{pgtype.TextOID, time.Now(), false},
		{pgtype.Int4ArrayOID, []int64{1}, false},
	} {
		p := new(params)
		if got := p.encode([]uint32{c.oid}, []any{c.arg}); got != c.want {
			t.Errorf("%T for type %d: encoded %v, want %v", c.arg, c.oid, got, c.want)
		}
	}
}

// BenchmarkParams: the Go work of encoding the ten arguments of an outbox
// Exec of one event (a business row of text, text and bigint, then the
// outbox row and its lock), by params ("evbus") and by pgx's
// ExtendedQueryBuilder for its prepared statements ("pgx"). Run:
//
//	go test ./sqldb -run '^$' -bench Params -benchmem -count 5
func BenchmarkParams(b *testing.B) {
	oids := []uint32{pgtype.TextOID, pgtype.TextOID, pgtype.Int8OID, pgtype.Int4OID, pgtype.TextOID, pgtype.ByteaOID, pgtype.ByteaOID, pgtype.ByteaOID, pgtype.TimestamptzOID, pgtype.Int4OID}
	args := []any{"order-1", "c-1", int64(1), int32(0), "orders", []byte("order-1"), make([]byte, 20), make([]byte, 250), time.Now(), int32(7)}
	b.Run("evbus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := paramsPool.Get().(*params)
			if !p.encode(oids, args) {
				b.Fatal("not encoded")
			}
			p.release()
		}
	})
	b.Run("pgx", func(b *testing.B) {
		b.ReportAllocs()
		var eqb pgx.ExtendedQueryBuilder
		m := pgtype.NewMap()
		sd := &pgconn.StatementDescription{ParamOIDs: oids}
		for b.Loop() {
			if err := eqb.Build(m, sd, args); err != nil {
				b.Fatal(err)
			}
		}
	})
}
