package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/evbus/evbus/wire"
)

func init() {
	register(command{
		name:    "dlt replay",
		summary: "send dead-lettered records back to the group that failed them, only",
		usage: `
usage: evbus dlt replay --group G [--topic T] [--since D] [--type ce_type] [--error-kind K] [--dry-run] [--rate N] [--yes]

Sends the selected dead-letter records of group G back to G, and to no
other group. How: every evbus consumer also reads the replay topic
"<topic>.<group>.replay" of each topic it handles, as records of <topic>
(see the consumer package's doc). This command copies each selected record
there, oldest first: same key and value bytes, the original headers, and so
the original ce_id (a group that already handled the event skips it), plus
dlt-replay-count (one more than the record's), dlt-replayed-at and
dlt-replay-of (the dead-letter record it came from). A record that fails
again is dead-lettered again with these headers, so a record already
replayed --max-replays times is refused, and a dead-letter record whose
replay is in the replay topic is skipped, unless --force. A missing
replay topic is created with its topic's partition count; the group's
consumers read it from their next metadata refresh (create replay topics
with the others, as Consumer.Topics lists them, for groups that start new
partitions at their end). The dead-letter records stay where they are.
A group without a dead-letter topic is an error. Before sending, the
command asks for confirmation on a terminal; --yes skips the question,
and without a terminal (a script, CI) --yes is required: the command
refuses otherwise, sending nothing. On a terminal a progress bar is shown
on stderr; a summary ends the run.

example:
  evbus dlt replay --group billing --topic orders --dry-run
  evbus dlt replay --group billing --topic orders --error-kind retries-exhausted --rate 50 --yes`,
		conn:  true,
		env:   map[string]string{"compression": "EVBUS_COMPRESSION"},
		only:  kafkaOnly,
		setup: setupReplay,
	})
}

func setupReplay(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	var f dltFilter
	f.define(fs)
	dryRun := fs.Bool("dry-run", false, "print what would be replayed; send and create nothing")
	rate := fs.Float64("rate", 0, "send at most this many records a second (0: no limit)")
	maxReplays := fs.Int("max-replays", 3, "refuse records already replayed this many times")
	force := fs.Bool("force", false, "replay records past --max-replays too")
	cn.compressionFlag(fs)
	yes := fs.Bool("yes", false, "replay without asking; without a terminal to ask on, --yes is required")
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		if f.group == "" {
			return usagef("--group is required: replays go to one group, the one that failed the records")
		}
		if err := f.validate(); err != nil {
			return err
		}
		if *rate < 0 || *maxReplays < 1 {
			return usagef("--rate wants 0 or more, --max-replays 1 or more")
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		ds, _, err := deadLetters(ctx, cn, cl, &f, std, func(msg string) { fmt.Fprintln(std.err, "evbus dlt replay: skipped:", msg) })
		if err != nil {
			return err
		}
		var topics []string
		for _, d := range ds {
			if t := wire.ReplayTopic(d.OriginalTopic, f.group); !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
		adm := kadm.NewClient(cl)
		done, err := replays(ctx, cn, adm, ds)
		if err != nil {
			return err
		}
		var send []wire.DeadLetter
		refused, again := 0, 0
		for _, d := range ds {
			n, err := wire.ReplayCount(d.Record)
			switch {
			case *force:
			case done[wire.DeadLetterID(d.Record)] > 0:
				again++
				continue
			case err != nil || n >= *maxReplays:
				refused++
				continue
			}
			send = append(send, d)
		}
		refusal := ""
		if again > 0 {
			refusal += fmt.Sprintf("; %d skipped: replayed before (their replays are in the replay topic), --force replays them again", again)
		}
		if refused > 0 {
			refusal += fmt.Sprintf("; %d refused: replayed %d times already (or a bad %s header), --force replays them", refused, *maxReplays, wire.HeaderReplayCount)
		}
		if *dryRun {
			states, err := ledgerStates(ctx, cl, send, func(msg string) { fmt.Fprintln(std.err, "evbus dlt replay: ledger:", msg) })
			if err != nil {
				return err
			}
			if err := printDeadLetters(std, send, done, states, false); err != nil {
				return err
			}
			fmt.Fprintf(std.out, "dry run: would replay %d of %d selected records to group %s through %s%s\n",
				len(send), len(ds), f.group, list(topics), refusal)
			return nil
		}
		if len(send) > 0 && !*yes {
			if err := confirm(ctx, std, fmt.Sprintf("replay %d of %d selected records to group %s through %s%s?", len(send), len(ds), f.group, list(topics), refusal)); err != nil {
				return err
			}
		}
		if err := ensureReplayTopics(ctx, cn, adm, send, f.group, std); err != nil {
			return err
		}
		start := time.Now()
		for i, d := range send {
			if *rate > 0 {
				due := start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
				select {
				case <-ctx.Done():
				case <-time.After(time.Until(due)):
				}
			}
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: replayed %d of %d records to group %s", i, len(send), f.group)
			}
			rec, err := wire.ReplayRecord(d, time.Now())
			if err == nil {
				err = cl.ProduceSync(ctx, rec).FirstErr()
			}
			if err != nil {
				return fmt.Errorf("replaying %s/%d@%d: %w (replayed %d of %d before it)", d.Record.Topic, d.Record.Partition, d.Record.Offset, err, i, len(send))
			}
			if std.errTerminal {
				fmt.Fprintf(std.err, "\rreplaying %d/%d %s", i+1, len(send), bar(i+1, len(send)))
			}
		}
		if std.errTerminal && len(send) > 0 {
			fmt.Fprintln(std.err)
		}
		fmt.Fprintf(std.out, "replayed %d of %d selected records to group %s through %s%s\n", len(send), len(ds), f.group, list(topics), refusal)
		return nil
	}
}

func list(topics []string) string {
	if len(topics) == 0 {
		return "no replay topic"
	}
	return strings.Join(topics, ", ")
}

// bar is a progress bar of 30 cells.
func bar(done, total int) string {
	n := 30 * done / total
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 30-n) + "]"
}

// confirm asks question on a terminal and returns nil on a yes. Without
// a terminal to ask on, it refuses: --yes confirms beforehand.
func confirm(ctx context.Context, std *stdio, question string) error {
	if !std.inTerminal || !std.errTerminal {
		return usagef("not on a terminal, nothing to confirm the replay with: pass --yes to replay (--dry-run shows what would be sent)")
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
		return fmt.Errorf("not confirmed: nothing was replayed: %w", context.Cause(ctx))
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing was replayed")
}

// ensureReplayTopics creates the replay topics the records go to that do
// not exist yet, with the partition count of their topic.
func ensureReplayTopics(ctx context.Context, cn *conn, adm *kadm.Client, ds []wire.DeadLetter, group string, std *stdio) error {
	var topics []string // the records' original topics, once each
	for _, d := range ds {
		if !slices.Contains(topics, d.OriginalTopic) {
			topics = append(topics, d.OriginalTopic)
		}
	}
	names := slices.Clone(topics)
	for _, topic := range topics {
		names = append(names, wire.ReplayTopic(topic, group))
	}
	listCtx, cancel := context.WithTimeout(ctx, cn.timeout)
	defer cancel()
	parts, err := topicPartitions(listCtx, adm, names...)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		replay := wire.ReplayTopic(topic, group)
		if _, ok := parts[replay]; ok {
			continue
		}
		n := int32(-1) // the broker's default when the topic itself is gone
		if p, ok := parts[topic]; ok {
			n = int32(p)
		}
		resp, err := adm.CreateTopic(listCtx, n, -1, nil, replay)
		if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("create replay topic %s: %w (create it with %d partitions, or let the service create its topics)", replay, err, n)
		}
		fmt.Fprintf(std.err, "evbus dlt replay: created replay topic %s; the group's consumers pick it up within their metadata refresh\n", replay)
	}
	return nil
}
