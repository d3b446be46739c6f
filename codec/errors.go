package codec

import (
	"errors"
	"fmt"
)

// Errors a caller can match with errors.Is. Decoding errors wrap one of them,
// usually inside a *DecodeError that carries the schema id.
var (
	// ErrWrongMagic: the value does not start with the Confluent magic byte
	// 0x00, or a schema id header starts with neither 0x00 nor 0x01.
	ErrWrongMagic = errors.New("codec: wrong magic byte")
	// ErrTruncated: the value or header is shorter than its frame.
	ErrTruncated = errors.New("codec: truncated frame")
	// ErrUnknownSchema: the registry does not know the writer schema id.
	ErrUnknownSchema = errors.New("codec: unknown schema id")
	// ErrUndecodable: the Avro body does not decode with the writer schema.
	ErrUndecodable = errors.New("codec: undecodable body")
	// ErrIncompatible: the writer schema cannot be resolved to the reader
	// schema, or a schema change breaks a compatibility rule.
	ErrIncompatible = errors.New("codec: incompatible schema")
	// ErrInvalidSchema: a schema text does not parse as Avro.
	ErrInvalidSchema = errors.New("codec: invalid schema")
	// ErrEncode: a value does not match the schema it is encoded with.
	ErrEncode = errors.New("codec: cannot encode value")
	// ErrNilValue: the value, or a field the schema requires, is nil. It
	// comes wrapped together with ErrEncode.
	ErrNilValue = errors.New("nil value")
)

// DecodeError is returned by decoding. It names the writer schema (id or
// GUID, when the frame was read far enough to know it) and wraps one of the
// sentinel errors above.
type DecodeError struct {
	SchemaID int    // 0 when not known
	GUID     string // set when the schema was named by GUID
	Err      error
}

func (e *DecodeError) Error() string {
	switch {
	case e.GUID != "":
		return fmt.Sprintf("decode (schema guid %s): %v", e.GUID, e.Err)
	case e.SchemaID != 0:
		return fmt.Sprintf("decode (schema id %d): %v", e.SchemaID, e.Err)
	}
	return "decode: " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// IncompatibleError says which field makes a reader schema unable to read
// what a writer schema wrote. It matches ErrIncompatible.
type IncompatibleError struct {
	Path   string // dotted field path from the top record, "" for the top level
	Reason string
}

func (e *IncompatibleError) Error() string {
	if e.Path == "" {
		return "incompatible schema: " + e.Reason
	}
	return fmt.Sprintf("incompatible schema: field %s: %s", e.Path, e.Reason)
}

func (e *IncompatibleError) Is(target error) bool { return target == ErrIncompatible }
