package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/evbus/evbus/deadletter"
	"github.com/evbus/evbus/wire"
)

// selectionHelp is the part of the actions' usage that says how dead
// letters are selected.
const selectionHelp = `
Selecting: the flags combine (a dead letter is selected when it meets all
of them); with none the command selects nothing, --all selects every dead
letter of the group. --id (repeatable) names a dead letter as
<dead-letter topic>/<partition>/<offset> (dlt ls --json prints it as
dead_letter_id, dlt groups as SAMPLE); --fingerprint takes the id dlt
groups prints; --partition and --offsets select an offset range
(both ends included) of the dead-letter topics' partition P.

Which dead letters an action takes (docs/operations.md, "Triage"): a
bulk replay takes those in state open; a dead letter replayed
--max-replays times (its dlt-replay-count) is parked by the loop guard
instead, and recorded so. Selected by --id, a dead letter is replayed in
any state the ledger allows (parked, resolved, failed-again, discarded),
loop guard or not. A dead letter replaying is left alone, unless an
interrupted replay recorded it and did not send it: that one is sent, so
running a killed replay again finishes it, sending no record twice.
Every action is recorded in the group's ledger ("<group>.dlt-ledger",
created by the first action) with --actor, --reason and an operation id.

On a terminal the command says what it will do and asks first; --yes
skips the question, and without a terminal --yes is required (the command
refuses, doing nothing). --dry-run prints each selected dead letter with
what the action would do to it and why, and does nothing. On a terminal
the progress is shown on stderr; a summary ends the run. --json prints
one JSON object per selected dead letter (as dlt ls --json, plus
"fingerprint", "do", "why" and "resume"), the summary on stderr.`

func init() {
	register(command{
		name:    "dlt replay",
		summary: "send dead letters back to the group that failed them, only",
		usage: `
usage: evbus dlt replay --group G (--all | selection flags) [--reason R] [--actor A] [--dry-run] [--rate N] [--max-replays K] [--yes] [--json]

Sends the selected dead letters of group G back to G, and to no other
group. How: every evbus consumer also reads the replay topic
"<topic>.<group>.replay" of each topic it handles, as records of <topic>
(see the consumer package's doc). This command copies each dead letter
there, oldest failure first: same key and value bytes, the original
headers, and so the original ce_id (a group that already handled the event
skips it), plus dlt-replay-count (one more than the record's),
dlt-replayed-at and dlt-replay-of (the dead letter it came from). A record
that fails again is dead-lettered again with these headers. A missing
replay topic is created with its topic's partition count; the group's
consumers read it from their next metadata refresh (create replay topics
with the others, as Consumer.Topics lists them, for groups that start new
partitions at their end). The dead letters stay where they are; their
state in the ledger becomes replaying, then resolved or failed-again once
the consumer handled the replay.
` + selectionHelp + `

example:
  evbus dlt replay --group billing --fingerprint 3f9a0c1d2e4b --dry-run   # the fingerprint as dlt groups prints it
  evbus dlt replay --group billing --fingerprint 3f9a0c1d2e4b --reason "card service back" --rate 50
  evbus dlt replay --group billing --id orders.billing.dlt/0/42 --yes     # a parked one, by id
  evbus dlt replay --group billing --topic orders --since 24h --yes`,
		conn: true,
		env:  map[string]string{"compression": "EVBUS_COMPRESSION"},
		only: kafkaOnly,
		setup: func(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
			return setupAction(fs, cn, deadletter.ActionReplay)
		},
	})
	register(command{
		name:    "dlt discard",
		summary: "record that dead letters are given up on (deletes nothing)",
		usage: `
usage: evbus dlt discard --group G (--all | selection flags) --reason R [--actor A] [--dry-run] [--yes] [--json]

Records in group G's ledger that the selected dead letters (those open,
failed-again or parked) are given up on: their state becomes discarded.
Nothing is deleted from Kafka; a discarded dead letter is replayed only
when selected by --id. --reason is required.
` + selectionHelp + `

example:
  evbus dlt discard --group billing --fingerprint 3f9a0c1d2e4b --reason "orders cancelled by support" --dry-run
  evbus dlt discard --group billing --key o-17 --reason "duplicate order" --yes`,
		conn: true,
		only: kafkaOnly,
		setup: func(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
			return setupAction(fs, cn, deadletter.ActionDiscard)
		},
	})
	register(command{
		name:    "dlt park",
		summary: "hold dead letters back from bulk replays",
		usage: `
usage: evbus dlt park --group G (--all | selection flags) --reason R [--actor A] [--dry-run] [--yes] [--json]

Records in group G's ledger that the selected dead letters (those open or
failed-again, and, selected by --id, replaying) are parked: bulk replays
leave them alone; they are replayed only when selected by --id.
--reason is required.
` + selectionHelp + `

example:
  evbus dlt park --group billing --fingerprint 3f9a0c1d2e4b --reason "waits for the fix of the tax rules" --yes`,
		conn: true,
		only: kafkaOnly,
		setup: func(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
			return setupAction(fs, cn, deadletter.ActionPark)
		},
	})
}

// selectionFlags are the flags that select dead letters of a group for
// an action (deadletter.Selection).
type selectionFlags struct {
	group                                 string
	all                                   bool
	ids                                   idsFlag
	fingerprint, topic, key, ceType, kind string
	since, until                          sinceFlag
	partition                             int
	offsets                               string
}

// idsFlag is a repeatable --id.
type idsFlag []string

func (f *idsFlag) String() string     { return strings.Join(*f, ",") }
func (f *idsFlag) Set(v string) error { *f = append(*f, v); return nil }

func (s *selectionFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&s.group, "group", "", "the consumer group whose dead letters to act on (required)")
	fs.BoolVar(&s.all, "all", false, "select every dead letter of the group (narrowed by the other flags)")
	fs.Var(&s.ids, "id", "a dead letter's id, <dead-letter topic>/<partition>/<offset> (repeatable)")
	fs.StringVar(&s.fingerprint, "fingerprint", "", "only dead letters of this fingerprint (dlt groups prints it)")
	fs.StringVar(&s.topic, "topic", "", "only dead letters of this (original) topic")
	fs.StringVar(&s.key, "key", "", "only dead letters with this record key, exactly")
	fs.StringVar(&s.ceType, "type", "", "only this event type (ce_type, e.g. com.example.orders.OrderPlaced)")
	fs.StringVar(&s.kind, "error-kind", "", "only this error kind: retries-exhausted, permanent or poison")
	fs.Var(&s.since, "since", "only dead letters that failed in this past duration (24h) or since this RFC 3339 time")
	fs.Var(&s.until, "until", "only dead letters that failed before this RFC 3339 time, or this duration ago")
	fs.IntVar(&s.partition, "partition", -1, "with --offsets: the dead-letter topics' partition")
	fs.StringVar(&s.offsets, "offsets", "", "with --partition: an offset range A-B of the dead-letter topics, both included")
}

// selection checks the flags and returns what they select.
func (s *selectionFlags) selection() (deadletter.Selection, error) {
	if s.group == "" {
		return deadletter.Selection{}, usagef("--group is required: an action acts on the dead letters of one group")
	}
	if err := (&dltFilter{kind: s.kind}).validate(); err != nil {
		return deadletter.Selection{}, err
	}
	sel := deadletter.Selection{All: s.all, IDs: s.ids, Fingerprint: s.fingerprint, Topic: s.topic, Key: s.key,
		Type: s.ceType, Kind: wire.FailureKind(s.kind), FailedFrom: s.since.t, FailedTo: s.until.t}
	switch {
	case s.offsets == "" && s.partition >= 0, s.offsets != "" && s.partition < 0:
		return sel, usagef("--partition and --offsets go together: --partition 0 --offsets 10-20")
	case s.offsets != "":
		a, b, ok := strings.Cut(s.offsets, "-")
		from, err1 := strconv.ParseInt(a, 10, 64)
		to, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || from < 0 || to < from {
			return sel, usagef("--offsets %q: want A-B, 0 <= A <= B", s.offsets)
		}
		sel.Offsets = &deadletter.OffsetRange{Partition: int32(s.partition), From: from, To: to}
		if s.topic != "" {
			sel.Offsets.Topic = wire.DeadLetterTopic(s.topic, s.group)
		}
	}
	if !s.all && len(s.ids) == 0 && s.fingerprint == "" && s.topic == "" && s.key == "" && s.ceType == "" && s.kind == "" &&
		s.since.t.IsZero() && s.until.t.IsZero() && sel.Offsets == nil {
		return sel, usagef("no dead letter selected: pass --all, or select with --id, --fingerprint, --topic, --key, --type, --error-kind, --since, --until or --partition/--offsets")
	}
	return sel, nil
}

// defaultActor is the OS user at the host.
func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// actionWords are how the CLI speaks of an action: done, and to do.
var actionWords = map[deadletter.Action][2]string{
	deadletter.ActionReplay:  {"replayed", "replay"},
	deadletter.ActionDiscard: {"discarded", "discard"},
	deadletter.ActionPark:    {"parked", "park"},
}

// actionRuns are the Manager's methods that carry an action out.
var actionRuns = map[deadletter.Action]func(*deadletter.Manager, context.Context, deadletter.Selection, deadletter.Actor) (deadletter.Report, error){
	deadletter.ActionReplay:  (*deadletter.Manager).Replay,
	deadletter.ActionDiscard: (*deadletter.Manager).Discard,
	deadletter.ActionPark:    (*deadletter.Manager).Park,
}

func setupAction(fs *flag.FlagSet, cn *conn, a deadletter.Action) func(context.Context, *stdio) error {
	var sf selectionFlags
	sf.define(fs)
	reasonHelp := "why (required)"
	if a == deadletter.ActionReplay {
		reasonHelp = "why (recorded in the ledger)"
	}
	reason := fs.String("reason", "", reasonHelp)
	actor := fs.String("actor", defaultActor(), "who acts, as the ledger records it")
	dryRun := fs.Bool("dry-run", false, "print what would be done to each selected dead letter, and why; do nothing")
	yes := fs.Bool("yes", false, "act without asking; without a terminal to ask on, --yes is required")
	asJSON := fs.Bool("json", false, "print one JSON object per selected dead letter, for scripts")
	var rate *float64
	maxReplays := new(int)
	*maxReplays = wire.ReplayLimit
	if a == deadletter.ActionReplay {
		rate = fs.Float64("rate", 0, "send at most this many records a second (0: no limit)")
		fs.IntVar(maxReplays, "max-replays", wire.ReplayLimit, "the loop guard: a bulk replay parks dead letters replayed this many times")
		cn.compressionFlag(fs)
	}
	name := "dlt " + string(a)
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		sel, err := sf.selection()
		if err != nil {
			return err
		}
		switch {
		case *reason == "" && a != deadletter.ActionReplay:
			return usagef("--reason is required: say why, the ledger records it")
		case *actor == "":
			return usagef("--actor is empty: say who acts")
		case *maxReplays < 1:
			return usagef("--max-replays wants 1 or more")
		case rate != nil && *rate < 0:
			return usagef("--rate wants 0 or more")
		}
		opts := []deadletter.ManagerOption{deadletter.MaxReplays(*maxReplays),
			deadletter.Warn(func(err error) { fmt.Fprintf(std.err, "evbus %s: skipped: %v\n", name, err) })}
		if rate != nil {
			opts = append(opts, deadletter.ReplayRate(*rate))
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		m, err := openManager(ctx, cn, std, cl, sf.group, sf.topic, opts...)
		if err != nil {
			return err
		}
		defer m.Close()
		plan, err := m.Plan(ctx, a, sel)
		if err != nil {
			return err
		}
		if *dryRun {
			if err := printSteps(std, plan.Steps, *asJSON); err != nil {
				return err
			}
			fmt.Fprintln(summaryOut(std, *asJSON), "dry run: "+summary(plan, sf.group, true))
			return nil
		}
		if len(plan.Steps) == plan.Count("") {
			fmt.Fprintln(summaryOut(std, *asJSON), summary(plan, sf.group, false))
			return nil
		}
		if !*yes {
			if err := confirm(ctx, std, summary(plan, sf.group, true)+"?", actionWords[a]); err != nil {
				return err
			}
		}
		by := deadletter.Actor{Name: *actor, Reason: *reason}
		if std.errTerminal {
			by.Progress = func(done, total int) {
				fmt.Fprintf(std.err, "\r%s %d/%d %s", actionWords[a][1]+"ing", done, total, bar(done, total))
			}
		}
		rep, err := actionRuns[a](m, ctx, sel, by)
		if std.errTerminal && by.Progress != nil && rep.Done > 0 {
			fmt.Fprintln(std.err)
		}
		for _, t := range rep.CreatedTopics {
			fmt.Fprintf(std.err, "evbus %s: created replay topic %s; the group's consumers pick it up within their metadata refresh\n", name, t)
		}
		if *asJSON && rep.Steps != nil {
			if perr := printSteps(std, rep.Steps, true); perr != nil {
				return perr
			}
		}
		if rep.Steps != nil {
			line := summary(rep.Plan, sf.group, false)
			if rep.Operation != "" && rep.Done > 0 {
				line += " (operation " + rep.Operation + ")"
			}
			fmt.Fprintln(summaryOut(std, *asJSON), line)
		}
		return err
	}
}

// openManager returns the Manager of group's dead letters, showing the
// progress of its first read on a terminal; a group (or
// a topic of it, when topic is not "") without a dead-letter topic is an
// error that says which groups have one.
func openManager(ctx context.Context, cn *conn, std *stdio, cl *kgo.Client, group, topic string, opts ...deadletter.ManagerOption) (*deadletter.Manager, error) {
	show := readProgress(std, "reading dead letters")
	m, err := deadletter.NewManager(ctx, cl, group, append(opts, deadletter.ReadProgress(show.at))...)
	show.done()
	if err != nil {
		return nil, err
	}
	if _, err := m.Groups(ctx); err != nil {
		m.Close()
		return nil, readError(cn, err)
	}
	if topic != "" && !slices.Contains(m.DeadLetterTopics(), wire.DeadLetterTopic(topic, group)) {
		m.Close()
		return nil, readError(cn, &deadletter.NoTopicError{Group: group, Topic: topic, Groups: []string{group}})
	}
	return m, nil
}

// summaryOut is where the summary goes: stderr when stdout holds JSON.
func summaryOut(std *stdio, asJSON bool) io.Writer {
	if asJSON {
		return std.err
	}
	return std.out
}

// summary says what p does (would, when planned) to the dead letters of
// group it selects: how many are acted on, parked by the loop guard, and
// left alone, by why.
func summary(p deadletter.Plan, group string, planned bool) string {
	words := actionWords[p.Action]
	verb := words[0]
	if planned {
		verb = words[1]
	}
	do := p.Count(p.Action)
	s := fmt.Sprintf("%s %d of %d selected dead letters of group %s", verb, do, len(p.Steps), group)
	resumed := 0
	var topics []string
	for _, st := range p.Steps {
		if st.Resume {
			resumed++
		}
		if st.Do == deadletter.ActionReplay {
			if t := wire.ReplayTopic(st.Letter.OriginalTopic, group); !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	if len(topics) > 0 {
		s += " through " + strings.Join(topics, ", ")
	}
	if resumed > 0 {
		s += fmt.Sprintf(" (%d of them finishing an interrupted replay)", resumed)
	}
	if n := p.Count(deadletter.ActionPark); p.Action == deadletter.ActionReplay && n > 0 {
		if planned {
			s += fmt.Sprintf("; park %d instead (the loop guard)", n)
		} else {
			s += fmt.Sprintf("; %d parked instead by the loop guard", n)
		}
	}
	if left := p.Count(""); left > 0 {
		why := map[string]int{}
		var order []string
		for _, st := range p.Steps {
			if st.Do != "" {
				continue
			}
			k, _, _ := strings.Cut(st.Why, ":")
			if why[k] == 0 {
				order = append(order, k)
			}
			why[k]++
		}
		parts := make([]string, len(order))
		for i, k := range order {
			parts[i] = fmt.Sprintf("%s %d", k, why[k])
		}
		s += fmt.Sprintf("; %d left alone (%s)", left, strings.Join(parts, ", "))
		if !planned {
			s += ": --dry-run says why"
		}
	}
	return s
}

// stepLine is a step as --json prints it: the dead letter as dlt ls
// --json prints it, its fingerprint, and what the action does to it.
type stepLine struct {
	dltLine
	Fingerprint string `json:"fingerprint"`
	Do          string `json:"do"` // replay, discard, park, or "" for nothing
	Resume      bool   `json:"resume,omitempty"`
	Why         string `json:"why,omitempty"`
}

// printSteps prints steps as a table or as JSON lines.
func printSteps(std *stdio, steps []deadletter.Step, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(std.out)
		enc.SetEscapeHTML(false)
		for _, s := range steps {
			l := s.Letter
			if err := enc.Encode(stepLine{dltLine: lineOf(l.DeadLetter, map[string]int{l.ID: l.Replays}, map[string]wire.LedgerState{l.ID: l.State}),
				Fingerprint: l.Fingerprint.ID, Do: string(s.Do), Resume: s.Resume, Why: s.Why}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFAILED-AT\tTYPE\tKEY\tREPLAYS\tSTATE\tDO\tWHY")
	for _, s := range steps {
		l := s.Letter
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", l.ID, l.FailedAt.UTC().Format(time.RFC3339), dash(l.Type),
			dash(oneLine(string(l.Record.Key), 40)), l.Replays, l.State, dash(string(s.Do)), oneLine(s.Why, 100))
	}
	return tw.Flush()
}

// bar is a progress bar of 30 cells.
func bar(done, total int) string {
	n := 30 * done / total
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 30-n) + "]"
}

// confirm asks question on a terminal and returns nil on a yes. Without
// a terminal to ask on, it refuses: --yes confirms beforehand. words are
// the action's (done, to do).
func confirm(ctx context.Context, std *stdio, question string, words [2]string) error {
	if !std.inTerminal || !std.errTerminal {
		return usagef("not on a terminal, nothing to confirm with: pass --yes to %s (--dry-run shows what would be done)", words[1])
	}
	fmt.Fprintf(std.err, "%s [y/N] ", question)
	// Read aside, so that Ctrl-C (which ends ctx) ends the wait too.
	answers := make(chan string, 1)
	go func() {
		answer, _ := bufio.NewReader(std.in).ReadString('\n')
		answers <- answer
	}()
	var answer string
	select {
	case answer = <-answers:
	case <-ctx.Done():
		fmt.Fprintln(std.err)
		return fmt.Errorf("not confirmed: nothing was %s: %w", words[0], context.Cause(ctx))
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing was " + words[0])
}
