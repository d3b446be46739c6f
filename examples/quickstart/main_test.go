package main

import (
	"bytes"
	"strings"
	"testing"
)

// The demo runs in CI: its story and its summary figures are asserted.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"billing  charges c-7 49.99 for o-1001",
		"key=o-1003 kind=permanent attempts=1 from orders/",
		"error: order o-1003: total 0.00 is not positive",
		"key=o-1005 kind=poison attempts=0",
		"wrong magic byte",
		"summary: published=5 handled=3 dead-lettered=2 (permanent=1 poison=1)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
