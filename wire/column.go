package wire

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The outbox's headers column holds all of a record's headers, in order,
// in this stable form, readable by any language:
//
//	version byte 0x01
//	for each header: uvarint len(key), key, uvarint len(value), value
//
// (uvarint as in Protocol Buffers and encoding/binary). A header with a
// nil value is stored with length 0 and read back as an empty value.
const headersV1 = 0x01

// ErrHeadersColumn is the error of a headers column that is not in the
// form AppendHeadersColumn writes.
var ErrHeadersColumn = errors.New("wire: damaged outbox headers column")

// AppendHeadersColumn appends hs to buf in the form of the outbox's
// headers column.
func AppendHeadersColumn(buf []byte, hs []kgo.RecordHeader) []byte {
	// One allocation: lengths under 128 take one byte each.
	n := 1
	for _, h := range hs {
		n += 2 + len(h.Key) + len(h.Value)
	}
	buf = slices.Grow(buf, n)
	buf = append(buf, headersV1)
	for _, h := range hs {
		buf = binary.AppendUvarint(buf, uint64(len(h.Key)))
		buf = append(buf, h.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(h.Value)))
		buf = append(buf, h.Value...)
	}
	return buf
}

// AppendParsedHeadersColumn appends to hs the headers AppendHeadersColumn
// wrote in b; ErrHeadersColumn when b is not in that form. The values
// share b's memory; the event headers' names are the package's constants,
// so a row's headers cost no allocation of their own.
func AppendParsedHeadersColumn(hs []kgo.RecordHeader, b []byte) ([]kgo.RecordHeader, error) {
	if len(b) == 0 || b[0] != headersV1 {
		return hs, ErrHeadersColumn
	}
	b = b[1:]
	for len(b) > 0 {
		var k, v []byte
		var ok bool
		if k, b, ok = field(b); !ok {
			return hs, ErrHeadersColumn
		}
		if v, b, ok = field(b); !ok {
			return hs, ErrHeadersColumn
		}
		name, known := headerNames[string(k)]
		if !known {
			name = string(k)
		}
		hs = append(hs, kgo.RecordHeader{Key: name, Value: v})
	}
	return hs, nil
}

// headerNames are the header names a row usually holds.
var headerNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		HeaderSpecVersion, HeaderID, HeaderSource, HeaderType, HeaderTime, HeaderSubject,
		HeaderCorrelationID, HeaderCausationID, HeaderContentType, HeaderTraceParent, HeaderTraceState,
	} {
		m[n] = n
	}
	return m
}()

func field(b []byte) (f, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	b = b[w:]
	return b[:n:n], b[n:], true
}
