package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

func init() {
	register(command{
		name:    "dlt groups",
		summary: "group a consumer group's dead letters by cause, largest first",
		usage: `
usage: evbus dlt groups --group G [--topic T] [--json]

Reads the dead-letter topics of group G ("<topic>.G.dlt", or only T's with
--topic) and prints one line per cause: its fingerprint, how many dead
letters it has, when the first and the last of them failed, the error
kind, the event type and the error text with ids, numbers, quoted values,
durations, times and addresses replaced by placeholders (<n>, <str>, ...),
a sample (the dead letter that failed last, as 'dlt show' takes it), and
its dead letters counted by state in the group's ledger (as 'dlt ls').
The largest cause comes first. A summary line ends the table. --json
prints one JSON object per cause instead, the summary on stderr. On a
terminal, a long read shows its progress on stderr. docs/operations.md
states the fingerprint's rule.

example:
  evbus dlt groups --group billing
  evbus dlt groups --group billing --topic orders --json | jq -r .fingerprint`,
		conn:  true,
		only:  kafkaOnly,
		setup: setupDLTGroups,
	})
}

// dltGroupLine is a cause as --json prints it.
type dltGroupLine struct {
	Fingerprint string    `json:"fingerprint"`
	Count       int       `json:"count"`
	FirstFailed time.Time `json:"first_failed_at"`
	LastFailed  time.Time `json:"last_failed_at"`
	ErrorKind   string    `json:"error_kind"`
	Type        string    `json:"type"`
	Error       string    `json:"error"` // normalised
	// States counts the cause's dead letters by their state in the
	// group's ledger; states none has are left out.
	States map[string]int `json:"states"`
	Sample dltLine        `json:"sample"` // as dlt ls --json prints it
}

// stateOrder is the order the table lists states in.
var stateOrder = []wire.LedgerState{wire.LedgerOpen, wire.LedgerReplaying, wire.LedgerFailedAgain,
	wire.LedgerParked, wire.LedgerResolved, wire.LedgerDiscarded}

// stateCounts counts ds by state (see ledgerStates), by fingerprint ID.
func stateCounts(ds []wire.DeadLetter, states map[string]wire.LedgerState) map[string]map[string]int {
	out := make(map[string]map[string]int)
	for _, d := range ds {
		f := deadletter.FingerprintOf(d).ID
		if out[f] == nil {
			out[f] = make(map[string]int)
		}
		out[f][string(stateOf(d, states))]++
	}
	return out
}

// countsLine is counts as the table shows them: "open 3, parked 1".
func countsLine(counts map[string]int) string {
	var parts []string
	for _, s := range stateOrder {
		if n := counts[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	return strings.Join(parts, ", ")
}

func setupDLTGroups(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	group := fs.String("group", "", "the consumer group whose dead letters to group (required)")
	topic := fs.String("topic", "", "only dead letters of this (original) topic")
	asJSON := fs.Bool("json", false, "print one JSON object per cause, for scripts")
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		if *group == "" {
			return usagef("--group is required: dead letters are grouped for one consumer group")
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		ds, err := readGroups(ctx, cl, *group, *topic, std)
		if err != nil {
			return readError(cn, err)
		}
		states, err := ledgerStates(ctx, cl, ds, func(msg string) { fmt.Fprintln(std.err, "evbus dlt groups: ledger:", msg) })
		if err != nil {
			return err
		}
		gs := deadletter.GroupBy(ds)
		if err := printGroups(std, gs, stateCounts(ds, states), states, *asJSON); err != nil {
			return err
		}
		n := 0
		for _, g := range gs {
			n += g.Count
		}
		w := std.out
		if *asJSON {
			w = std.err // stdout holds JSON lines only
		}
		fmt.Fprintf(w, "%d dead letters of group %s by %d fingerprints\n", n, *group, len(gs))
		return nil
	}
}

// readGroups reads group's dead letters for deadletter.GroupBy, as
// deadletter.Groups does, with the CLI's progress and warnings.
func readGroups(ctx context.Context, cl *kgo.Client, group, topic string, std *stdio) ([]wire.DeadLetter, error) {
	show := readProgress(std, "reading dead letters")
	defer show.done()
	opts := []deadletter.Option{deadletter.Progress(show.at), deadletter.Skipped(func(err error) {
		fmt.Fprintln(std.err, "evbus dlt groups: skipped:", err)
	})}
	if topic != "" {
		opts = append(opts, deadletter.Topic(topic))
	}
	ds, _, err := deadletter.Read(ctx, cl, group, opts...)
	return ds, err
}

// printGroups prints causes as a table or as JSON lines, in the order
// given, with their counts by state (see stateCounts) and their samples'
// states.
func printGroups(std *stdio, gs []deadletter.Group, counts map[string]map[string]int, states map[string]wire.LedgerState, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(std.out)
		enc.SetEscapeHTML(false) // the placeholders read <n>, not \u003cn\u003e
		for _, g := range gs {
			f := g.Fingerprint
			if err := enc.Encode(dltGroupLine{Fingerprint: f.ID, Count: g.Count, FirstFailed: g.FirstFailed, LastFailed: g.LastFailed,
				ErrorKind: string(f.Kind), Type: f.Type, Error: f.Error, States: counts[f.ID], Sample: lineOf(g.Sample, nil, states)}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINGERPRINT\tCOUNT\tFIRST-FAILED\tLAST-FAILED\tKIND\tTYPE\tSAMPLE\tSTATES\tERROR")
	for _, g := range gs {
		f := g.Fingerprint
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, g.Count, g.FirstFailed.UTC().Format(time.RFC3339), g.LastFailed.UTC().Format(time.RFC3339),
			f.Kind, dash(f.Type), wire.DeadLetterID(g.Sample.Record), countsLine(counts[f.ID]), oneLine(f.Error, 80))
	}
	return tw.Flush()
}
