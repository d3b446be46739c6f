package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/codec"
)

func init() {
	register(command{
		name:    "publish",
		summary: "publish JSON records from stdin as events (Avro, CloudEvents headers)",
		usage: `
usage: evbus publish --topic T --schema file.avsc --key-field F [--source S] [--avro-json] < records.jsonl

Reads one JSON record per line, values written as people write them: a
decimal as a decimal string ("49.99", or a JSON number, read by its digits:
one that does not fit the precision or scale is refused), bytes and fixed
as base64, timestamps as RFC 3339 ("2026-01-02T15:04:05.123Z"), a date as
"2026-01-02", a union of null and one type as null or the value itself,
other unions as {"<branch>": value}; missing fields take the schema's
defaults (see docs/operations.md for every type). --avro-json reads the
Avro specification's JSON encoding instead, as Confluent's
kafka-avro-console-producer does. Checks EVERY record against the schema
before sending anything (a bad record stops it with the line and field
named, and nothing is sent), registers the schema
under its subject (or finds it registered), and publishes each record as
evbus publishers do: Confluent-framed Avro, keyed by the field --key-field,
with the CloudEvents headers (ce_id a new UUIDv7, ce_type the record's full
name, ce_source --source, ce_time now). Prints one line per record, in
input order, naming its input line: its partition, offset and ce_id. A
record Kafka refuses (one too large, say) is reported on stderr with its
line, the others are sent, and the exit status is 1.

example:
  evbus publish --topic orders --schema order_placed.avsc --key-field order_id < orders.jsonl`,
		conn:  true,
		env:   map[string]string{"strategy": "EVBUS_SUBJECT_STRATEGY", "compression": "EVBUS_COMPRESSION"},
		setup: setupPublish,
	})
}

// pending is a validated input record.
type pending struct {
	line  int
	key   string
	value any
	id    string // its ce_id
}

func setupPublish(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	topic := fs.String("topic", "", "topic to publish to (required)")
	schemaFile := fs.String("schema", "", "Avro schema file (.avsc) of the records: a record schema (required)")
	keyField := fs.String("key-field", "", "top-level field whose value is the record key, e.g. the aggregate id (required)")
	source := fs.String("source", "/evbus-cli", "ce_source of the events: the producing service, a URI-reference")
	cn.strategyFlag(fs)
	cn.compressionFlag(fs)
	mode := defineMode(fs)
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		for name, v := range map[string]string{"topic": *topic, "schema": *schemaFile, "key-field": *keyField, "source": *source} {
			if v == "" {
				return usagef("--%s is required", name)
			}
		}
		text, err := os.ReadFile(*schemaFile)
		if err != nil {
			return fmt.Errorf("--schema: %w", err)
		}
		s, err := codec.Parse(string(text))
		if err != nil {
			return fmt.Errorf("--schema %s: %w", *schemaFile, err)
		}
		fields := s.Fields()
		if fields == nil {
			return fmt.Errorf("--schema %s: want a record schema: its full name is the events' ce_type", *schemaFile)
		}
		if !slices.Contains(fields, *keyField) {
			return usagef("--key-field %q: record %s has no such field", *keyField, s.FullName())
		}
		records, err := readRecords(std.in, s, *keyField, *mode)
		if err != nil {
			return err
		}
		if len(records) == 0 {
			return errors.New("no records on stdin: pass one JSON object per line")
		}

		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		if _, err := needTopic(ctx, kadm.NewClient(cl), cn.brokers, *topic); err != nil {
			return err
		}
		reg, err := cn.schemaRegistry(ctx)
		if err != nil {
			return err
		}
		w, err := reg.Writer(ctx, *topic, s)
		if err != nil {
			return fmt.Errorf("schema %s for topic %s: %w", s.FullName(), *topic, err)
		}
		c, err := codec.New(reg)
		if err != nil {
			return err
		}
		enc, err := c.Encoder(w.ID, w.Schema, s)
		if err != nil {
			return err
		}
		recs := make([]*kgo.Record, len(records))
		for i, p := range records {
			value, err := enc.AppendEncode(nil, p.value)
			if err != nil {
				return fmt.Errorf("line %d: %w (nothing was sent)", p.line, err)
			}
			if records[i].id, err = bus.NewID(); err != nil {
				return err
			}
			now := time.Now()
			recs[i] = &kgo.Record{
				Topic: *topic, Key: []byte(p.key), Value: value, Timestamp: now,
				Headers: bus.Headers(records[i].id, *source, s.FullName(), p.key, now),
			}
		}
		return report(std, records, recs, produce(ctx, cl, recs))
	}
}

// produce sends recs and returns each one's error, by index: results come
// in the order the broker completes them, not in the order given.
func produce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) []error {
	at := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		at[r] = i
	}
	errs := make([]error, len(recs))
	for _, r := range cl.ProduceSync(ctx, recs...) {
		errs[at[r.Record]] = r.Err
	}
	return errs
}

// report prints, in input order, each record's partition, offset and
// ce_id, or why it was not sent, next to its input line.
func report(std *stdio, records []pending, recs []*kgo.Record, errs []error) error {
	var failed []string
	for i, p := range records {
		if errs[i] != nil {
			failed = append(failed, strconv.Itoa(p.line))
			fmt.Fprintf(std.err, "evbus publish: line %d: not sent: %v\n", p.line, errs[i])
			continue
		}
		fmt.Fprintf(std.out, "line %d: partition %d offset %d ce_id %s\n", p.line, recs[i].Partition, recs[i].Offset, p.id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d records were not sent (line %s); the others were", len(failed), len(records), strings.Join(failed, ", "))
	}
	return nil
}

// maxLine bounds one input line.
const maxLine = 16 << 20

// readRecords reads and checks every line of r; the first bad one fails
// with its line number and field.
func readRecords(r io.Reader, s *codec.Schema, keyField string, mode jsonMode) ([]pending, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var out []pending
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: not JSON: %v (nothing was sent)", n, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON value: put one record per line (nothing was sent)", n)
		}
		value, err := codec.UnmarshalJSON(s, line, codec.JSONOptions(mode))
		if err != nil {
			return nil, fmt.Errorf("line %d: %v (nothing was sent)", n, err)
		}
		var key string
		switch k := v.(map[string]any)[keyField].(type) {
		case string:
			key = k
		case json.Number:
			key = k.String()
		}
		if key == "" {
			return nil, fmt.Errorf("line %d: field %s (the key): want a non-empty string or a number (nothing was sent)", n, keyField)
		}
		out = append(out, pending{line: n, key: key, value: value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stdin: %w (nothing was sent)", err)
	}
	return out, nil
}
