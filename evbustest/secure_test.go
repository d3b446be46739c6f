package evbustest_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/devstack"
	"github.com/evbus/evbus/evbustest"
	"github.com/evbus/evbus/internal/testkit"
	"github.com/evbus/evbus/schema"
)

// Publish, consume and dead-letter over TLS with each SASL mechanism, the
// registry behind TLS and basic auth; then make sure no secret shows in
// the logs, the errors or the dead-letter record.
func TestSecureConnections(t *testing.T) {
	const (
		kafkaPassword    = "kafka-secret-7Hq2"
		registryPassword = "registry-secret-Zx9"
	)
	for _, mech := range []struct {
		name string
		auth func(user, pass string) sasl.Mechanism
	}{
		{"PLAIN", func(u, p string) sasl.Mechanism { return plain.Auth{User: u, Pass: p}.AsMechanism() }},
		{"SCRAM-SHA-256", func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha256Mechanism() }},
		{"SCRAM-SHA-512", func(u, p string) sasl.Mechanism { return scram.Auth{User: u, Pass: p}.AsSha512Mechanism() }},
	} {
		t.Run(mech.name, func(t *testing.T) {
			logs := &testkit.Buffer{}
			logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			serverTLS, caPEM, err := devstack.SelfSignedCertificate()
			if err != nil {
				t.Fatal(err)
			}
			clientTLS, err := devstack.ClientTLS(caPEM)
			if err != nil {
				t.Fatal(err)
			}
			stack := evbustest.Start(t, devstack.TLS(serverTLS), devstack.KafkaSASL(mech.name, "orders-svc", kafkaPassword),
				devstack.RegistryBasicAuth("orders-svc", registryPassword), devstack.Logger(logger))
			if !strings.HasPrefix(stack.RegistryURL(), "https://") {
				t.Fatalf("registry URL %s, want https", stack.RegistryURL())
			}
			kafkaOpts := func(pass string) []kgo.Opt {
				return []kgo.Opt{kgo.SeedBrokers(stack.Brokers()...), kgo.DialTLSConfig(clientTLS.Clone()),
					kgo.SASL(mech.auth("orders-svc", pass)), kgo.WithLogger(kgoSlog{logger})}
			}
			reg, err := schema.New(stack.RegistryURL(), schema.TLS(clientTLS), schema.BasicAuth("orders-svc", registryPassword))
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(kafkaOpts(kafkaPassword)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			rec, stop := runLedger(t, cl, reg, consumer.Kafka(kafkaOpts(kafkaPassword)...), consumer.Logger(logger))
			evbustest.ExpectHandled(t, rec, "ledger", paymentTaken, func(ev *PaymentTaken, _ bus.Meta) bool { return ev.OrderID == "o-1" })
			dl := evbustest.ExpectDeadLettered(t, secureCluster{stack, kafkaOpts(kafkaPassword)}, "payments", "ledger", nil)
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			// The broker really requires TLS and SASL.
			for what, opts := range map[string][]kgo.Opt{
				"without TLS":  {kgo.SeedBrokers(stack.Brokers()...), kgo.SASL(mech.auth("orders-svc", kafkaPassword))},
				"without SASL": {kgo.SeedBrokers(stack.Brokers()...), kgo.DialTLSConfig(clientTLS.Clone())},
			} {
				cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0))...)
				if err != nil {
					t.Fatal(err)
				}
				pingCtx, cancelPing := context.WithTimeout(t.Context(), 3*time.Second)
				_, err = kadm.NewClient(cl).ListTopics(pingCtx)
				cancelPing()
				cl.Close()
				if err == nil {
					t.Errorf("a client %s listed the topics", what)
				}
			}

			// A wrong password fails with an error that does not carry it.
			bad, err := kgo.NewClient(kafkaOpts("wrong-" + kafkaPassword)...)
			if err != nil {
				t.Fatal(err)
			}
			pingCtx, cancelPing := context.WithTimeout(t.Context(), 5*time.Second)
			perr := bad.Ping(pingCtx)
			cancelPing()
			bad.Close()
			if perr == nil {
				t.Fatal("a wrong password was accepted")
			}
			regBad, rerr := schema.New(stack.RegistryURL(), schema.TLS(clientTLS), schema.BasicAuth("orders-svc", "wrong-"+registryPassword))
			var lerr error
			if rerr == nil {
				_, lerr = regBad.Writer(t.Context(), "payments", paymentTaken.Descriptor().Schema())
			}
			if rerr == nil && !errors.Is(lerr, schema.ErrUnauthorized) {
				t.Fatalf("a wrong registry password: %v, want ErrUnauthorized", lerr)
			}

			var dlHeaders strings.Builder
			for _, h := range dl.Record.Headers {
				dlHeaders.WriteString(h.Key + "=" + string(h.Value) + "\n")
			}
			for where, text := range map[string]string{
				"logs": logs.String(), "dead-letter headers": dlHeaders.String(),
				"Kafka error": errText(perr), "registry errors": errText(rerr) + errText(lerr),
			} {
				for _, secret := range []string{kafkaPassword, registryPassword} {
					if strings.Contains(text, secret) {
						t.Errorf("the %s show a password:\n%s", where, text)
					}
				}
			}
			if !strings.Contains(logs.String(), "dead-lettered") {
				t.Error("the logs checked for secrets do not hold the consumer's lines")
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// secureCluster reads the dead-letter topic with the test's credentials.
type secureCluster struct {
	*devstack.Stack
	opts []kgo.Opt
}

func (c secureCluster) KafkaOpts() []kgo.Opt { return c.opts }

// kgoSlog hands franz-go's logs to slog at debug, so they are checked too.
type kgoSlog struct{ l *slog.Logger }

func (k kgoSlog) Level() kgo.LogLevel { return kgo.LogLevelDebug }
func (k kgoSlog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	k.l.Debug(msg, keyvals...)
}
