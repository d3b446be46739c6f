// Package nilinput checks, in tests, that a public entry point given nil
// returns an error naming the argument instead of panicking.
package nilinput

import (
	"strings"
	"testing"
)

// Call calls fn, a public entry point given nil for some argument: a
// panic, no error, or an error without want (the part that names the
// argument) fails t.
func Call(t testing.TB, name, want string, fn func() error) {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s panicked: %v", name, r)
			}
		}()
		err = fn()
	}()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want an error naming %q", name, err, want)
	}
}
