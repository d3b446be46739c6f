package devstack

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
)

// Option configures Start. An option only records its value; Start checks
// them all.
type Option func(*config)

type config struct {
	dataDir      string
	kafkaPort    int
	registryPort int
	partitions   int
	logger       *slog.Logger
	basic        *[2]string // RegistryBasicAuth's user and password
	bearer       *string    // RegistryBearerToken's token
	tls          *tls.Config
	tlsSet       bool // TLS was given, nil too
	sasl         []saslUser
}

func defaultConfig() config {
	return config{
		partitions: 3,
		logger:     slog.New(slog.DiscardHandler),
	}
}

// validate names the option at fault and the fix.
func (c *config) validate() error {
	for _, p := range []struct {
		name string
		port int
	}{{"KafkaPort", c.kafkaPort}, {"RegistryPort", c.registryPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("devstack: %s(%d): want a port from 1 to 65535, or 0 for a free one", p.name, p.port)
		}
	}
	if c.partitions < 1 {
		return fmt.Errorf("devstack: Partitions(%d): want at least 1", c.partitions)
	}
	if c.logger == nil {
		return errors.New("devstack: Logger(nil): pass a logger, or leave the option out to discard logs")
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if c.tlsSet && (c.tls == nil || (len(c.tls.Certificates) == 0 && c.tls.GetCertificate == nil)) {
		return errors.New("devstack: TLS: want a server config with a certificate (devstack.SelfSignedCertificate makes one)")
	}
	for _, u := range c.sasl {
		switch u.mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf("devstack: KafkaSASL: mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", u.mechanism)
		}
		if u.user == "" || u.password == "" {
			return errors.New("devstack: KafkaSASL: want a user and a password, both non-empty")
		}
	}
	return nil
}

func (c *config) validateAuth() error {
	switch {
	case c.basic != nil && c.bearer != nil:
		return errors.New("devstack: RegistryBasicAuth and RegistryBearerToken: choose one")
	case c.basic != nil && (c.basic[0] == "" || c.basic[1] == ""):
		return errors.New("devstack: RegistryBasicAuth: want a user and a password, both non-empty")
	case c.bearer != nil && *c.bearer == "":
		return errors.New("devstack: RegistryBearerToken: want a non-empty token")
	}
	return nil
}

// registryAuth is the exact Authorization header the registry expects, ""
// for none.
func (c *config) registryAuth() string {
	switch {
	case c.basic != nil:
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.basic[0]+":"+c.basic[1]))
	case c.bearer != nil:
		return "Bearer " + *c.bearer
	}
	return ""
}

// DataDir keeps the stack's state in dir (created if needed): Kafka in
// dir/kafka, the registry in dir/registry. A stack started again on the same
// dir finds its topics, records, committed offsets and schemas as they were.
// The default, "", keeps everything in memory.
func DataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// KafkaPort sets the loopback port of the Kafka broker. The default, 0,
// picks a free port; Stack.Brokers tells which.
func KafkaPort(port int) Option { return func(c *config) { c.kafkaPort = port } }

// RegistryPort sets the loopback port of the schema registry. The default,
// 0, picks a free port; Stack.RegistryURL tells which.
func RegistryPort(port int) Option { return func(c *config) { c.registryPort = port } }

// Partitions sets how many partitions a topic created without a count gets
// (auto-created, or created with -1): enough for per-key order across
// partitions to matter in tests, few enough to read in a dev tool.
// Default: 3.
func Partitions(n int) Option { return func(c *config) { c.partitions = n } }

// Logger receives the broker's and the registry's logs. The default discards
// them.
func Logger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// RegistryBasicAuth makes the registry answer only requests that carry HTTP
// basic auth with this user and password (401 without credentials, 403 with
// others). The default is no auth.
func RegistryBasicAuth(user, password string) Option {
	return func(c *config) { c.basic = &[2]string{user, password} }
}

// RegistryBearerToken makes the registry answer only requests that carry
// "Authorization: Bearer token" (401 without it, 403 with another). The
// default is no auth.
func RegistryBearerToken(token string) Option { return func(c *config) { c.bearer = &token } }

// TLS serves both Kafka and the registry over TLS with cfg (a server
// config with a certificate: SelfSignedCertificate makes one). The
// registry's URL is then https. The default is plain TCP.
func TLS(cfg *tls.Config) Option { return func(c *config) { c.tls, c.tlsSet = cfg, true } }

type saslUser struct{ mechanism, user, password string }

// KafkaSASL makes the broker require SASL authentication and accept user
// with password through mechanism: "PLAIN", "SCRAM-SHA-256" or
// "SCRAM-SHA-512". Give it several times for several users. The user is
// a superuser (no ACLs apply). The default is no authentication.
func KafkaSASL(mechanism, user, password string) Option {
	return func(c *config) { c.sasl = append(c.sasl, saslUser{mechanism, user, password}) }
}
