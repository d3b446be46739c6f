package uuid7

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// Ids are RFC 9562 version 7, variant 10, and strictly increasing even
// when the clock stands still or steps back.
func TestAppend(t *testing.T) {
	var g Generator
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 10000 {
		at := now
		if i%3 == 2 {
			at = now.Add(-time.Second) // a clock that steps back
		}
		buf, id, err := g.Append([]byte("prefix"), at)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:6]) != "prefix" || len(id) != Len || string(buf[6:]) != string(id) {
			t.Fatalf("Append = %q, id %q", buf, id)
		}
		u, err := uuid.Parse(string(id))
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%q is not an RFC 9562 UUIDv7: %v", id, err)
		}
		if sec, _ := u.Time().UnixTime(); sec < now.Add(-time.Second).Unix() || sec > now.Unix()+1 {
			t.Fatalf("%q carries time %d, want about %d", id, sec, now.Unix())
		}
		if string(id) <= prev {
			t.Fatalf("id %d %q does not sort after %q", i, id, prev)
		}
		prev = string(id)
	}
}

// BenchmarkAppend sets the generator against what a service would write
// by hand, in the same run: google/uuid's NewV7 and String, with the
// clock read the record needs for its time anyway.
//
//	go test ./internal/uuid7 -run '^$' -bench . -count 6
func BenchmarkAppend(b *testing.B) {
	b.Run("impl=uuid7", func(b *testing.B) {
		var g Generator
		buf := make([]byte, 0, Len)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := g.Append(buf[:0], time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=google-uuid", func(b *testing.B) {
		buf := make([]byte, 0, Len)
		b.ReportAllocs()
		for b.Loop() {
			_ = time.Now()
			u, err := uuid.NewV7()
			if err != nil {
				b.Fatal(err)
			}
			buf = append(buf[:0], u.String()...)
		}
	})
}
