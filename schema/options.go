package schema

import (
	"crypto/tls"
	"time"

	"github.com/evbus/evbus/internal/telemetry"
	"github.com/evbus/evbus/tracing"
)

// Option configures a Registry. An option only records its value; New
// checks them all.
type Option func(*config)

type config struct {
	timeout  time.Duration
	tls      *tls.Config
	user     string
	pass     string
	bearer   string
	strategy Strategy
	mode     Mode
	level    Level
	tel      telemetry.Choice
}

func defaultConfig() config {
	return config{timeout: 10 * time.Second}
}

// Telemetry sets where the client reports its cache hits and misses
// (evbus.registry.lookups). Default: tracing.Default().
func Telemetry(t *tracing.Telemetry) Option {
	return func(c *config) { c.tel.Set((*telemetry.T)(t)) }
}

// Mode says how a producer finds the schema id it frames events with.
type Mode int

const (
	// AutoRegister registers the event's schema under its subject on first
	// use, after the client-side compatibility check (Confluent's
	// auto.register.schemas=true). The default.
	AutoRegister Mode = iota
	// LookupOnly only looks up a schema already registered under the
	// subject, for registries where producers may not register
	// (auto.register.schemas=false).
	LookupOnly
	// UseLatest frames with the subject's latest version and encodes with
	// it (use.latest.version=true); a latest version that is a union must
	// have the event's record as a branch.
	UseLatest
)

// Timeout bounds each registry request. Default: 10s.
func Timeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// TLS sets the TLS configuration for https registry URLs (default: the
// system roots).
func TLS(t *tls.Config) Option { return func(c *config) { c.tls = t } }

// BasicAuth sends HTTP basic credentials. Credentials in the URL
// (https://user:pass@host) are taken as basic auth too and kept out of
// errors and logs.
func BasicAuth(user, pass string) Option {
	return func(c *config) { c.user, c.pass = user, pass }
}

// BearerToken sends "Authorization: Bearer <token>".
func BearerToken(token string) Option { return func(c *config) { c.bearer = token } }

// SubjectStrategy sets how subjects are named (default TopicRecordName).
func SubjectStrategy(s Strategy) Option { return func(c *config) { c.strategy = s } }

// RegisterMode sets how producers find schema ids (default AutoRegister).
func RegisterMode(m Mode) Option { return func(c *config) { c.mode = m } }

// CompatibilityLevel makes the client-side check use level instead of asking the
// registry for the subject's level. Useful against registries that check
// nothing themselves.
func CompatibilityLevel(level Level) Option { return func(c *config) { c.level = level } }
