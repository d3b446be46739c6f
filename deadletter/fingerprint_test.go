package deadletter_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

func TestNormalizeError(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"order 42 not found", "order <n> not found"},
		{"order o-42 not found", "order o-<n> not found"},
		{"amount 12.50 over limit 10", "amount <n> over limit <n>"},
		{`customer "bob" of order o-7 not found`, "customer <str> of order o-<n> not found"},
		{"customer 'bob' unknown; can't bill", "customer <str> unknown; can't bill"},
		{"field `total` missing", "field <str> missing"},
		{"user 3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6 locked", "user <uuid> locked"},
		{"user 3F2A9C1E-1B2C-4D5E-8F90-A1B2C3D4E5F6 locked", "user <uuid> locked"},
		{"schema 0xdeadbeef, commit 9fceb02a1c", "schema <hex>, commit <hex>"},
		{"deadbeef facade accepted", "deadbeef facade accepted"}, // words, no digit
		{"12345678 rows", "<n> rows"},                            // digits alone: a number
		{"timed out after 1.5s (budget 1m30s, step 250ms)", "timed out after <dur> (budget <dur>, step <dur>)"},
		{"dial tcp 10.0.0.12:5432: connection refused", "dial tcp <addr>: connection refused"},
		{"dial tcp [::1]:9092: refused", "dial tcp <addr>: refused"},
		{"db.example.com:5432 and localhost:8081 down", "<addr> and <addr> down"},
		{"GET https://api.example.com/v2/orders/42?x=1: 503", "GET <addr>: <n>"},
		{"at 2026-01-02T15:04:05.123Z: stale", "at <time>: stale"},
		{"at 2026-01-02T15:04:05+02:00: stale", "at <time>: stale"},
		{"  many \n\t spaces  ", "many spaces"},
		{"", ""},
		{`unterminated "quote 42`, `unterminated "quote <n>`},
	} {
		if got := deadletter.NormalizeError(c.in); got != c.want {
			t.Errorf("NormalizeError(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFingerprintOf(t *testing.T) {
	dl := func(kind wire.FailureKind, typ, err string) wire.DeadLetter {
		return wire.DeadLetter{Kind: kind, Type: typ, Error: err}
	}
	a := deadletter.FingerprintOf(dl(wire.KindPermanent, "com.example.OrderPlaced", `order o-1: customer "ann" not found`))
	b := deadletter.FingerprintOf(dl(wire.KindPermanent, "com.example.OrderPlaced", `order o-2: customer "bob" not found`))
	if a != b || len(a.ID) != 12 || strings.Trim(a.ID, "0123456789abcdef") != "" {
		t.Errorf("one cause, two fingerprints: %+v, %+v", a, b)
	}
	if a.Error != "order o-<n>: customer <str> not found" || a.Kind != wire.KindPermanent || a.Type != "com.example.OrderPlaced" {
		t.Errorf("fingerprint %+v", a)
	}
	for _, other := range []wire.DeadLetter{
		dl(wire.KindRetriesExhausted, "com.example.OrderPlaced", `order o-1: customer "ann" not found`),
		dl(wire.KindPermanent, "com.example.OrderCancelled", `order o-1: customer "ann" not found`),
		dl(wire.KindPermanent, "com.example.OrderPlaced", `order o-1: customer "ann" is blocked`),
		dl(wire.KindPermanent, "", `order o-1: customer "ann" not found`),
	} {
		if f := deadletter.FingerprintOf(other); f.ID == a.ID {
			t.Errorf("%+v shares %s with %+v", other, a.ID, a)
		}
	}
	// The three parts are kept apart: moving text between them changes it.
	x := deadletter.FingerprintOf(dl("ab", "c", "d"))
	y := deadletter.FingerprintOf(dl("a", "bc", "d"))
	if x.ID == y.ID {
		t.Errorf("kind ab, type c and kind a, type bc share %s", x.ID)
	}
	// The ID is fixed by the rule: the same in every process and release.
	if a.ID != "e4fb186656e7" {
		t.Errorf("ID %s: the fingerprint of a known cause changed; a change of the rule must say so in docs/operations.md", a.ID)
	}
}

// FuzzFingerprint: normalising never panics and is stable; two errors
// that differ only by an id (a number, a UUID, a quoted value) share a
// fingerprint; other kinds and types never do.
func FuzzFingerprint(f *testing.F) {
	f.Add("order", "not found", uint64(1), uint64(2), []byte("0123456789abcdef"), "com.example.T")
	f.Add(`customer "`, `" gone`, uint64(0), uint64(99999999999), []byte{}, "")
	f.Add("dial 10.0.0.1:", "refused after 5s", uint64(7), uint64(8), []byte{0xff, 0xfe}, "x")
	f.Fuzz(func(t *testing.T, prefix, suffix string, n1, n2 uint64, raw []byte, typ string) {
		// Texts past what a dead letter's error holds are cut
		// (TestNormalizeErrorBounded), which could cut an id below.
		if len(prefix)+len(suffix) > wire.MaxErrorLen/2 {
			t.Skip()
		}
		raw = raw[:min(len(raw), 64)]
		norm := deadletter.NormalizeError(prefix + suffix)
		if again := deadletter.NormalizeError(prefix + suffix); again != norm {
			t.Fatalf("NormalizeError(%q): %q, then %q", prefix+suffix, norm, again)
		}
		// The ids below are tokens: quotes in the text around them would
		// open or close a quoted value across them.
		prefix, suffix = strings.NewReplacer(`"`, "", "`", "", "'", "").Replace(prefix), strings.NewReplacer(`"`, "", "`", "", "'", "").Replace(suffix)
		var u [16]byte
		copy(u[:], raw)
		uuid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
		for _, ids := range [][2]string{
			{fmt.Sprint(n1), fmt.Sprint(n2)},
			{uuid, "00000000-0000-0000-0000-dfaa747c67d9"},
			{fmt.Sprintf(`"%d"`, n1), fmt.Sprintf(`'%x'`, raw)},
		} {
			d1 := wire.DeadLetter{Kind: wire.KindPermanent, Type: typ, Error: prefix + " " + ids[0] + " " + suffix}
			d2 := d1
			d2.Error = prefix + " " + ids[1] + " " + suffix
			f1, f2 := deadletter.FingerprintOf(d1), deadletter.FingerprintOf(d2)
			if f1 != f2 {
				t.Fatalf("%q and %q differ by an id only, yet fingerprint as %+v and %+v", d1.Error, d2.Error, f1, f2)
			}
			d3 := d1
			d3.Kind = wire.KindPoison
			d4 := d1
			d4.Type = typ + "x"
			if f3, f4 := deadletter.FingerprintOf(d3), deadletter.FingerprintOf(d4); f3.ID == f1.ID || f4.ID == f1.ID {
				t.Fatalf("another kind or type shares %s: %+v %+v %+v", f1.ID, f1, f3, f4)
			}
		}
	})
}

func ExampleFingerprintOf() {
	for _, msg := range []string{
		`order o-41: customer "ann" not found`,
		`order o-42: customer "bob" not found`,
		`payment 3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6 timed out after 2.5s at 10.0.0.7:443`,
	} {
		f := deadletter.FingerprintOf(wire.DeadLetter{Kind: wire.KindPermanent, Type: "com.example.OrderPlaced", Error: msg})
		fmt.Println(f.ID, f.Error)
	}
	// Output:
	// e4fb186656e7 order o-<n>: customer <str> not found
	// e4fb186656e7 order o-<n>: customer <str> not found
	// dfaa747c67d9 payment <uuid> timed out after <dur> at <addr>
}

// Only the contract's first MaxErrorLen bytes of an error text count, cut
// at a character boundary: what a foreign writer adds after them neither
// splits a group nor costs time.
func TestNormalizeErrorBounded(t *testing.T) {
	head := strings.Repeat("é", wire.MaxErrorLen/2) // 2 bytes a character
	a := deadletter.NormalizeError(head + " order 1 failed")
	b := deadletter.NormalizeError(head + strings.Repeat(" more", 1<<20))
	if a != b {
		t.Fatalf("texts alike in their first %d bytes normalise apart", wire.MaxErrorLen)
	}
	if odd := deadletter.NormalizeError("x" + head); !utf8.ValidString(odd) || len(odd) > wire.MaxErrorLen {
		t.Fatalf("cut inside a character or past the bound: %d bytes, valid %v", len(odd), utf8.ValidString(odd))
	}
}
