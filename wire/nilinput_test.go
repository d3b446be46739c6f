package wire_test

import (
	"testing"
	"time"

	"github.com/evbus/evbus/internal/nilinput"
	"github.com/evbus/evbus/wire"
)

// Every function of wire given nil where it needs a record returns an
// error that names the argument, or an empty result, and does not panic.
func TestNilInput(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		fn         func() error
	}{
		{"ParseDeadLetter(nil)", "ParseDeadLetter: nil record", func() error { _, err := wire.ParseDeadLetter(nil); return err }},
		{"ReplayCount(nil)", "ReplayCount: nil record", func() error { _, err := wire.ReplayCount(nil); return err }},
		{"ReplayRecord(no record)", "ReplayRecord", func() error { _, err := wire.ReplayRecord(wire.DeadLetter{}, time.Time{}); return err }},
	} {
		nilinput.Call(t, tc.name, tc.want, tc.fn)
	}
	if wire.ReplayOf(nil) != "" || wire.DeadLetterID(nil) != "" {
		t.Error("ReplayOf or DeadLetterID of a nil record is not empty")
	}
}
