package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/evbus/evbus/deadletter"
)

func init() {
	register(command{
		name:    "dlt reveal",
		summary: "print fields of a dead letter's value, recording who saw them and why",
		usage: `
usage: evbus dlt reveal <id> --group G --field F [--field F2 ...] --reason R [--actor A] [--avro-json]

Decodes the value of dead letter <id> (<dead-letter topic>/<partition>/<offset>,
as dlt ls --json prints its dead_letter_id) through the schema registry and
prints the fields named by --field (paths into the value, with dots:
customer.email) as one JSON object. Before printing, it records in group
G's ledger who saw which fields and why (a reveal entry: the dead letter's
state stays as it is). A field the value does not have is an error that
lists those it has, and nothing is recorded.

example:
  evbus dlt reveal orders.billing.dlt/0/42 --group billing --field customer.email --reason "ticket 4711: customer asks"`,
		conn:  true,
		setup: setupDLTReveal,
	})
}

func setupDLTReveal(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	group := fs.String("group", "", "the consumer group whose dead letter it is (required)")
	var fields idsFlag
	fs.Var(&fields, "field", "a field path of the value to show, e.g. customer.email (repeatable, required)")
	reason := fs.String("reason", "", "why the values are shown (required)")
	actor := fs.String("actor", defaultActor(), "who sees them, as the ledger records it")
	mode := defineMode(fs)
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 1, 1, "argument: want the dead letter's id, <dead-letter topic>/<partition>/<offset>"); err != nil {
			return err
		}
		switch {
		case *group == "":
			return usagef("--group is required: the ledger that records the reveal is the group's")
		case len(fields) == 0:
			return usagef("--field is required: name the fields to show")
		case *reason == "":
			return usagef("--reason is required: say why, the ledger records it")
		case *actor == "":
			return usagef("--actor is empty: say who sees the values")
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		m, err := openManager(ctx, cn, std, cl, *group, "")
		if err != nil {
			return err
		}
		defer m.Close()
		l, err := m.Get(ctx, std.args[0])
		if err != nil {
			return err
		}
		reg, err := cn.schemaRegistry(ctx)
		if err != nil {
			return err
		}
		d, err := newDecoder(reg, *mode)
		if err != nil {
			return err
		}
		dv, err := d.decode(ctx, l.Record)
		if err != nil {
			return err
		}
		if dv.err != nil || dv.tombstone {
			return fmt.Errorf("%s: the value does not decode, so it has no fields: %v (evbus dlt show prints its bytes)", l.ID, dv.err)
		}
		var value any
		if err := json.Unmarshal(dv.json.(json.RawMessage), &value); err != nil {
			return err
		}
		out := make(object, 0, len(fields))
		for _, f := range fields {
			v, err := fieldAt(value, f)
			if err != nil {
				return fmt.Errorf("%s: %w", l.ID, err)
			}
			out = append(out, field{f, v})
		}
		if err := m.Reveal(ctx, l.ID, fields, deadletter.Actor{Name: *actor, Reason: *reason}); err != nil {
			return err
		}
		enc := json.NewEncoder(std.out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
}

// fieldAt returns the value at path (names joined by dots) in v, or an
// error naming the fields there are where the path breaks off.
func fieldAt(v any, path string) (any, error) {
	at := ""
	for name := range strings.SplitSeq(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %q: %s is not a record", path, dash(at))
		}
		next, ok := obj[name]
		if !ok {
			names := make([]string, 0, len(obj))
			for k := range obj {
				names = append(names, k)
			}
			slices.Sort(names)
			where := "the value"
			if at != "" {
				where = at
			}
			return nil, fmt.Errorf("field %q: %s has no field %q; its fields: %s", path, where, name, strings.Join(names, ", "))
		}
		v = next
		if at != "" {
			at += "."
		}
		at += name
	}
	return v, nil
}
