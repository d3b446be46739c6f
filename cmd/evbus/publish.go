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
	"time"

	"github.com/hamba/avro/v2"
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
usage: evbus publish --topic T --schema file.avsc --key-field F [--source S] < records.jsonl

Reads one JSON record per line (Avro JSON: a union value is null or
{"<branch>": value}; a bare value is taken where the union has one branch
besides null; missing fields take the schema's defaults), checks EVERY
record against the schema before sending anything (a bad record stops it
with the line and field named, and nothing is sent), registers the schema
under its subject (or finds it registered), and publishes each record as
evbus publishers do: Confluent-framed Avro, keyed by the field --key-field,
with the CloudEvents headers (ce_id a new UUIDv7, ce_type the record's full
name, ce_source --source, ce_time now). Prints one line per record: its
partition, offset and ce_id.

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
}

func setupPublish(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	topic := fs.String("topic", "", "topic to publish to (required)")
	schemaFile := fs.String("schema", "", "Avro schema file (.avsc) of the records: a record schema (required)")
	keyField := fs.String("key-field", "", "top-level field whose value is the record key, e.g. the aggregate id (required)")
	source := fs.String("source", "/evbus-cli", "ce_source of the events: the producing service, a URI-reference")
	cn.strategyFlag(fs)
	cn.compressionFlag(fs)
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
		es, err := engineSchema(s)
		if err != nil {
			return fmt.Errorf("--schema %s: %w", *schemaFile, err)
		}
		rs, ok := es.(*avro.RecordSchema)
		if !ok {
			return fmt.Errorf("--schema %s: want a record schema: its full name is the events' ce_type", *schemaFile)
		}
		if f := fieldNamed(rs, *keyField); f == nil {
			return usagef("--key-field %q: record %s has no such field", *keyField, rs.FullName())
		}
		records, err := readRecords(std.in, es, *keyField)
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
		enc, err := codec.New(reg).Encoder(w.ID, w.Schema, s)
		if err != nil {
			return err
		}
		recs := make([]*kgo.Record, len(records))
		for i, p := range records {
			value, err := enc.AppendEncode(nil, p.value)
			if err != nil {
				return fmt.Errorf("line %d: %w (nothing was sent)", p.line, err)
			}
			id, err := bus.NewID()
			if err != nil {
				return err
			}
			now := time.Now()
			recs[i] = &kgo.Record{
				Topic: *topic, Key: []byte(p.key), Value: value, Timestamp: now,
				Headers: bus.Headers(id, *source, s.FullName(), p.key, now),
			}
		}
		results := cl.ProduceSync(ctx, recs...)
		for i, r := range results {
			if r.Err != nil {
				return fmt.Errorf("line %d: %w (records before it were sent)", records[i].line, r.Err)
			}
			fmt.Fprintf(std.out, "line %d: partition %d offset %d ce_id %s\n", records[i].line, r.Record.Partition, r.Record.Offset, string(r.Record.Headers[1].Value))
		}
		return nil
	}
}

func fieldNamed(rs *avro.RecordSchema, name string) *avro.Field {
	for _, f := range rs.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// maxLine bounds one input line.
const maxLine = 16 << 20

// readRecords reads and checks every line of r; the first bad one fails
// with its line number and field.
func readRecords(r io.Reader, s avro.Schema, keyField string) ([]pending, error) {
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
		value, err := fromJSON(s, v, "")
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
