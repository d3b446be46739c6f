package codec

import "fmt"

// Option configures a Codec. An option only records its value; New checks
// them all.
type Option func(*config)

type config struct {
	maxBytes int
	maxArray int
	from     IDSource
}

// IDSource says where a decoder may read the writer schema id from.
type IDSource uint8

const (
	// FromPrefix: the 5-byte Confluent prefix of the value.
	FromPrefix IDSource = 1 << iota
	// FromHeader: the "__value_schema_id" (or key) header.
	FromHeader
)

func defaultConfig() config {
	return config{maxBytes: 8 << 20, maxArray: 100_000, from: FromPrefix | FromHeader}
}

// validate names the option at fault and the fix.
func (c *config) validate() error {
	if c.maxBytes < 1 {
		return fmt.Errorf("codec: MaxBytesLen(%d): want at least 1", c.maxBytes)
	}
	if c.maxArray < 1 {
		return fmt.Errorf("codec: MaxArrayLen(%d): want at least 1", c.maxArray)
	}
	if c.from == 0 || c.from&^(FromPrefix|FromHeader) != 0 {
		return fmt.Errorf("codec: ReadSchemaIDFrom(%d): want FromPrefix, FromHeader or FromPrefix|FromHeader", c.from)
	}
	return nil
}

// MaxBytesLen bounds the length of a string or bytes field a decoder will
// allocate. A longer length prefix, or one longer than the bytes left in
// the record, fails with ErrUndecodable before anything is allocated.
// Default: 8 MiB.
func MaxBytesLen(n int) Option { return func(c *config) { c.maxBytes = n } }

// MaxArrayLen bounds the number of items of an array or map in one record.
// Default: 100 000.
func MaxArrayLen(n int) Option { return func(c *config) { c.maxArray = n } }

// ReadSchemaIDFrom sets where the writer schema id may come from: a header,
// when given, wins over the prefix, as in Confluent's deserializers. With
// FromHeader alone a value without the header fails; with FromPrefix alone
// the header is ignored. Default: FromPrefix|FromHeader.
func ReadSchemaIDFrom(s IDSource) Option { return func(c *config) { c.from = s } }
