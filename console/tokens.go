package console

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Role is what a signed-in user may do.
type Role int

// The roles: a viewer reads every page; an operator also replays,
// discards, parks and reveals.
const (
	Viewer Role = iota + 1
	Operator
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// The environment variables TokensFromEnv reads.
const (
	OperatorTokenEnv = "EVBUS_CONSOLE_OPERATOR_TOKEN"
	ViewerTokenEnv   = "EVBUS_CONSOLE_VIEWER_TOKEN"
)

// Token is a credential: a secret that signs in with a role. Its Name
// (default the role's) is the actor the ledger records for its actions.
//
// A Token formats and logs without its secret: fmt's verbs and slog print
// the role and name only.
type Token struct {
	Role   Role
	Secret string
	Name   string
}

// String returns the token's role and name, never its secret.
func (t Token) String() string { return t.Role.String() + " " + t.name() }

// GoString is String: %#v must not print the secret either.
func (t Token) GoString() string { return t.String() }

// LogValue is what slog records of a Token: no secret.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("role", t.Role.String()), slog.String("name", t.name()))
}

func (t Token) name() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Role.String()
}

// TokensFromEnv returns the tokens of EVBUS_CONSOLE_OPERATOR_TOKEN and
// EVBUS_CONSOLE_VIEWER_TOKEN read with getenv (os.Getenv when nil); each
// may hold several tokens separated by commas. None set: no tokens.
func TokensFromEnv(getenv func(string) string) []Token {
	if getenv == nil {
		getenv = os.Getenv
	}
	var out []Token
	for _, v := range []struct {
		env  string
		role Role
	}{{OperatorTokenEnv, Operator}, {ViewerTokenEnv, Viewer}} {
		for s := range strings.SplitSeq(getenv(v.env), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, Token{Role: v.role, Secret: s})
			}
		}
	}
	return out
}

// LoadTokens reads a tokens file: one token a line, "operator <token>" or
// "viewer <token>", optionally followed by a name for the ledger
// ("operator 9f3c… alice"); blank lines and lines starting with # are
// skipped. The file must not be readable by others than its owner and
// group (chmod 600 or 640): a world-readable file is refused. Errors name
// the line, never its token.
func LoadTokens(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("console: tokens file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("console: tokens file: %w", err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("console: tokens file %s is world-readable (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	var out []Token
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || len(fields) > 3 {
			return nil, fmt.Errorf("console: tokens file %s line %d: want \"operator <token> [name]\" or \"viewer <token> [name]\"", path, n)
		}
		t := Token{Secret: fields[1]}
		switch fields[0] {
		case "operator":
			t.Role = Operator
		case "viewer":
			t.Role = Viewer
		default:
			return nil, fmt.Errorf("console: tokens file %s line %d: unknown role: want operator or viewer", path, n)
		}
		if len(fields) == 3 {
			t.Name = fields[2]
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("console: tokens file %s: %w", path, err)
	}
	return out, nil
}

// MinTokenLen is the length under which New refuses a token's secret.
const MinTokenLen = 16

// errNoTokens is New's error when no credential is configured.
var errNoTokens = errors.New("console: no credential configured: the console refuses to run without one; set " +
	OperatorTokenEnv + " and/or " + ViewerTokenEnv + ", or give a tokens file (lines \"operator <token>\" / \"viewer <token>\")")

// tokenSet checks presented secrets against the configured tokens in time
// that does not depend on where they differ.
type tokenSet struct {
	tokens []Token
	sums   [][sha256.Size]byte // SHA-256 of each secret: equal lengths for ConstantTimeCompare
}

func newTokenSet(ts []Token) (*tokenSet, error) {
	if len(ts) == 0 {
		return nil, errNoTokens
	}
	s := &tokenSet{}
	seen := make(map[[sha256.Size]byte]bool)
	for i, t := range ts {
		switch {
		case t.Role != Operator && t.Role != Viewer:
			return nil, fmt.Errorf("console: token %d (%s): role must be Operator or Viewer", i, t.name())
		case strings.TrimSpace(t.Secret) == "" || t.Secret != strings.TrimSpace(t.Secret):
			return nil, fmt.Errorf("console: token %d (%s): empty secret, or spaces around it", i, t)
		case len(t.Secret) < MinTokenLen:
			return nil, fmt.Errorf("console: token %d (%s) has %d characters: use at least %d (e.g. openssl rand -hex 24), a short token can be guessed", i, t, len(t.Secret), MinTokenLen)
		}
		sum := sha256.Sum256([]byte(t.Secret))
		if seen[sum] {
			return nil, fmt.Errorf("console: token %d (%s): the same secret is configured twice: give each role its own", i, t)
		}
		seen[sum] = true
		s.tokens = append(s.tokens, t)
		s.sums = append(s.sums, sum)
	}
	return s, nil
}

// match returns the token whose secret is secret. Every configured token
// is compared, whichever matches.
func (s *tokenSet) match(secret string) (Token, bool) {
	sum := sha256.Sum256([]byte(secret))
	found := -1
	for i := range s.sums {
		if subtle.ConstantTimeCompare(sum[:], s.sums[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return s.tokens[found], true
}
