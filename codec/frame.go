package codec

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Header names under which Confluent serializers in header mode carry the
// schema id of a record's key and value.
const (
	KeySchemaIDHeader   = "__key_schema_id"
	ValueSchemaIDHeader = "__value_schema_id"
)

const (
	magicID   = 0x00 // followed by a 4-byte big-endian schema id
	magicGUID = 0x01 // followed by a 16-byte schema GUID
	prefixLen = 5
)

// Frame is a parsed record value: which writer schema it names and its Avro
// body. Exactly one of ID and GUID is set.
type Frame struct {
	ID   int
	GUID [16]byte
	Body []byte
}

// HasGUID reports whether the frame names its schema by GUID.
func (f Frame) HasGUID() bool { return f.GUID != [16]byte{} }

// GUIDString returns the GUID in its registry form
// (8-4-4-4-12 lowercase hex), "" when the frame has an id instead.
func (f Frame) GUIDString() string {
	if !f.HasGUID() {
		return ""
	}
	return formatGUID(f.GUID)
}

// ParseFrame locates the writer schema of a record value. When schemaHeader
// (the value of the "__value_schema_id" header, or nil) is set, it names the
// schema and the whole value is the Avro body; otherwise the value carries the
// Confluent prefix. The body aliases value.
func ParseFrame(value, schemaHeader []byte) (Frame, error) {
	if schemaHeader != nil {
		f, err := parseSchemaID(schemaHeader)
		if err != nil {
			return Frame{}, fmt.Errorf("schema id header: %w", err)
		}
		f.Body = value
		return f, nil
	}
	if len(value) < prefixLen {
		return Frame{}, fmt.Errorf("%w: value of %d bytes is shorter than the 5-byte Confluent prefix", ErrTruncated, len(value))
	}
	if value[0] != magicID {
		return Frame{}, fmt.Errorf("%w: value starts with 0x%02x, want 0x00", ErrWrongMagic, value[0])
	}
	id := int(binary.BigEndian.Uint32(value[1:prefixLen]))
	return Frame{ID: id, Body: value[prefixLen:]}, nil
}

func parseSchemaID(b []byte) (Frame, error) {
	if len(b) == 0 {
		return Frame{}, fmt.Errorf("%w: empty", ErrTruncated)
	}
	switch b[0] {
	case magicID:
		if len(b) < prefixLen {
			return Frame{}, fmt.Errorf("%w: %d bytes, want 5", ErrTruncated, len(b))
		}
		return Frame{ID: int(binary.BigEndian.Uint32(b[1:prefixLen]))}, nil
	case magicGUID:
		if len(b) < 17 {
			return Frame{}, fmt.Errorf("%w: %d bytes, want 17", ErrTruncated, len(b))
		}
		var f Frame
		copy(f.GUID[:], b[1:17])
		if !f.HasGUID() {
			return Frame{}, fmt.Errorf("%w: all-zero schema GUID", ErrUnknownSchema)
		}
		return f, nil
	}
	return Frame{}, fmt.Errorf("%w: header starts with 0x%02x, want 0x00 or 0x01", ErrWrongMagic, b[0])
}

// AppendPrefix appends the 5-byte Confluent prefix for schema id to dst.
func AppendPrefix(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, magicID), uint32(id))
}

// AppendGUIDHeader appends the header-mode schema id for a GUID (0x01 and
// the 16 bytes) to dst.
func AppendGUIDHeader(dst []byte, guid [16]byte) []byte {
	return append(append(dst, magicGUID), guid[:]...)
}

// ParseGUID parses a GUID in its registry text form.
func ParseGUID(s string) ([16]byte, error) {
	var g [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("codec: GUID %q is not in 8-4-4-4-12 form", s)
	}
	hexDigits := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(g[:], []byte(hexDigits)); err != nil {
		return g, fmt.Errorf("codec: GUID %q: %w", s, err)
	}
	return g, nil
}

func formatGUID(g [16]byte) string {
	h := hex.EncodeToString(g[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
