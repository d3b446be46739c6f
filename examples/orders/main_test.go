package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// make demo runs this program; CI runs it here, and its story and summary
// figures are asserted.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"placed 5 orders: order row + domain event + outbox row, one transaction each; outbox backlog 5",
		"billing handled 4 and dead-lettered 1 (o-3 is over the credit limit); notifications handled 5",
		"both groups skipped it as a duplicate",
		"replayed 1 of 1 selected dead letters of group billing through orders.billing.replay",
		"billing handled o-3 1 time(s) after the replay; notifications handled it 1 time(s) in all",
		"create orders  <- POST /orders",
		"publish orders  <- create orders",
		"process orders  <- publish orders  [billing: ok]",
		"process orders  <- publish orders  [notifications: ok]",
		"process orders  <- publish orders  [billing: duplicate]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, row := range []string{
		`billing\s+5\s+5\s+1\s+1\s+1`,
		`notifications\s+5\s+5\s+1\s+0\s+0`,
	} {
		if !regexp.MustCompile(row).MatchString(got) {
			t.Errorf("summary lacks the row %s", row)
		}
	}
	if !regexp.MustCompile(`orders\.billing\.dlt\s+\d\s+0\s+\S+\s+com\.example\.orders\.OrderPlaced\s+o-3\s+permanent\s+0\s+open\s+order o-3: 25000\.00 is over the credit limit`).MatchString(got) {
		t.Error("evbus dlt ls does not show o-3's dead letter")
	}
	// Triage: one cause, one dead letter, open; after the replay of that
	// cause, billing's consumer records the outcome: resolved.
	if !regexp.MustCompile(`[0-9a-f]{12}\s+1\s+\S+\s+\S+\s+permanent\s+com\.example\.orders\.OrderPlaced\s+orders\.billing\.dlt/\d/0\s+open 1\s+order o-<n>: <n> is over the credit limit`).MatchString(got) {
		t.Error("evbus dlt groups does not show o-3's cause")
	}
	if !regexp.MustCompile(`orders\.billing\.dlt\s+\d\s+0\s+\S+\s+com\.example\.orders\.OrderPlaced\s+o-3\s+permanent\s+1\s+resolved\s+order o-3`).MatchString(got) {
		t.Error("evbus dlt ls does not show o-3's dead letter replayed")
	}
	if t.Failed() {
		t.Log(got)
	}
}
