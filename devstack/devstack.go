package devstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Stack is a running Kafka broker and schema registry. Close stops both.
type Stack struct {
	kafka    *kfake.Cluster
	brokers  []string
	auto     *autoCreate
	kafkaLog *kfakeLogger
	reg      *registry
	srv      *http.Server
	url      string

	closeOnce sync.Once
	closeErr  error
}

// Start starts a stack and returns once both services accept connections.
// ctx bounds the start only; the stack runs until Close.
//
// With a data dir, the registry replays its log and kfake loads Kafka's
// state; a damaged file is an error naming it. A start that fails (a port in
// use, a damaged file) leaves the saved state as it was.
func Start(ctx context.Context, opts ...Option) (*Stack, error) {
	cfg := defaultConfig()
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("devstack: Start: option %d is nil", i+1)
		}
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("devstack: not started: %w", err)
	}

	var kafkaDir, logPath string
	if cfg.dataDir != "" {
		kafkaDir = filepath.Join(cfg.dataDir, "kafka")
		regDir := filepath.Join(cfg.dataDir, "registry")
		for _, d := range []string{kafkaDir, regDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("devstack: data dir %q is not usable: %w; choose a writable directory", cfg.dataDir, err)
			}
		}
		logPath = filepath.Join(regDir, "schemas.log")
	}

	reg, err := newRegistry(ctx, logPath, cfg.registryAuth(), cfg.logger.With("component", "registry"))
	if err != nil {
		return nil, err
	}
	// The registry binds first: kfake writes its initial state as soon as
	// its own listener is up, so a port clash must not be found after it.
	var lc net.ListenConfig
	regLn, err := lc.Listen(ctx, "tcp", loopback(cfg.registryPort))
	if err != nil {
		reg.close()
		return nil, fmt.Errorf("devstack: registry: %w", listenError(err))
	}

	klog := &kfakeLogger{log: cfg.logger.With("component", "kafka")}
	kopts := []kfake.Opt{
		kfake.Ports(cfg.kafkaPort), // one broker, on 127.0.0.1
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err != nil {
				return nil, listenError(err)
			}
			return ln, nil
		}),
		kfake.DefaultNumPartitions(cfg.partitions),
		kfake.WithLogger(klog),
	}
	if kafkaDir != "" {
		kopts = append(kopts, kfake.DataDir(kafkaDir))
	}
	if cfg.tls != nil {
		kopts = append(kopts, kfake.TLS(cfg.tls))
	}
	if len(cfg.sasl) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
		for _, u := range cfg.sasl {
			kopts = append(kopts, kfake.Superuser(u.mechanism, u.user, u.password))
		}
	}
	kafka, err := kfake.NewCluster(kopts...)
	if err != nil {
		regLn.Close()
		reg.close()
		return nil, fmt.Errorf("devstack: kafka: %w", err)
	}

	// Like a Kafka broker's default: a topic is created on first use when
	// the client asks for it (kgo.AllowAutoTopicCreation).
	auto := &autoCreate{kafka: kafka}
	auto.install()

	s := &Stack{
		kafka:    kafka,
		brokers:  kafka.ListenAddrs(),
		auto:     auto,
		kafkaLog: klog,
		reg:      reg,
		srv:      &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second},
		url:      "http://" + regLn.Addr().String(),
	}
	if cfg.tls != nil {
		regLn = tls.NewListener(regLn, cfg.tls)
		s.url = "https://" + regLn.Addr().String()
	}
	go s.srv.Serve(regLn) //nolint:errcheck // returns http.ErrServerClosed once Close shuts it down
	cfg.logger.Info("devstack started", "kafka", s.brokers, "registry", s.url, "data_dir", cfg.dataDir)
	return s, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// listenError says how to fix a port that cannot be bound; err (a
// *net.OpError) already names the address.
func listenError(err error) error {
	return fmt.Errorf("%w; stop what listens there or choose another port (0 picks a free one)", err)
}

// Brokers returns the Kafka bootstrap addresses, for kgo.SeedBrokers.
func (s *Stack) Brokers() []string { return slices.Clone(s.brokers) }

// RegistryURL returns the schema registry's base URL, for sr.URLs.
func (s *Stack) RegistryURL() string { return s.url }

// Kafka returns the broker, for fault injection in tests (ControlKey,
// Fault, ...). Close the Stack, not the broker.
func (s *Stack) Kafka() *kfake.Cluster { return s.kafka }

// Close stops the registry (letting requests under way finish) and the
// broker, and flushes what the data dir holds. It returns the first time's
// result on every call.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
			errs = append(errs, fmt.Errorf("devstack: registry shutdown: %w", err))
		}
		errs = append(errs, s.reg.close())
		s.auto.close()
		s.kafkaLog.closing.Store(true)
		s.kafka.Close()
		errs = append(errs, s.kafkaLog.closeErr())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
