package wire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateError(t *testing.T) {
	long := strings.Repeat("é", MaxErrorLen)
	got := truncateError(long)
	if len(got) > MaxErrorLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("truncateError: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if s := "short"; truncateError(s) != s {
		t.Error("a short error was changed")
	}
}
