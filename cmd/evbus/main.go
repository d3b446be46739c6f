// Command evbus is the operator's tool for evbus: it runs the development
// stack, inspects and replays dead letters, tails topics, publishes JSON
// records as events, and checks and registers schemas.
//
//	evbus <command> [subcommand] [flags] [arguments]
//	evbus <command> --help
//
// Install it with go install github.com/evbus/evbus/cmd/evbus@latest.
// Each command lives in its own file and adds itself to the list with
// register in an init function.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one evbus subcommand.
type command struct {
	name    string // "dev", or a command and its subcommand: "dlt ls"
	summary string // one line, for the command list
	// usage is the synopsis, a description and an example, printed above
	// the flags by --help.
	usage string
	// env maps a flag's name to the environment variable that sets it
	// when the command line does not.
	env map[string]string
	// conn adds the connection flags (brokers, registry, TLS, SASL) and
	// their environment variables; only limits them to those of Kafka
	// (kafkaOnly) or of the registry (registryOnly), for a command that
	// talks to one of them alone: it refuses the other's flags.
	conn bool
	only connPart
	// setup defines the command's flags on fs and returns what runs the
	// command once they are parsed. ctx ends on SIGINT or SIGTERM.
	setup func(fs *flag.FlagSet, cn *conn) func(ctx context.Context, std *stdio) error
}

// stdio is what a command reads and writes, and its arguments.
type stdio struct {
	in          io.Reader
	out, err    io.Writer
	args        []string // the positional arguments, flags taken out
	errTerminal bool     // err is a terminal: progress may be shown there
	inTerminal  bool     // in is a terminal: a question may be asked
	// getenv reads the environment, for what must not be a flag (a
	// secret shows in the process list).
	getenv func(string) string
}

// usageError is bad input on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

var commands []command

// register adds a command; each command's file calls it from init.
func register(c command) { commands = append(commands, c) }

func main() {
	// SIGINT and SIGTERM cancel ctx: a command stops cleanly and returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run runs the command named by args and returns the exit code: 0 done, 1
// the command failed, 2 bad usage. Errors are one line on stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		w, code := stdout, 0
		if len(args) == 0 {
			w, code = stderr, 2
		}
		printCommands(w, "")
		return code
	}
	c, rest, ok := lookup(args)
	if !ok {
		if isGroup(args[0]) {
			w, code := stderr, 2
			if len(args) > 1 && (args[1] == "help" || args[1] == "-h" || args[1] == "--help" || args[1] == "-help") {
				w, code = stdout, 0
			} else if len(args) > 1 {
				fmt.Fprintf(stderr, "evbus %s: unknown subcommand %q; run 'evbus %s --help' for the list\n", args[0], args[1], args[0])
				return 2
			}
			printCommands(w, args[0])
			return code
		}
		fmt.Fprintf(stderr, "evbus: unknown command %q; run 'evbus help' for the list\n", args[0])
		return 2
	}

	fs := flag.NewFlagSet("evbus "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, as one line
	env, cmdRun := c.flags(fs)
	for name, key := range env {
		if v := getenv(key); v != "" {
			if err := fs.Set(name, v); err != nil {
				if secret[name] {
					v = "***"
				}
				fmt.Fprintf(stderr, "evbus %s: %s=%q is not a valid --%s: %v\n", c.name, key, v, name, err)
				return 2
			}
		}
	}
	positional, err := parseInterleaved(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, c, fs, env)
		return 0
	case err != nil:
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + name
			if why := unusedConnFlag(name, c); why != "" {
				msg = fmt.Sprintf("--%s is not a flag of this command: %s", name, why)
			}
		}
		fmt.Fprintf(stderr, "evbus %s: %s; run 'evbus %s --help' for usage\n", c.name, msg, c.name)
		return 2
	}
	std := &stdio{in: stdin, out: stdout, err: stderr, args: positional,
		errTerminal: isTerminal(stderr), inTerminal: isTerminal(stdin), getenv: getenv}
	err = cmdRun(ctx, std)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "evbus %s: %s; run 'evbus %s --help' for usage\n", c.name, ue.msg, c.name)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "evbus %s: %s\n", c.name, strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	return 0
}

// flags defines c's flags on fs and returns its environment variables
// and what runs it once they are parsed.
func (c command) flags(fs *flag.FlagSet) (map[string]string, func(context.Context, *stdio) error) {
	cn := new(conn)
	env := c.env
	if c.conn {
		env = cn.define(fs, c.only, c.env)
	}
	return env, c.setup(fs, cn)
}

// lookup finds the command args name ("dlt ls" before "dlt") and returns
// the arguments after its name.
func lookup(args []string) (command, []string, bool) {
	if len(args) > 1 {
		if i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0]+" "+args[1] }); i >= 0 {
			return commands[i], args[2:], true
		}
	}
	if i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0] }); i >= 0 {
		return commands[i], args[1:], true
	}
	return command{}, nil, false
}

// isGroup reports whether name is a command with subcommands ("dlt").
func isGroup(name string) bool {
	return slices.ContainsFunc(commands, func(c command) bool { return strings.HasPrefix(c.name, name+" ") })
}

// parseInterleaved parses flags that may come before, between and after
// the positional arguments, and returns those.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		if args = fs.Args(); len(args) > 0 && args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	fi, err := file.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// wantArgs checks the number of positional arguments.
func wantArgs(std *stdio, min, max int, what string) error {
	switch {
	case len(std.args) < min:
		return usagef("missing %s", what)
	case max >= 0 && len(std.args) > max:
		return usagef("unexpected argument %q", std.args[max])
	}
	return nil
}

func printCommands(w io.Writer, group string) {
	if group == "" {
		fmt.Fprintln(w, "usage: evbus <command> [flags]\n\ncommands:")
	} else {
		fmt.Fprintf(w, "usage: evbus %s <subcommand> [flags]\n\nsubcommands:\n", group)
	}
	sorted := slices.SortedFunc(slices.Values(commands), func(a, b command) int { return strings.Compare(a.name, b.name) })
	for _, c := range sorted {
		if group == "" || strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\nrun 'evbus <command> --help' for a command's flags and an example")
}

func printUsage(w io.Writer, c command, fs *flag.FlagSet, env map[string]string) {
	fmt.Fprintln(w, strings.TrimSpace(c.usage))
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	if len(env) > 0 {
		fmt.Fprintln(w, "\nenvironment (the command line wins):")
		names := make([]string, 0, len(env))
		for name := range env {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(w, "  %-24s sets --%s\n", env[name], name)
		}
	}
}
