package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/evbus/evbus/devstack"
)

func init() {
	register(command{
		name:    "dev",
		summary: "run Kafka and a schema registry on loopback, for development",
		usage: `
usage: evbus dev [flags]

Runs a Kafka broker and a Confluent-compatible schema registry on 127.0.0.1
until interrupted (Ctrl-C or SIGTERM), then stops them cleanly. The registry
enforces compatibility levels (BACKWARD unless configured otherwise).
Topics, records, committed offsets and schemas are kept in the data dir, so
the next run finds them as they were, with the same schema ids.

example:
  evbus dev --data-dir .evbus --kafka-port 9092 --registry-port 8081
  EVBUS_KAFKA_PORT=19092 evbus dev --data-dir=""   # another port, nothing kept`,
		env: map[string]string{
			"data-dir":      "EVBUS_DATA_DIR",
			"kafka-port":    "EVBUS_KAFKA_PORT",
			"registry-port": "EVBUS_REGISTRY_PORT",
		},
		setup: setupDev,
	})
}

func setupDev(fs *flag.FlagSet, _ *conn) func(ctx context.Context, std *stdio) error {
	dataDir := fs.String("data-dir", ".evbus", "directory that keeps the stack's state across runs; empty keeps it in memory")
	kafkaPort := fs.Int("kafka-port", 9092, "Kafka port on 127.0.0.1; 0 picks a free one")
	registryPort := fs.Int("registry-port", 8081, "schema registry port on 127.0.0.1; 0 picks a free one")

	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		stdout, stderr := std.out, std.err
		stack, err := devstack.Start(ctx,
			devstack.DataDir(*dataDir),
			devstack.KafkaPort(*kafkaPort),
			devstack.RegistryPort(*registryPort),
			devstack.Logger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		)
		if err != nil {
			return err
		}
		data := "in memory (nothing is kept)"
		if *dataDir != "" {
			if data, err = filepath.Abs(*dataDir); err != nil {
				data = *dataDir
			}
		}
		fmt.Fprintf(stdout, "kafka    %s\nregistry %s\ndata     %s\n", strings.Join(stack.Brokers(), ","), stack.RegistryURL(), data)
		<-ctx.Done()
		return stack.Close()
	}
}
