package codec

// Option configures a Codec.
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

// Defaults for the decoding limits.
const (
	DefaultMaxBytesLen = 8 << 20
	DefaultMaxArrayLen = 100_000
)

func defaultConfig() config {
	return config{maxBytes: DefaultMaxBytesLen, maxArray: DefaultMaxArrayLen, from: FromPrefix | FromHeader}
}

// MaxBytesLen bounds the length of a string or bytes field a decoder will
// allocate (default DefaultMaxBytesLen, 8 MiB; n <= 0 keeps the default). A
// longer length prefix, or one longer than the bytes left in the record,
// fails with ErrUndecodable before anything is allocated.
func MaxBytesLen(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBytes = n
		}
	}
}

// MaxArrayLen bounds the number of items of an array or map in one record
// (default DefaultMaxArrayLen, 100 000; n <= 0 keeps the default).
func MaxArrayLen(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxArray = n
		}
	}
}

// ReadSchemaIDFrom sets where the writer schema id may come from (default
// FromPrefix|FromHeader: a header, when given, wins over the prefix, as in
// Confluent's deserializers). With FromHeader alone a value without the
// header fails; with FromPrefix alone the header is ignored.
func ReadSchemaIDFrom(s IDSource) Option { return func(c *config) { c.from = s } }
