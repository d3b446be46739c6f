package codec_test

import (
	"strings"
	"testing"

	"github.com/evbus/evbus/codec"
)

// TestNewRefusesBadOptions: New names the option at fault and the fix; the
// options themselves only record.
func TestNewRefusesBadOptions(t *testing.T) {
	for _, c := range []struct {
		opts []codec.Option
		want string
	}{
		{[]codec.Option{codec.MaxArrayLen(5), nil}, "codec: New: option 2 is nil"},
		{[]codec.Option{codec.MaxBytesLen(0)}, "codec: MaxBytesLen(0): want at least 1"},
		{[]codec.Option{codec.MaxArrayLen(-1)}, "codec: MaxArrayLen(-1): want at least 1"},
		{[]codec.Option{codec.ReadSchemaIDFrom(0)}, "codec: ReadSchemaIDFrom(0): want FromPrefix, FromHeader or FromPrefix|FromHeader"},
		{[]codec.Option{codec.ReadSchemaIDFrom(4)}, "codec: ReadSchemaIDFrom(4)"},
	} {
		c2, err := codec.New(nil, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) || c2 != nil {
			t.Errorf("got %v, %v; want the error %q", c2, err, c.want)
		}
	}
	if _, err := codec.New(nil, codec.MaxBytesLen(1), codec.MaxArrayLen(1), codec.ReadSchemaIDFrom(codec.FromHeader)); err != nil {
		t.Errorf("the smallest limits: %v", err)
	}
}
