package evbustest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/redpanda"

	"github.com/evbus/evbus/devstack"
)

// Cluster is a Kafka cluster with a schema registry, whichever backend runs
// it: *devstack.Stack and *Redpanda are both one.
type Cluster interface {
	// Brokers returns the Kafka bootstrap addresses, for kgo.SeedBrokers.
	Brokers() []string
	// RegistryURL returns the schema registry's base URL, for sr.URLs.
	RegistryURL() string
}

// A Cluster that needs more than its addresses to be read (TLS, SASL)
// also has a method KafkaOpts() []kgo.Opt, the client options to read it
// with, seed brokers included; the Expect functions use them.

// Start starts the embedded stack for t and stops it when t ends; it fails
// t if the stack does not start. opts are devstack's options; by default the
// stack keeps everything in memory, on free loopback ports. To test a
// restart, keep the state on disk and start again on the same directory:
//
//	dir := t.TempDir()
//	s := evbustest.Start(t, devstack.DataDir(dir))
//	...
//	s.Close()
//	s = evbustest.Start(t, devstack.DataDir(dir))
//
// Stack.Kafka gives the broker for fault injection.
func Start(t testing.TB, opts ...devstack.Option) *devstack.Stack {
	t.Helper()
	s, err := devstack.Start(t.Context(), opts...)
	if err != nil {
		t.Fatalf("evbustest: the embedded stack did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("evbustest: stopping the embedded stack: %v", err)
		}
	})
	return s
}

// RedpandaImage is the image StartRedpanda runs; pass
// testcontainers.WithImage to run another.
const RedpandaImage = "docker.redpanda.com/redpandadata/redpanda:v25.2.4"

// Redpanda is a Redpanda container serving Kafka and a schema registry.
type Redpanda struct {
	// Container is the running container, for what Cluster does not cover.
	Container   *redpanda.Container
	brokers     []string
	registryURL string
}

// Brokers returns the Kafka bootstrap address.
func (r *Redpanda) Brokers() []string { return r.brokers }

// RegistryURL returns the schema registry's base URL.
func (r *Redpanda) RegistryURL() string { return r.registryURL }

// StartRedpanda starts Redpanda in a container for t and removes it when t
// ends. Like the embedded stack, it creates a topic on first use when the
// client asks for it, with 3 partitions, devstack's default; opts (for
// example redpanda.WithEnableSASL or testcontainers.WithImage) come after
// those defaults. When no Docker engine answers, it skips t with one line.
func StartRedpanda(t testing.TB, opts ...testcontainers.ContainerCustomizer) *Redpanda {
	t.Helper()
	if err := dockerAnswers(t.Context()); err != nil {
		t.Skip("evbustest: no Docker engine answers; Redpanda path skipped")
	}
	opts = append([]testcontainers.ContainerCustomizer{
		redpanda.WithAutoCreateTopics(),
		redpanda.WithBootstrapConfig("default_topic_partitions", 3),
	}, opts...)
	c, err := redpanda.Run(t.Context(), RedpandaImage, opts...)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("evbustest: Redpanda did not start: %v", err)
	}
	broker, err := c.KafkaSeedBroker(t.Context())
	if err != nil {
		t.Fatalf("evbustest: Redpanda's Kafka address: %v", err)
	}
	url, err := c.SchemaRegistryAddress(t.Context())
	if err != nil {
		t.Fatalf("evbustest: Redpanda's schema registry address: %v", err)
	}
	return &Redpanda{Container: c, brokers: []string{broker}, registryURL: url}
}

// dockerAnswers asks the Docker engine testcontainers would use whether it
// is there, within a few seconds.
func dockerAnswers(ctx context.Context) (err error) {
	// testcontainers panics when it finds no Docker host at all.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	return p.Health(ctx)
}
