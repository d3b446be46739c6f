package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/evbus/evbus/codec"
	"github.com/evbus/evbus/schema"
)

func init() {
	register(command{
		name:    "schema check",
		summary: "check schema files against what the registry holds (a CI gate)",
		usage: `
usage: evbus schema check [--topic T] [--level L] [--allow-new] files.avsc...

Checks each schema against the versions registered under its subject
(named by --strategy from --topic and the record's full name), on the
client side, at the subject's compatibility level or --level. Prints one
line per file, naming the incompatible field, and exits 1 when any file is
incompatible, or names a subject nothing is registered under (a typo in
--topic or --strategy would otherwise pass anything): --allow-new accepts
those, for a schema that is new. Run it in CI before deploying a producer.
Nothing is registered.

example:
  evbus schema check --registry http://registry:8081 --topic orders schemas/*.avsc
  evbus schema check --strategy record --level FULL_TRANSITIVE order_placed.avsc`,
		conn: true,
		only: registryOnly,
		env:  map[string]string{"strategy": "EVBUS_SUBJECT_STRATEGY"},
		setup: func(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
			allowNew := fs.Bool("allow-new", false, "accept a schema whose subject has nothing registered yet (a new event type)")
			return setupSchema(fs, cn, allowNew)
		},
	})
	register(command{
		name:    "schema register",
		summary: "register schema files under their subjects",
		usage: `
usage: evbus schema register [--topic T] [--level L] files.avsc...

Registers each schema under its subject (named by --strategy from --topic
and the record's full name), after the same client-side compatibility
check as 'schema check'. Prints one line per file with the schema id, and
exits 1 when any file could not be registered.

example:
  evbus schema register --registry http://registry:8081 --topic orders schemas/*.avsc`,
		conn: true,
		only: registryOnly,
		env:  map[string]string{"strategy": "EVBUS_SUBJECT_STRATEGY"},
		setup: func(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
			return setupSchema(fs, cn, nil)
		},
	})
}

// setupSchema sets up schema register, or with allowNew (its flag) schema
// check.
func setupSchema(fs *flag.FlagSet, cn *conn, allowNew *bool) func(context.Context, *stdio) error {
	register := allowNew == nil
	topic := fs.String("topic", "", "topic the schemas are for (needed by the topic-record and topic strategies)")
	level := fs.String("level", "", "compatibility level to check at, instead of the subject's: NONE, BACKWARD, FORWARD, FULL or a _TRANSITIVE one")
	cn.strategyFlag(fs)
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 1, -1, "schema files: pass one or more .avsc files"); err != nil {
			return err
		}
		var opts []schema.Option
		if *level != "" {
			l, err := schema.ParseLevel(*level)
			if err != nil {
				return usagef("--level %q: want NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE", *level)
			}
			opts = append(opts, schema.CompatibilityLevel(l))
		}
		strategy, err := schema.ParseStrategy(cn.strategy)
		if err != nil {
			return usagef("--strategy %q: want topic-record, topic or record", cn.strategy)
		}
		// Every file must parse and have a subject before the registry is asked.
		schemas := make([]*codec.Schema, len(std.args))
		subjects := make([]string, len(std.args))
		for i, file := range std.args {
			text, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if schemas[i], err = codec.Parse(string(text)); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if subjects[i], err = strategy.Subject(*topic, schemas[i].FullName()); err != nil {
				if *topic == "" {
					return usagef("%s: the %v needs --topic (or pass --strategy record)", file, strategy)
				}
				return fmt.Errorf("%s: %w", file, err)
			}
		}
		reg, err := cn.schemaRegistry(ctx, opts...)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
		failed, unregistered := 0, 0
		for i, file := range std.args {
			var (
				id       int
				err      error
				existing []*codec.Schema
			)
			if register {
				id, err = reg.Register(ctx, subjects[i], schemas[i])
			} else if existing, err = reg.Versions(ctx, subjects[i]); err == nil && len(existing) > 0 {
				err = reg.Check(ctx, subjects[i], schemas[i])
			}
			switch {
			case err == nil && !register && len(existing) == 0 && *allowNew:
				fmt.Fprintf(tw, "new\t%s\t%s\tnothing registered yet; --allow-new accepts it\n", subjects[i], file)
			case err == nil && !register && len(existing) == 0:
				unregistered++
				fmt.Fprintf(tw, "not registered\t%s\t%s\tnothing is registered under this subject\n", subjects[i], file)
			case err == nil && register:
				fmt.Fprintf(tw, "registered\t%s\tid %d\t%s\n", subjects[i], id, file)
			case err == nil:
				fmt.Fprintf(tw, "compatible\t%s\t%s\n", subjects[i], file)
			case errors.Is(err, codec.ErrIncompatible):
				failed++
				where := ""
				var le *schema.LevelError
				if errors.As(err, &le) && le.Field() != "" {
					where = "field " + le.Field() + ": "
				}
				fmt.Fprintf(tw, "incompatible\t%s\t%s\t%s%v\n", subjects[i], file, where, err)
			default:
				tw.Flush()
				return fmt.Errorf("%s (%s): %w", file, subjects[i], err)
			}
		}
		tw.Flush()
		var errs []error
		if failed > 0 {
			errs = append(errs, fmt.Errorf("%d of %d schemas are incompatible with what is registered", failed, len(std.args)))
		}
		if unregistered > 0 {
			errs = append(errs, fmt.Errorf("%d of %d schemas have nothing registered under their subject: check --topic and --strategy, or pass --allow-new for new event types", unregistered, len(std.args)))
		}
		return errors.Join(errs...)
	}
}
