package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
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

// connPart says which connection flags a command takes: those of what it
// talks to. It refuses the others, and ignores their environment variables.
type connPart int

const (
	kafkaAndRegistry connPart = iota
	kafkaOnly
	registryOnly
)

// connFlags are the connection flags, each with its environment variable
// and what it is for; shared flags serve Kafka and the registry both.
var connFlags = []struct {
	name, env string
	kafka     bool // a flag of Kafka's
	registry  bool // a flag of the registry's
}{
	{"brokers", "EVBUS_BROKERS", true, false},
	{"registry", "EVBUS_REGISTRY", false, true},
	{"timeout", "EVBUS_TIMEOUT", true, true},
	{"tls", "EVBUS_TLS", true, false},
	{"tls-ca", "EVBUS_TLS_CA", true, true},
	{"tls-cert", "EVBUS_TLS_CERT", true, true},
	{"tls-key", "EVBUS_TLS_KEY", true, true},
	{"sasl-mechanism", "EVBUS_SASL_MECHANISM", true, false},
	{"sasl-user", "EVBUS_SASL_USER", true, false},
	{"sasl-password", "EVBUS_SASL_PASSWORD", true, false},
	{"registry-user", "EVBUS_REGISTRY_USER", false, true},
	{"registry-password", "EVBUS_REGISTRY_PASSWORD", false, true},
	{"registry-token", "EVBUS_REGISTRY_TOKEN", false, true},
}

// define adds the connection flags of part to fs and returns the
// command's environment variables with theirs.
func (c *conn) define(fs *flag.FlagSet, part connPart, env map[string]string) map[string]string {
	all := flag.NewFlagSet("", flag.ContinueOnError)
	all.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	all.StringVar(&c.registry, "registry", "http://127.0.0.1:8081", "schema registry URL (comma-separated URLs are tried in order)")
	all.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for Kafka and the registry to answer (a registry must start answering within "+registryAnswerWait.String()+")")
	all.BoolVar(&c.tls, "tls", false, "connect to Kafka over TLS (implied by --tls-ca and --tls-cert)")
	all.StringVar(&c.tlsCA, "tls-ca", "", "PEM file of the CA that signed the brokers' and registry's certificates (default: the system's)")
	all.StringVar(&c.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key)")
	all.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	all.StringVar(&c.saslMechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512 (default: no SASL)")
	all.StringVar(&c.saslUser, "sasl-user", "", "SASL user name")
	all.StringVar(&c.saslPassword, "sasl-password", "", "SASL password (prefer EVBUS_SASL_PASSWORD: a flag shows in the process list)")
	all.StringVar(&c.registryUser, "registry-user", "", "registry basic-auth user (or user:password@ in --registry)")
	all.StringVar(&c.registryPassword, "registry-password", "", "registry basic-auth password (prefer EVBUS_REGISTRY_PASSWORD)")
	all.StringVar(&c.registryToken, "registry-token", "", "registry bearer token (prefer EVBUS_REGISTRY_TOKEN)")
	out := make(map[string]string)
	for _, f := range connFlags {
		if part == kafkaOnly && !f.kafka || part == registryOnly && !f.registry {
			continue
		}
		fl := all.Lookup(f.name)
		fs.Var(fl.Value, fl.Name, fl.Usage)
		out[f.name] = f.env
	}
	maps.Copy(out, env)
	return out
}

// unusedConnFlag explains an unknown flag that is a connection flag the
// command does not take; "" for any other.
func unusedConnFlag(name string, c command) string {
	for _, f := range connFlags {
		if f.name != name {
			continue
		}
		switch {
		case !c.conn:
			return "it connects to neither Kafka nor a schema registry"
		case c.only == kafkaOnly:
			return "it talks to Kafka only, not to the schema registry"
		case c.only == registryOnly:
			return "it talks to the schema registry only, not to Kafka"
		}
	}
	return ""
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
	if err := c.probeRegistry(ctx, cfg); err != nil {
		return nil, err
	}
	return reg, nil
}

// registryAnswerWait bounds how long a registry may take to start
// answering (or --timeout, if shorter). A registry answers at once; a port
// that accepts connections but speaks no HTTP, Kafka's say, never does,
// and fails in this time rather than in --timeout.
const registryAnswerWait = 2 * time.Second

// probeRegistry asks each registry URL in turn for its schema types until
// one answers with the credentials accepted. Its error is one line that
// names the URL once and the cause.
func (c *conn) probeRegistry(ctx context.Context, cfg *tls.Config) error {
	wait := min(c.timeout, registryAnswerWait)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig, tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout = cfg, wait, wait
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: c.timeout}
	var errs []string
	for _, raw := range strings.Split(c.registry, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		cause, fix := c.askRegistry(ctx, hc, raw, wait)
		if cause == "" {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		errs = append(errs, fmt.Sprintf("cannot use the schema registry at %s (%s): %s", redact.URL(raw), cause, fix))
	}
	return errors.New(strings.Join(errs, "; "))
}

// askRegistry sends one request to the registry at raw (a URL schema.New
// accepted) and returns why it cannot be used and the fix, "" when it can.
func (c *conn) askRegistry(ctx context.Context, hc *http.Client, raw string, wait time.Duration) (cause, fix string) {
	u, err := url.Parse(raw)
	if err != nil {
		return err.Error(), "check --registry or EVBUS_REGISTRY"
	}
	user, pass := c.registryUser, c.registryPassword
	if u.User != nil && user == "" {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	u.User = nil
	u.Path = strings.TrimSuffix(u.Path, "/") + "/schemas/types"
	var wrote atomic.Bool // set on the transport's goroutine, which may outlive Do
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u.String(), nil)
	if err != nil {
		return err.Error(), "check --registry or EVBUS_REGISTRY"
	}
	switch {
	case c.registryToken != "":
		req.Header.Set("Authorization", "Bearer "+c.registryToken)
	case user != "":
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("User-Agent", "evbus")
	resp, err := hc.Do(req)
	fix = "check --registry or EVBUS_REGISTRY"
	if err != nil {
		var (
			opErr  *net.OpError
			dnsErr *net.DNSError
			netErr net.Error
		)
		switch {
		case errors.As(err, &dnsErr):
			return "no such host " + dnsErr.Name, fix
		case errors.As(err, &opErr) && opErr.Op == "dial":
			return opErr.Err.Error(), fix
		case wrote.Load() && (errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
			return fmt.Sprintf("it took the connection but sent no HTTP answer within %v: not a schema registry, a Kafka port perhaps", wait), fix
		case errors.As(err, &netErr) && netErr.Timeout():
			return fmt.Sprintf("no answer within %v", wait), fix
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error(), fix
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Sprintf("it refused the credentials: HTTP %d", resp.StatusCode), "check --registry-user and --registry-password (or --registry-token)"
	case resp.StatusCode >= 500:
		return fmt.Sprintf("it answered HTTP %d", resp.StatusCode), "check that the registry runs, or --registry"
	}
	return "", ""
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
