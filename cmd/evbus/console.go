package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/evbus/evbus/console"
)

func init() {
	register(command{
		name:    "console",
		summary: "serve the web console: dead letters, lag, outbox",
		usage: `
usage: evbus console [--listen ADDR] [--listen-tls-cert F --listen-tls-key F]
                     [--insecure-listen] [--tokens-file F] [--never-show a.b,c]
                     [--db URL] [connection flags]

Serves the operators' web console: consumer groups, a group's dead letters
by cause, one dead letter with its history and the actions on it (replay,
discard, park, reveal), lag per partition in records and in time, and with
--db an outbox's status (the database as 'evbus outbox status' takes it).

Sign-in is required. Tokens come from EVBUS_CONSOLE_OPERATOR_TOKEN and
EVBUS_CONSOLE_VIEWER_TOKEN (comma-separated for several), and from
--tokens-file, a file of lines "operator <token> [name]" or
"viewer <token> [name]" that others than its owner and group may not
read. With none the console refuses to start. A viewer reads; an operator
also acts. Scripts send "Authorization: Bearer <token>".

The console listens on loopback by default. Another address needs TLS
(--listen-tls-cert and --listen-tls-key, the console's own certificate;
--tls-cert and --tls-key are the client certificate for Kafka and the
registry), or --insecure-listen to serve plain HTTP anyway, e.g. behind a
proxy that terminates TLS. Decoded values are masked until an operator
reveals them; --never-show fields are never shown.

example:
  evbus console --brokers kafka:9092 --registry http://registry:8081   # with EVBUS_CONSOLE_OPERATOR_TOKEN set
  evbus console --listen :8443 --listen-tls-cert console.pem --listen-tls-key console-key.pem --tokens-file /etc/evbus/console-tokens --db postgres://orders@db/orders --never-show card.number`,
		conn: true,
		env: map[string]string{
			"listen": "EVBUS_CONSOLE_LISTEN", "tokens-file": "EVBUS_CONSOLE_TOKENS_FILE",
			"db": "EVBUS_DB", "table": "EVBUS_OUTBOX_TABLE",
		},
		setup: func(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
			listen := fs.String("listen", "127.0.0.1:8089", "the address to serve on, host:port")
			certFile := fs.String("listen-tls-cert", "", "PEM certificate the console serves HTTPS with (with --listen-tls-key)")
			keyFile := fs.String("listen-tls-key", "", "PEM private key of --listen-tls-cert")
			insecure := fs.Bool("insecure-listen", false, "serve plain HTTP on a non-loopback address (tokens and cookies travel in clear unless a proxy adds TLS)")
			tokensFile := fs.String("tokens-file", "", `file of tokens, lines "operator <token> [name]" or "viewer <token> [name]", not world-readable`)
			neverShow := fs.String("never-show", "", "comma-separated field paths never displayed, even on reveal (e.g. card.number,customer.email)")
			dsn := fs.String("db", "", "a service's database, for the outbox page: postgres://user@host:port/db or a SQLite path (sqlite:path)")
			table := fs.String("table", "evbus_outbox", "the outbox table, optionally schema.table")
			return func(ctx context.Context, std *stdio) error {
				if err := wantArgs(std, 0, 0, ""); err != nil {
					return err
				}
				if (*certFile == "") != (*keyFile == "") {
					return usagef("--listen-tls-cert and --listen-tls-key go together: pass both, or neither")
				}
				useTLS := *certFile != ""
				if err := checkListen(ctx, *listen, useTLS, *insecure); err != nil {
					return err
				}
				tokens := console.TokensFromEnv(std.getenv)
				if *tokensFile != "" {
					ts, err := console.LoadTokens(*tokensFile)
					if err != nil {
						return err
					}
					tokens = append(tokens, ts...)
				}
				if len(tokens) == 0 {
					return fmt.Errorf("no credential: the console does not run open; set %s (and/or %s) or pass --tokens-file", console.OperatorTokenEnv, console.ViewerTokenEnv)
				}
				var tlsCfg *tls.Config
				if useTLS {
					cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
					if err != nil {
						return fmt.Errorf("--listen-tls-cert/--listen-tls-key: %w", err)
					}
					tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
				}
				logger := slog.New(slog.NewTextHandler(std.err, nil))
				cfg := console.Config{Tokens: tokens, Logger: logger}
				for p := range strings.SplitSeq(*neverShow, ",") {
					if p = strings.TrimSpace(p); p != "" {
						cfg.NeverShow = append(cfg.NeverShow, p)
					}
				}
				if *dsn != "" {
					openCtx, cancel := context.WithTimeout(ctx, cn.timeout)
					src, err := openOutbox(openCtx, *dsn, *table)
					cancel()
					if err != nil {
						return err
					}
					defer src.close()
					cfg.Outbox = console.OutboxSource{Table: *table, Status: src.status, HolderUnknown: !src.knowsActive}
				}
				cl, err := cn.kafka(ctx)
				if err != nil {
					return err
				}
				defer cl.Close()
				if cfg.Registry, err = cn.schemaRegistry(ctx); err != nil {
					return err
				}
				cfg.Client = cl
				h, err := console.New(cfg)
				if err != nil {
					return err
				}
				defer h.Close()
				return serveConsole(ctx, std, h, *listen, tlsCfg, logger)
			}
		},
	})
}

// checkListen refuses a listen address that is not loopback unless the
// console serves TLS or is told --insecure-listen.
func checkListen(ctx context.Context, addr string, useTLS, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--listen %q: want host:port, e.g. 127.0.0.1:8089", addr)
	}
	if useTLS || insecure {
		return nil
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil {
		loopback = ip.IsLoopback()
	} else if host != "" && !loopback {
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		loopback = err == nil && len(ips) > 0
		for _, ip := range ips {
			loopback = loopback && ip.IP.IsLoopback()
		}
	}
	if !loopback {
		return usagef("--listen %s is not a loopback address and the console has no TLS: tokens and session cookies would travel in clear; pass --listen-tls-cert and --listen-tls-key, or --insecure-listen if a proxy in front adds TLS", addr)
	}
	return nil
}

// serveConsole serves h on addr until ctx ends, then shuts down.
func serveConsole(ctx context.Context, std *stdio, h http.Handler, addr string, tlsCfg *tls.Config, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", addr, err)
	}
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(std.err, "evbus console: serving %s://%s/ (Ctrl-C stops)\n", scheme, ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
