package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/evbus/evbus/internal/redact"
	"github.com/evbus/evbus/schema"
)

// conn is how a command reaches Kafka and the schema registry: the flags
// every such command shares.
type conn struct {
	brokers  string
	registry string
	timeout  time.Duration

	tls                    bool
	tlsCA, tlsCert, tlsKey string

	saslMechanism, saslUser, saslPassword string

	registryUser, registryPassword, registryToken string
	strategy                                      string
	compression                                   string
}

// secret flags are never echoed, not even in an error about their value.
var secret = map[string]bool{"sasl-password": true, "registry-password": true, "registry-token": true}

// connEnv maps the connection flags to their environment variables.
var connEnv = map[string]string{
	"brokers":           "EVBUS_BROKERS",
	"registry":          "EVBUS_REGISTRY",
	"timeout":           "EVBUS_TIMEOUT",
	"tls":               "EVBUS_TLS",
	"tls-ca":            "EVBUS_TLS_CA",
	"tls-cert":          "EVBUS_TLS_CERT",
	"tls-key":           "EVBUS_TLS_KEY",
	"sasl-mechanism":    "EVBUS_SASL_MECHANISM",
	"sasl-user":         "EVBUS_SASL_USER",
	"sasl-password":     "EVBUS_SASL_PASSWORD",
	"registry-user":     "EVBUS_REGISTRY_USER",
	"registry-password": "EVBUS_REGISTRY_PASSWORD",
	"registry-token":    "EVBUS_REGISTRY_TOKEN",
}

// define adds the connection flags to fs and returns the command's
// environment variables with theirs.
func (c *conn) define(fs *flag.FlagSet, env map[string]string) map[string]string {
	fs.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for Kafka and the registry to answer")
	fs.BoolVar(&c.tls, "tls", false, "connect to Kafka over TLS (implied by --tls-ca and --tls-cert)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM file of the CA that signed the brokers' and registry's certificates (default: the system's)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.saslMechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (default: no SASL)")
	fs.StringVar(&c.saslUser, "sasl-user", "", "SASL user name")
	fs.StringVar(&c.saslPassword, "sasl-password", "", "SASL password (prefer EVBUS_SASL_PASSWORD: a flag shows in the process list)")
	fs.StringVar(&c.registryUser, "registry-user", "", "registry basic-auth user (or user:password@ in --registry)")
	fs.StringVar(&c.registryPassword, "registry-password", "", "registry basic-auth password (prefer EVBUS_REGISTRY_PASSWORD)")
	fs.StringVar(&c.registryToken, "registry-token", "", "registry bearer token (prefer EVBUS_REGISTRY_TOKEN)")
	out := maps.Clone(connEnv)
	maps.Copy(out, env)
	return out
}

// strategyFlag adds --strategy, for the commands that name subjects; its
// environment variable is EVBUS_SUBJECT_STRATEGY.
func (c *conn) strategyFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.strategy, "strategy", "topic-record", "subject naming: topic-record (<topic>-<record>), topic (<topic>-value) or record (<record>)")
}

// compressionFlag adds --compression, for the commands that write records;
// its environment variable is EVBUS_COMPRESSION.
func (c *conn) compressionFlag(fs *flag.FlagSet) {
	fs.StringVar(&c.compression, "compression", "none", "compression of the records written: none (every client reads it), gzip (the one codec kafkajs reads without plugins), snappy, lz4 or zstd")
}

// compressionCodecs names the codecs --compression takes.
var compressionCodecs = map[string]func() kgo.CompressionCodec{
	"none":   kgo.NoCompression,
	"gzip":   kgo.GzipCompression,
	"snappy": kgo.SnappyCompression,
	"lz4":    kgo.Lz4Compression,
	"zstd":   kgo.ZstdCompression,
}

// kafkaOpts are the client options of the flags: brokers, TLS, SASL,
// compression. The CLI's records are uncompressed unless --compression
// says otherwise: franz-go's default, snappy, is not read by kafkajs.
func (c *conn) kafkaOpts() ([]kgo.Opt, error) {
	var seeds []string
	for _, b := range strings.Split(c.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			seeds = append(seeds, b)
		}
	}
	if len(seeds) == 0 {
		return nil, usagef("--brokers is empty: pass host:port, e.g. --brokers 127.0.0.1:9092 (or set EVBUS_BROKERS)")
	}
	name := c.compression
	if name == "" {
		name = "none"
	}
	codec, ok := compressionCodecs[strings.ToLower(name)]
	if !ok {
		return nil, usagef("--compression %q: want none, gzip, snappy, lz4 or zstd", c.compression)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DialTimeout(c.timeout), kgo.RequestTimeoutOverhead(c.timeout), kgo.ProducerBatchCompression(codec())}
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	switch m := strings.ToLower(c.saslMechanism); m {
	case "":
		if c.saslUser != "" || c.saslPassword != "" {
			return nil, usagef("--sasl-user or --sasl-password without --sasl-mechanism: add --sasl-mechanism plain, scram-sha-256 or scram-sha-512")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.saslUser == "" || c.saslPassword == "" {
			return nil, usagef("--sasl-mechanism %s needs --sasl-user and --sasl-password (or EVBUS_SASL_USER and EVBUS_SASL_PASSWORD)", m)
		}
		switch m {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: c.saslUser, Pass: c.saslPassword}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.saslUser, Pass: c.saslPassword}.AsSha256Mechanism()))
		default:
			opts = append(opts, kgo.SASL(scram.Auth{User: c.saslUser, Pass: c.saslPassword}.AsSha512Mechanism()))
		}
	default:
		return nil, usagef("--sasl-mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.saslMechanism)
	}
	return opts, nil
}

// tlsConfig is the TLS configuration of the flags, nil without TLS.
func (c *conn) tlsConfig() (*tls.Config, error) {
	if !c.tls && c.tlsCA == "" && c.tlsCert == "" && c.tlsKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in the file", c.tlsCA)
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together: pass both, or neither")
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// kafka returns a client on the flags' brokers (with extra options) once
// the brokers answered; an unreachable cluster fails within --timeout.
func (c *conn) kafka(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.kafkaOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("Kafka client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("cannot reach Kafka at %s within %v (%v): check --brokers or EVBUS_BROKERS, and --tls and --sasl-* if the cluster needs them", c.brokers, c.timeout, err)
	}
	return cl, nil
}

// schemaRegistry returns a client of the flags' registry once it
// answered; an unreachable registry fails within --timeout.
func (c *conn) schemaRegistry(ctx context.Context, opts ...schema.Option) (*schema.Registry, error) {
	opts = append([]schema.Option{schema.Timeout(c.timeout)}, opts...)
	if c.strategy != "" {
		strategy, err := schema.ParseStrategy(c.strategy)
		if err != nil {
			return nil, usagef("--strategy %q: want topic-record, topic or record", c.strategy)
		}
		opts = append(opts, schema.SubjectStrategy(strategy))
	}
	if c.registryUser != "" || c.registryPassword != "" {
		opts = append(opts, schema.BasicAuth(c.registryUser, c.registryPassword))
	}
	if c.registryToken != "" {
		opts = append(opts, schema.BearerToken(c.registryToken))
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, schema.TLS(cfg))
	}
	reg, err := schema.New(c.registry, opts...)
	if err != nil {
		return nil, usagef("--registry: %v", err)
	}
	// A subject nobody registers: the registry answers "not found" when
	// it is there and the credentials are good.
	pingCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	const probe = "evbus-cli-reachability-check"
	if _, err := reg.Versions(pingCtx, probe); err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		fix := "check --registry or EVBUS_REGISTRY"
		if errors.Is(err, schema.ErrUnauthorized) {
			fix = "check --registry-user and --registry-password (or --registry-token)"
		}
		cause := strings.TrimPrefix(err.Error(), "versions of "+probe+": ")
		return nil, fmt.Errorf("cannot use the schema registry at %s (%s): %s", redact.URL(c.registry), cause, fix)
	}
	return reg, nil
}

// topicPartitions returns the partition count of each topic that exists.
func topicPartitions(ctx context.Context, adm *kadm.Client, topics ...string) (map[string]int, error) {
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	out := make(map[string]int)
	for name, d := range details {
		if d.Err == nil {
			out[name] = len(d.Partitions)
		}
	}
	return out, nil
}

// needTopic fails with a hint when topic does not exist.
func needTopic(ctx context.Context, adm *kadm.Client, brokers, topic string) (int, error) {
	parts, err := topicPartitions(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	n, ok := parts[topic]
	if !ok {
		return 0, fmt.Errorf("topic %q does not exist on %s: check the name (list topics with your Kafka tooling) or --brokers", topic, brokers)
	}
	return n, nil
}
