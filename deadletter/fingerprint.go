package deadletter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/evbus/evbus/wire"
)

// Fingerprint is the cause of a failure: what dead letters of one cause
// share.
type Fingerprint struct {
	ID    string           // the first 12 hex digits of the SHA-256 of Kind, Type and Error
	Kind  wire.FailureKind // dlt-error-kind
	Type  string           // ce_type; "" when the record had none
	Error string           // dlt-error, normalised by NormalizeError
}

// FingerprintOf returns the fingerprint of d.
func FingerprintOf(d wire.DeadLetter) Fingerprint {
	f := Fingerprint{Kind: d.Kind, Type: d.Type, Error: NormalizeError(d.Error)}
	h := sha256.New()
	for _, s := range []string{string(f.Kind), f.Type, f.Error} {
		// Length-prefixed, so that no two triples hash the same bytes.
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	f.ID = hex.EncodeToString(h.Sum(nil))[:12]
	return f
}

// The placeholders NormalizeError writes.
const (
	placeString   = "<str>"
	placeAddress  = "<addr>"
	placeTime     = "<time>"
	placeUUID     = "<uuid>"
	placeHex      = "<hex>"
	placeDuration = "<dur>"
	placeNumber   = "<n>"
)

// normalizers are NormalizeError's rules, in the order they apply.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	// Quoted values; a single quote opens one only where it does not
	// follow a letter or digit, so that "can't" stays a word.
	{regexp.MustCompile("\"[^\"]*\"|`[^`]*`"), placeString},
	{regexp.MustCompile(`(^|[^\pL\pN])'[^']*'`), "${1}" + placeString},
	// URLs, IPv4 and bracketed IPv6 addresses, host:port.
	{regexp.MustCompile(`\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]*[^\s"'<>:,.;)]`), placeAddress},
	{regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`), placeAddress},
	{regexp.MustCompile(`\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](:\d+)?`), placeAddress},
	{regexp.MustCompile(`\b(localhost|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+):\d+\b`), placeAddress},
	// RFC 3339 times.
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`), placeTime},
	// UUIDs, then hex: 0x-prefixed, or a run of 8 or more hex digits
	// holding a letter and a digit (a run of digits alone is a number).
	{regexp.MustCompile(`\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b`), placeUUID},
	{regexp.MustCompile(`\b0[xX][0-9a-fA-F]+\b|\b[0-9]*[a-fA-F][0-9a-fA-F]*\b`), ""}, // see hexRun
	// Go durations (1.5s, 1m30s, 250ms), then numbers.
	{regexp.MustCompile(`\b(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+\b`), placeDuration},
	{regexp.MustCompile(`\d+(\.\d+)?`), placeNumber},
}

// hexRun reports whether s, a word of hex digits, reads as an id: 0x
// before it, or 8 or more digits holding a letter and a digit.
func hexRun(s string) bool {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return true
	}
	return len(s) >= 8 && strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "abcdefABCDEF")
}

// NormalizeError takes out of an error text what varies between failures
// of one cause. In this order it replaces
//
//   - a quoted value ("…", `…`, or '…' where the quote does not follow a
//     letter or digit) with <str>;
//   - a URL (scheme://…, less a trailing :,.;)), an IPv4 address (with its port), a bracketed
//     IPv6 address (with its port) and host:port (localhost, or a dotted
//     name) with <addr>;
//   - an RFC 3339 time with <time>;
//   - a UUID with <uuid>;
//   - a word of hex digits that starts with 0x, or is 8 or more hex digits
//     with at least one letter and one digit, with <hex>;
//   - a Go duration (250ms, 1.5s, 1m30s) with <dur>;
//   - every other run of digits, with its decimals, with <n>;
//
// and then folds each run of white space into one space and trims the
// ends. The result is the same for the same text, in every process. Only
// the first wire.MaxErrorLen bytes count (cut at a character boundary):
// the contract's writers never write more, and a foreign writer's longer
// text costs no more to group.
func NormalizeError(s string) string {
	if len(s) > wire.MaxErrorLen {
		n := wire.MaxErrorLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	for _, n := range normalizers {
		if n.with == "" {
			s = n.re.ReplaceAllStringFunc(s, func(w string) string {
				if hexRun(w) {
					return placeHex
				}
				return w
			})
			continue
		}
		s = n.re.ReplaceAllString(s, n.with)
	}
	return strings.Join(strings.Fields(s), " ")
}
