package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register(command{
		name:    "tail",
		summary: "print a topic's records as JSON lines, decoded through the registry",
		usage: `
usage: evbus tail <topic> [--from beginning|end|<RFC 3339 time>] [--key K] [--type T] [--count N] [--avro-json]

Prints each record of <topic> as one JSON object per line: key, value
(decoded with the writer schema from the registry, written as evbus
publish reads it: a decimal as "49.99", bytes as base64, timestamps as RFC
3339; --avro-json prints the Avro specification's JSON encoding, as
Confluent's kafka-avro-console-consumer does), headers, partition, offset
and schema_id. Records of any Confluent-framed producer are decoded, with
or without ce_* headers; a value that does not decode, an empty one too, is
printed in hex (value_hex) with the reason (decode_error); a tombstone (no
value at all) has "tombstone": true. The key and header values print as
strings when they are text, else as {"base64": "..."}, null when null.
Runs until interrupted, or until --count records were printed.

example:
  evbus tail orders --from beginning --count 10
  evbus tail orders --from 2026-01-02T15:00:00Z --type com.example.orders.OrderPlaced | jq .value`,
		conn:  true,
		setup: setupTail,
	})
}

func setupTail(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	from := fs.String("from", "end", "where to start: beginning, end (only new records) or an RFC 3339 time")
	key := fs.String("key", "", "only records with this key")
	ceType := fs.String("type", "", "only this event type (ce_type, or the writer schema's full name without one)")
	count := fs.Int("count", 0, "stop after this many records (0: run until interrupted)")
	mode := defineMode(fs)
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 1, 1, "<topic>"); err != nil {
			return err
		}
		if *count < 0 {
			return usagef("--count %d: want 0 or more", *count)
		}
		var at time.Time
		if *from != "beginning" && *from != "end" {
			t, err := time.Parse(time.RFC3339Nano, *from)
			if err != nil {
				return usagef("--from %q: want beginning, end or an RFC 3339 time such as 2026-01-02T15:04:05Z", *from)
			}
			at = t
		}
		topic := std.args[0]
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		if _, err := needTopic(ctx, adm, cn.brokers, topic); err != nil {
			return err
		}
		reg, err := cn.schemaRegistry(ctx)
		if err != nil {
			return err
		}
		listCtx, cancel := context.WithTimeout(ctx, cn.timeout)
		defer cancel()
		var listed kadm.ListedOffsets
		switch {
		case *from == "beginning":
			listed, err = adm.ListStartOffsets(listCtx, topic)
		case *from == "end":
			listed, err = adm.ListEndOffsets(listCtx, topic)
		default:
			listed, err = adm.ListOffsetsAfterMilli(listCtx, at.UnixMilli(), topic)
		}
		if err != nil {
			return fmt.Errorf("list offsets: %w", err)
		}
		starts, err := offsetsOf(listed)
		if err != nil {
			return err
		}
		d, err := newDecoder(reg, *mode)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(std.out)
		enc.SetEscapeHTML(false)
		printed := 0
		var failed error
		err = consume(ctx, cn, starts, nil, func(r *kgo.Record) bool {
			if *key != "" && string(r.Key) != *key {
				return true
			}
			dv, err := d.decode(ctx, r)
			if err != nil {
				failed = err
				return false
			}
			if *ceType != "" && dv.typeName != *ceType {
				return true
			}
			if err := enc.Encode(viewOf(r, dv, false)); err != nil {
				failed = err
				return false
			}
			printed++
			return *count == 0 || printed < *count
		})
		if failed != nil {
			return failed
		}
		return err
	}
}
