package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

func init() {
	register(command{
		name:    "dlt ls",
		summary: "list dead-lettered records, newest first",
		usage: `
usage: evbus dlt ls [--topic T] [--group G] [--since D] [--type ce_type] [--error-kind K] [--limit N] [--json]

Reads the dead-letter topics ("<topic>.<group>.dlt") and prints one line
per record, newest first: where it is (dead-letter topic, partition,
offset), when it failed, its event type, key, error kind and error, and how
often it was replayed (the count of its latest replay, read from the
replay topic, or of the replay it failed in) and its state in the group's
ledger ("<group>.dlt-ledger", read, never created: open when it has no
record of it). Without --topic and --group
every topic whose name ends in ".dlt" is read; none to read is an error.
A summary line ends the table: how many records were selected of how many
read, and how many are shown (--limit, 100 by default). --json prints one
JSON object per line instead (all of them unless --limit), the summary on
stderr; its dead_letter_id is what --id of dlt replay, discard and park
takes. On a terminal, a long read shows its progress on stderr.

example:
  evbus dlt ls --topic orders --group billing --since 24h
  evbus dlt ls --error-kind poison --json | jq -r .id`,
		conn:  true,
		only:  kafkaOnly,
		setup: setupDLTList,
	})
	register(command{
		name:    "dlt show",
		summary: "show one dead-lettered record: headers and decoded value",
		usage: `
usage: evbus dlt show <topic> <partition> <offset> [--avro-json]

Prints one record as JSON: its headers and its value decoded through the
schema registry (as 'evbus tail' prints it; --avro-json for the Avro
specification's JSON encoding), or the value's bytes in hex with the
reason when it cannot be decoded; keys, header values and tombstones as
'evbus tail' prints them. <topic> is the dead-letter topic as 'dlt ls'
prints it (any topic works).

example:
  evbus dlt show orders.billing.dlt 0 42`,
		conn:  true,
		setup: setupDLTShow,
	})
}

// dltFilter selects dead-letter records: of a group and topic (as
// deadletter.Read selects them), a type, a kind, a time.
type dltFilter struct {
	topic, group, ceType, kind string
	since                      sinceFlag
}

func (f *dltFilter) define(fs *flag.FlagSet) {
	fs.StringVar(&f.topic, "topic", "", "only dead letters of this (original) topic")
	fs.StringVar(&f.group, "group", "", "only dead letters of this consumer group")
	fs.Var(&f.since, "since", "only records that failed in this past duration (24h) or since this RFC 3339 time")
	fs.StringVar(&f.ceType, "type", "", "only this event type (ce_type, e.g. com.example.orders.OrderPlaced)")
	fs.StringVar(&f.kind, "error-kind", "", "only this error kind: retries-exhausted, permanent or poison")
}

func (f *dltFilter) validate() error {
	switch wire.FailureKind(f.kind) {
	case "", wire.KindRetriesExhausted, wire.KindPermanent, wire.KindPoison:
		return nil
	}
	return usagef("--error-kind %q: want retries-exhausted, permanent or poison", f.kind)
}

func (f *dltFilter) match(d wire.DeadLetter) bool {
	return (f.ceType == "" || d.Type == f.ceType) &&
		(f.kind == "" || string(d.Kind) == f.kind) &&
		(f.since.t.IsZero() || !d.FailedAt.Before(f.since.t))
}

// sinceFlag is a past duration or an RFC 3339 time.
type sinceFlag struct {
	t   time.Time
	raw string
}

func (s *sinceFlag) String() string { return s.raw }

func (s *sinceFlag) Set(v string) error {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		s.t, s.raw = time.Now().Add(-d), v
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want a duration such as 24h or an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	s.t, s.raw = t, v
	return nil
}

// deadLetters reads the dead-letter topics the filter names (through
// deadletter.Read) and returns the records it selects, oldest first, and
// how many records it read. Records that are not dead-letter records are
// reported on warn and left out. No dead-letter topic to read is an error
// that says so. On a terminal (std.errTerminal), a long read shows its
// progress on std.err. Interrupted, it returns what it read.
func deadLetters(ctx context.Context, cn *conn, cl *kgo.Client, f *dltFilter, std *stdio, warn func(string)) ([]wire.DeadLetter, int, error) {
	var opts []deadletter.Option
	if f.topic != "" {
		opts = append(opts, deadletter.Topic(f.topic))
	}
	show := readProgress(std, "reading dead letters")
	defer show.done()
	all, read, err := deadletter.Read(ctx, cl, f.group, append(opts, deadletter.Progress(show.at),
		deadletter.Skipped(func(err error) { warn(err.Error()) }))...)
	if err != nil && ctx.Err() == nil {
		return nil, 0, readError(cn, err)
	}
	out := all[:0]
	for _, d := range all {
		if f.match(d) {
			out = append(out, d)
		}
	}
	return out, read, nil
}

// readError is err of a read of dead letters in the CLI's words: a
// missing dead-letter topic says which groups have one, and the fix.
func readError(cn *conn, err error) error {
	var nt *deadletter.NoTopicError
	if !errors.As(err, &nt) {
		return err
	}
	have := "no group has one"
	if len(nt.Groups) > 0 {
		have = "groups with one: " + strings.Join(nt.Groups, ", ")
	}
	switch {
	case nt.TopicMissing:
		return fmt.Errorf("topic %q does not exist on %s: check --topic (and --brokers)", nt.Topic, cn.brokers)
	case nt.Group != "" && nt.Topic != "":
		return fmt.Errorf("group %s has no dead-letter topic of %s (%s does not exist on %s): check --group (%s)", nt.Group, nt.Topic, wire.DeadLetterTopic(nt.Topic, nt.Group), cn.brokers, have)
	case nt.Group != "":
		return fmt.Errorf("group %s has no dead-letter topic (<topic>.%s.dlt) on %s: check --group (%s)", nt.Group, nt.Group, cn.brokers, have)
	case nt.Topic != "":
		return fmt.Errorf("topic %s has no dead-letter topic (%s.<group>.dlt) on %s: create them with evbus topic create %s --groups <group>", nt.Topic, nt.Topic, cn.brokers, nt.Topic)
	}
	return fmt.Errorf("no dead-letter topic (<topic>.<group>.dlt) on %s: check --brokers, or create them with evbus topic create <topic> --groups <group>", cn.brokers)
}

// progress shows how far a long read got on a terminal's std.err; it
// shows nothing elsewhere, or for reads of fewer than progressMin records.
type progress struct {
	w     io.Writer // nil: nothing shown
	what  string
	shown int // the last percentage printed, -1 none
}

// progressMin is the shortest read that shows its progress.
const progressMin = 1000

func readProgress(std *stdio, what string) *progress {
	p := &progress{what: what, shown: -1}
	if std.errTerminal {
		p.w = std.err
	}
	return p
}

// at shows that n records of total were read.
func (p *progress) at(n, total int) {
	if p.w == nil || total < progressMin {
		return
	}
	if pct := 100 * min(n, total) / total; pct != p.shown {
		p.shown = pct
		fmt.Fprintf(p.w, "\r%s: %d/%d %s", p.what, n, total, bar(min(n, total), total))
	}
}

// done clears the progress line.
func (p *progress) done() {
	if p.w != nil && p.shown >= 0 {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// replays returns, for each dead-letter record (as wire.DeadLetterID
// names it) that the replay topics of ds's groups hold a replay of, the
// replay count of its latest replay. Replay topics that do not exist hold
// none.
func replays(ctx context.Context, cn *conn, adm *kadm.Client, ds []wire.DeadLetter) (map[string]int, error) {
	var topics []string
	for _, d := range ds {
		if t := wire.ReplayTopic(d.OriginalTopic, d.Group); !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	out := make(map[string]int)
	if len(topics) == 0 {
		return out, nil
	}
	listCtx, cancel := context.WithTimeout(ctx, cn.timeout)
	defer cancel()
	parts, err := topicPartitions(listCtx, adm, topics...)
	if err != nil || len(parts) == 0 {
		return out, err
	}
	s, e, err := bounds(listCtx, adm, slices.Collect(maps.Keys(parts))...)
	if err != nil {
		return nil, err
	}
	err = consume(ctx, cn, s, e, func(r *kgo.Record) bool {
		if of := wire.ReplayOf(r); of != "" {
			n, _ := wire.ReplayCount(r)
			out[of] = max(out[of], n)
		}
		return true
	})
	return out, err
}

// ledgerStates returns the ledger state of each dead letter of ds's
// groups (by wire.DeadLetterID) that the groups' ledgers record; the
// others are open. It reads without writing: a group without a ledger
// topic has none created. Ledger records that do not parse are reported on
// warn, once per ledger, and left out.
func ledgerStates(ctx context.Context, cl *kgo.Client, ds []wire.DeadLetter, warn func(string)) (map[string]wire.LedgerState, error) {
	var groups []string
	for _, d := range ds {
		if !slices.Contains(groups, d.Group) {
			groups = append(groups, d.Group)
		}
	}
	adm := kadm.NewClient(cl)
	out := make(map[string]wire.LedgerState)
	for _, g := range groups {
		rs, err := deadletter.ReadStates(ctx, cl, adm, g)
		if err != nil && !errors.Is(err, wire.ErrLedgerRecord) && !errors.Is(err, deadletter.ErrStaleWrite) {
			return nil, err
		}
		if err != nil {
			warn(err.Error())
		}
		for id, r := range rs {
			out[id] = r.State
		}
	}
	return out, nil
}

// stateOf is d's state in states (see ledgerStates): open when the
// ledger has no record of it.
func stateOf(d wire.DeadLetter, states map[string]wire.LedgerState) wire.LedgerState {
	if s, ok := states[wire.DeadLetterID(d.Record)]; ok {
		return s
	}
	return wire.LedgerOpen
}

// dltLine is a dead-letter record as --json prints it.
type dltLine struct {
	Topic             string    `json:"topic"`
	Partition         int32     `json:"partition"`
	Offset            int64     `json:"offset"`
	FailedAt          time.Time `json:"failed_at"`
	Type              string    `json:"type"`
	ID                string    `json:"id"`
	Key               string    `json:"key"`
	Group             string    `json:"group"`
	ErrorKind         string    `json:"error_kind"`
	Error             string    `json:"error"`
	Attempts          int       `json:"attempts"`
	Replays           int       `json:"replays"`
	State             string    `json:"state"`          // in the group's ledger
	DeadLetterID      string    `json:"dead_letter_id"` // <topic>/<partition>/<offset>, as --id takes it
	OriginalTopic     string    `json:"original_topic"`
	OriginalPartition int32     `json:"original_partition"`
	OriginalOffset    int64     `json:"original_offset"`
}

// lineOf is d as --json prints it; replayed holds the replay counts of
// the records replayed (see replays), states the ledger states (see
// ledgerStates). A record's count is its own (that of the replay it failed
// in) or that of its latest replay.
func lineOf(d wire.DeadLetter, replayed map[string]int, states map[string]wire.LedgerState) dltLine {
	n, _ := wire.ReplayCount(d.Record) // a bad count shows as 0; replay refuses it
	n = max(n, replayed[wire.DeadLetterID(d.Record)])
	return dltLine{
		Topic: d.Record.Topic, Partition: d.Record.Partition, Offset: d.Record.Offset,
		FailedAt: d.FailedAt, Type: d.Type, ID: d.ID, Key: string(d.Record.Key), Group: d.Group,
		ErrorKind: string(d.Kind), Error: d.Error, Attempts: d.Attempts, Replays: n, State: string(stateOf(d, states)), DeadLetterID: wire.DeadLetterID(d.Record),
		OriginalTopic: d.OriginalTopic, OriginalPartition: d.OriginalPartition, OriginalOffset: d.OriginalOffset,
	}
}

// printDeadLetters prints records as a table or as JSON lines, in the
// order given, with their replay counts and states (see lineOf).
func printDeadLetters(std *stdio, ds []wire.DeadLetter, replayed map[string]int, states map[string]wire.LedgerState, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(std.out)
		for _, d := range ds {
			if err := enc.Encode(lineOf(d, replayed, states)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET\tFAILED-AT\tTYPE\tKEY\tKIND\tREPLAYS\tSTATE\tERROR")
	for _, d := range ds {
		l := lineOf(d, replayed, states)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", l.Topic, l.Partition, l.Offset,
			l.FailedAt.UTC().Format(time.RFC3339), dash(l.Type), dash(oneLine(l.Key, 40)), l.ErrorKind, l.Replays, l.State, oneLine(l.Error, 80))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine fits s on one table cell of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func setupDLTList(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	var f dltFilter
	f.define(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per record, for scripts")
	limit := fs.Int("limit", -1, "print at most this many records, the newest (default: "+strconv.Itoa(defaultLimit)+" in the table, all with --json; 0: all)")
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		if err := f.validate(); err != nil {
			return err
		}
		if *limit < -1 {
			return usagef("--limit %d: want 0 (all) or more", *limit)
		}
		n := *limit
		if n == -1 && !*asJSON {
			n = defaultLimit
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		ds, read, err := deadLetters(ctx, cn, cl, &f, std, func(msg string) { fmt.Fprintln(std.err, "evbus dlt ls: skipped:", msg) })
		if err != nil {
			return err
		}
		slices.Reverse(ds) // newest first
		selected := len(ds)
		if n > 0 && len(ds) > n {
			ds = ds[:n]
		}
		replayed, err := replays(ctx, cn, kadm.NewClient(cl), ds)
		if err != nil {
			return err
		}
		states, err := ledgerStates(ctx, cl, ds, func(msg string) { fmt.Fprintln(std.err, "evbus dlt ls: ledger:", msg) })
		if err != nil {
			return err
		}
		if err := printDeadLetters(std, ds, replayed, states, *asJSON); err != nil {
			return err
		}
		summary := fmt.Sprintf("%d dead letters selected of %d read", selected, read)
		if len(ds) < selected {
			summary += fmt.Sprintf("; showing the newest %d: --limit 0 shows all", len(ds))
		}
		w := std.out
		if *asJSON {
			w = std.err // stdout holds JSON lines only
		}
		fmt.Fprintln(w, summary)
		return nil
	}
}

// defaultLimit is how many dead letters the table shows without --limit.
const defaultLimit = 100

func setupDLTShow(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	mode := defineMode(fs)
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 3, 3, "arguments: want <topic> <partition> <offset>"); err != nil {
			return err
		}
		topic := std.args[0]
		partition, err := strconv.ParseInt(std.args[1], 10, 32)
		if err != nil || partition < 0 {
			return usagef("partition %q: want a number from 0", std.args[1])
		}
		offset, err := strconv.ParseInt(std.args[2], 10, 64)
		if err != nil || offset < 0 {
			return usagef("offset %q: want a number from 0", std.args[2])
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		n, err := needTopic(ctx, adm, cn.brokers, topic)
		if err != nil {
			return err
		}
		if int(partition) >= n {
			return fmt.Errorf("topic %s has partitions 0 to %d, not %d", topic, n-1, partition)
		}
		listCtx, cancel := context.WithTimeout(ctx, cn.timeout)
		defer cancel()
		starts, ends, err := bounds(listCtx, adm, topic)
		if err != nil {
			return err
		}
		first, end := starts[topic][int32(partition)], ends[topic][int32(partition)]
		if offset < first || offset >= end {
			return fmt.Errorf("%s/%d holds offsets %d to %d, not %d", topic, partition, first, end-1, offset)
		}
		reg, err := cn.schemaRegistry(ctx)
		if err != nil {
			return err
		}
		var rec *kgo.Record
		err = consume(ctx, cn, offsets{topic: {int32(partition): offset}}, offsets{topic: {int32(partition): offset + 1}}, func(r *kgo.Record) bool {
			rec = r
			return false
		})
		if err != nil {
			return err
		}
		if rec == nil || rec.Offset != offset {
			return fmt.Errorf("%s/%d has no record at offset %d (compacted away, or a transaction marker)", topic, partition, offset)
		}
		d, err := newDecoder(reg, *mode)
		if err != nil {
			return err
		}
		out, err := d.view(ctx, rec, true)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(std.out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
}
