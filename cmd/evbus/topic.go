package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/wire"
)

func init() {
	register(command{
		name:    "topic create",
		summary: "create a topic, and the dead-letter, replay and retry topics of its groups",
		usage: `
usage: evbus topic create <name> [--partitions N] [--replication-factor N] [--groups g1,g2] [--retry-topics N] [--config k=v]...

Creates the topic and, for each consumer group of --groups, its
dead-letter topic "<name>.<group>.dlt" and replay topic
"<name>.<group>.replay" (as bus.CreateTopics does: same partitions,
replication and configs, max.message.bytes 64 KiB larger), and with
--retry-topics N the retry topics "<name>.<group>.retry-1" to N that a
handler with consumer.RetryTopics uses (sized like the dead-letter topic).
Topics that exist already are left as they are, and said so.

example:
  evbus topic create orders --partitions 6 --groups billing,notifications
  evbus topic create payments --groups billing --retry-topics 2 --config retention.ms=1209600000`,
		conn:  true,
		only:  kafkaOnly,
		setup: setupTopicCreate,
	})
	register(command{
		name:    "topic list",
		summary: "list topics, with their partitions and what evbus uses them for",
		usage: `
usage: evbus topic list

Prints every topic (internal ones left out) with its partition count, its
replication factor, and what it is to evbus: a dead-letter, replay or
retry topic of a group, or a topic.

example:
  evbus topic list`,
		conn:  true,
		only:  kafkaOnly,
		setup: setupTopicList,
	})
	register(command{
		name:    "topic describe",
		summary: "a topic's partitions, replicas, configs and derived topics",
		usage: `
usage: evbus topic describe <name>

Prints the topic's partitions with their leader, replicas and in-sync
replicas, its replication factor, the configs that matter to evbus (and
where each comes from), and its dead-letter, replay and retry topics that
exist, by group.

example:
  evbus topic describe orders`,
		conn:  true,
		only:  kafkaOnly,
		setup: setupTopicDescribe,
	})
}

// configFlag collects --config key=value pairs.
type configFlag map[string]string

func (c configFlag) String() string { return "" }

func (c configFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, e.g. retention.ms=604800000")
	}
	c[k] = val
	return nil
}

func setupTopicCreate(fs *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	partitions := fs.Int("partitions", -1, "partition count (-1: the broker's default)")
	rf := fs.Int("replication-factor", -1, "replication factor (-1: the broker's default)")
	groups := fs.String("groups", "", "consumer groups, comma-separated, whose dead-letter and replay topics are created too")
	retries := fs.Int("retry-topics", 0, "with --groups: how many retry topics each group gets (consumer.RetryTopics' stages)")
	configs := configFlag{}
	fs.Var(configs, "config", "a topic config as key=value (repeatable), for every topic created")
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 1, 1, "topic name"); err != nil {
			return err
		}
		name := std.args[0]
		var gs []string
		for _, g := range strings.Split(*groups, ",") {
			if g = strings.TrimSpace(g); g != "" {
				gs = append(gs, g)
			}
		}
		switch {
		case *partitions == 0 || *partitions < -1:
			return usagef("--partitions %d: want 1 or more, or -1 for the broker's default", *partitions)
		case *rf == 0 || *rf < -1 || *rf > 32767:
			return usagef("--replication-factor %d: want 1 or more, or -1 for the broker's default", *rf)
		case *retries < 0 || *retries > consumer.MaxRetryTopics:
			return usagef("--retry-topics %d: want 0 to %d", *retries, consumer.MaxRetryTopics)
		case *retries > 0 && len(gs) == 0:
			return usagef("--retry-topics needs --groups: retry topics belong to a group")
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		spec := bus.TopicSpec{Name: name, Partitions: int32(*partitions), ReplicationFactor: int16(*rf), Configs: configs, DeadLetterGroups: gs}
		names := []string{name}
		for _, g := range gs {
			names = append(names, wire.DeadLetterTopic(name, g), wire.ReplayTopic(name, g))
		}
		var retrySpecs []bus.TopicSpec
		for _, g := range gs {
			for n := 1; n <= *retries; n++ {
				retrySpecs = append(retrySpecs, bus.TopicSpec{Name: wire.RetryTopic(name, g, n), Partitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor})
				names = append(names, wire.RetryTopic(name, g, n))
			}
		}
		opCtx, cancel := context.WithTimeout(ctx, cn.timeout)
		defer cancel()
		before, err := adm.ListTopics(opCtx, names...)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		if err := bus.CreateTopics(opCtx, adm, spec); err != nil {
			return err
		}
		if len(retrySpecs) > 0 {
			// A retry topic carries what its dead-letter topic does: the
			// record and evbus's headers; give it the same limit.
			limits, err := bus.TopicMaxBytes(opCtx, adm, wire.DeadLetterTopic(name, gs[0]))
			if err != nil {
				return err
			}
			for i := range retrySpecs {
				retrySpecs[i].Configs = make(map[string]string, len(configs)+1)
				for k, v := range configs {
					retrySpecs[i].Configs[k] = v
				}
				if limit, ok := limits[wire.DeadLetterTopic(name, gs[0])]; ok {
					retrySpecs[i].Configs["max.message.bytes"] = strconv.Itoa(limit)
				}
			}
			if err := bus.CreateTopics(opCtx, adm, retrySpecs...); err != nil {
				return err
			}
		}
		for _, n := range names {
			if d, ok := before[n]; ok && d.Err == nil {
				fmt.Fprintf(std.out, "exists   %s (%d partitions), left as it is\n", n, len(d.Partitions))
			} else {
				fmt.Fprintf(std.out, "created  %s\n", n)
			}
		}
		return nil
	}
}

// derivedKind splits a dead-letter, replay or retry topic's name into
// "<topic>.<group>" and what it is; ok is false for other names.
func derivedKind(name string) (base, kind string, ok bool) {
	switch {
	case strings.HasSuffix(name, ".dlt"):
		return strings.TrimSuffix(name, ".dlt"), "dead letters", true
	case strings.HasSuffix(name, ".replay"):
		return strings.TrimSuffix(name, ".replay"), "replays", true
	}
	i := strings.LastIndex(name, ".retry-")
	if i < 0 {
		return "", "", false
	}
	if n, err := strconv.Atoi(name[i+len(".retry-"):]); err != nil || n < 1 {
		return "", "", false
	}
	return name[:i], "retry stage " + name[i+len(".retry-"):], true
}

// derived tells what a topic is to evbus from its name: the dead-letter,
// replay or retry topic of a group for a topic, or none (ok false). Topic
// and group names may hold dots: see wire.SplitTopicGroup.
func derived(name string, exists func(string) bool) (topic, group, kind string, ok bool) {
	base, kind, ok := derivedKind(name)
	if !ok {
		return "", "", "", false
	}
	topic, group, ok = wire.SplitTopicGroup(base, exists)
	if !ok {
		return "", "", "", false
	}
	return topic, group, kind, true
}

// derivedOf tells whether name is a dead-letter, replay or retry topic of
// topic, and of which group: derived's reading of it, among the topics
// that exist (exists), so that orders.v2's topics are not orders'.
func derivedOf(name, topic string, exists func(string) bool) (group, kind string, ok bool) {
	of, group, kind, ok := derived(name, exists)
	return group, kind, ok && of == topic
}

// replication is a topic's replication factor: its first partition's
// replica count.
func replication(d kadm.TopicDetail) int {
	for _, p := range d.Partitions {
		return len(p.Replicas)
	}
	return 0
}

func setupTopicList(_ *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 0, 0, ""); err != nil {
			return err
		}
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		opCtx, cancel := context.WithTimeout(ctx, cn.timeout)
		defer cancel()
		all, err := kadm.NewClient(cl).ListTopics(opCtx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		tw := tabwriter.NewWriter(std.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICATION\tEVBUS")
		for _, d := range all.Sorted() {
			what := "-"
			if topic, group, kind, ok := derived(d.Topic, all.Has); ok {
				what = fmt.Sprintf("%s of %s for group %s", kind, topic, group)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", d.Topic, len(d.Partitions), replication(d), what)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(std.out, "%d topics\n", len(all))
		return nil
	}
}

// describedConfigs are the topic configs describe prints: those that
// decide what a topic keeps, accepts and survives.
var describedConfigs = []string{"cleanup.policy", "retention.ms", "retention.bytes", "max.message.bytes", "min.insync.replicas", "compression.type", "message.timestamp.type"}

func setupTopicDescribe(_ *flag.FlagSet, cn *conn) func(context.Context, *stdio) error {
	return func(ctx context.Context, std *stdio) error {
		if err := wantArgs(std, 1, 1, "topic name"); err != nil {
			return err
		}
		name := std.args[0]
		cl, err := cn.kafka(ctx)
		if err != nil {
			return err
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		opCtx, cancel := context.WithTimeout(ctx, cn.timeout)
		defer cancel()
		all, err := adm.ListTopics(opCtx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		d, ok := all[name]
		if !ok || d.Err != nil {
			return fmt.Errorf("topic %q does not exist on %s: check the name ('evbus topic list' lists them) or --brokers", name, cn.brokers)
		}
		out := std.out
		fmt.Fprintf(out, "topic        %s\npartitions   %d\nreplication  %d\n", name, len(d.Partitions), replication(d))
		if topic, group, kind, ok := derived(name, all.Has); ok {
			fmt.Fprintf(out, "evbus        %s of %s for group %s\n", kind, topic, group)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nPARTITION\tLEADER\tREPLICAS\tIN-SYNC")
		for _, p := range d.Partitions.Sorted() {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", p.Partition, p.Leader, ints(p.Replicas), ints(p.ISR))
		}
		tw.Flush()
		rcs, err := adm.DescribeTopicConfigs(opCtx, name)
		if err != nil {
			return fmt.Errorf("topic configs of %s: %w", name, err)
		}
		rc, err := rcs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			return fmt.Errorf("topic configs of %s: %w", name, err)
		}
		fmt.Fprintln(out, "\nconfigs:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, key := range describedConfigs {
			i := slices.IndexFunc(rc.Configs, func(c kadm.Config) bool { return c.Key == key })
			if i < 0 || rc.Configs[i].Value == nil {
				continue
			}
			c := rc.Configs[i]
			source := "set on the topic"
			if c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				source = "the broker's default"
			}
			fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", c.Key, *c.Value, source)
		}
		tw.Flush()
		fmt.Fprintln(out, "\nderived topics:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		found := 0
		for _, t := range all.Sorted() {
			if group, kind, ok := derivedOf(t.Topic, name, all.Has); ok {
				fmt.Fprintf(tw, "  %s\t%s of group %s\t%d partitions\n", t.Topic, kind, group, len(t.Partitions))
				found++
			}
		}
		tw.Flush()
		if found == 0 {
			fmt.Fprintln(out, "  none: create them with evbus topic create "+name+" --groups <group>")
		}
		return nil
	}
}

func ints(ns []int32) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(int(n))
	}
	return strings.Join(s, ",")
}
