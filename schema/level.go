package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/evbus/evbus/codec"
)

// Level is a registry compatibility level: which earlier versions of a
// subject a new schema is checked against, and in which direction.
type Level string

// The seven levels of Confluent's Schema Registry.
const (
	None               Level = "NONE"
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
)

// Levels lists every level, in the registry's order.
var Levels = []Level{None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive}

// ParseLevel parses a level name, case-insensitively.
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(strings.TrimSpace(s)))
	for _, known := range Levels {
		if l == known {
			return l, nil
		}
	}
	return "", fmt.Errorf("schema: compatibility level %q: want one of NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE", s)
}

// CheckLevel checks next against the versions already registered under a
// subject (oldest first) at level. The non-transitive levels look at the
// latest version only. The error wraps codec.ErrIncompatible and names the
// version and the field:
//
//	BACKWARD: consumers on next can read data written with the earlier version
//	FORWARD:  consumers on the earlier version can read data written with next
//	FULL:     both
func CheckLevel(level Level, next *codec.Schema, existing []*codec.Schema) error {
	if next == nil {
		return fmt.Errorf("%w: nil schema", codec.ErrInvalidSchema)
	}
	if len(existing) == 0 || level == None {
		return nil
	}
	if _, err := ParseLevel(string(level)); err != nil {
		return err
	}
	against := existing
	if !strings.HasSuffix(string(level), "_TRANSITIVE") {
		against = existing[len(existing)-1:]
	}
	backward := strings.HasPrefix(string(level), "BACKWARD") || strings.HasPrefix(string(level), "FULL")
	forward := strings.HasPrefix(string(level), "FORWARD") || strings.HasPrefix(string(level), "FULL")
	// Newest first: the closest version is the most telling one to report.
	for i := len(against) - 1; i >= 0; i-- {
		old := against[i]
		version := len(existing) - len(against) + i + 1
		if backward {
			if err := codec.Compatible(next, old); err != nil {
				return &LevelError{Level: level, Version: version, Direction: "new schema cannot read data written with", Err: err}
			}
		}
		if forward {
			if err := codec.Compatible(old, next); err != nil {
				return &LevelError{Level: level, Version: version, Direction: "data written with the new schema cannot be read by", Err: err}
			}
		}
	}
	return nil
}

// LevelError says which earlier version a schema breaks at a level, and
// how. It wraps the *codec.IncompatibleError that names the field.
type LevelError struct {
	Level     Level
	Version   int // position of the earlier schema, 1 for the first
	Direction string
	Err       error
}

func (e *LevelError) Error() string {
	return fmt.Sprintf("%s: %s version %d: %v", e.Level, e.Direction, e.Version, e.Err)
}

func (e *LevelError) Unwrap() error { return e.Err }

// Field returns the path of the field that breaks compatibility.
func (e *LevelError) Field() string {
	var ie *codec.IncompatibleError
	if errors.As(e.Err, &ie) {
		return ie.Path
	}
	return ""
}
