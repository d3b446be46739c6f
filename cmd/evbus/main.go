// Command evbus is the operator's tool for evbus: it runs the development
// stack, and (in later commands) inspects and replays dead letters, checks
// schemas and tails topics.
//
//	evbus <command> [flags]
//	evbus <command> --help
//
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
	name    string
	summary string // one line, for the command list
	// usage is the synopsis, a description and an example, printed above
	// the flags by --help.
	usage string
	// env maps a flag's name to the environment variable that sets it
	// when the command line does not.
	env map[string]string
	// setup defines the command's flags on fs and returns what runs the
	// command once they are parsed. ctx ends on SIGINT or SIGTERM.
	setup func(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error
}

var commands []command

// register adds a command; each command's file calls it from init.
func register(c command) { commands = append(commands, c) }

func main() {
	// SIGINT and SIGTERM cancel ctx: a command stops cleanly and returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run runs the command named by args[0] and returns the exit code: 0 done, 1 the
// command failed, 2 bad usage. Errors are one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		w, code := stdout, 0
		if len(args) == 0 {
			w, code = stderr, 2
		}
		printCommands(w)
		return code
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "evbus: unknown command %q; run 'evbus help' for the list\n", args[0])
		return 2
	}
	c := commands[i]

	fs := flag.NewFlagSet("evbus "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, as one line
	cmdRun := c.setup(fs)
	for name, key := range c.env {
		if v := getenv(key); v != "" {
			if err := fs.Set(name, v); err != nil {
				fmt.Fprintf(stderr, "evbus %s: %s=%q is not a valid --%s: %v\n", c.name, key, v, name, err)
				return 2
			}
		}
	}
	switch err := fs.Parse(args[1:]); {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout, c, fs)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "evbus %s: %v; run 'evbus %s --help' for usage\n", c.name, err, c.name)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "evbus %s: unexpected argument %q; run 'evbus %s --help' for usage\n", c.name, fs.Arg(0), c.name)
		return 2
	}
	if err := cmdRun(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "evbus %s: %s\n", c.name, strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	return 0
}

func printCommands(w io.Writer) {
	fmt.Fprintln(w, "usage: evbus <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nrun 'evbus <command> --help' for a command's flags and an example")
}

func printUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintln(w, strings.TrimSpace(c.usage))
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	if len(c.env) > 0 {
		fmt.Fprintln(w, "\nenvironment (the command line wins):")
		names := make([]string, 0, len(c.env))
		for name := range c.env {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(w, "  %-22s sets --%s\n", c.env[name], name)
		}
	}
}
