package testkit

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds, failing tb after Guard.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	WaitForState(tb, what, func() (bool, string) { return cond(), "" })
}

// WaitForState polls cond until it holds, failing tb after Guard with
// what cond said last.
func WaitForState(tb testing.TB, what string, cond func() (ok bool, state string)) {
	tb.Helper()
	deadline := time.Now().Add(Guard)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if state != "" {
				tb.Fatalf("waited %v for %s; last seen: %s", Guard, what, state)
			}
			tb.Fatalf("waited %v for %s", Guard, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
