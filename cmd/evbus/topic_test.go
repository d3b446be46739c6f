package main

import (
	"strings"
	"testing"

	"github.com/evbus/evbus/bus"
	"github.com/evbus/evbus/evbustest"
)

// TestTopicCommands: topic create makes the topic and its groups'
// dead-letter, replay and retry topics (sized as bus.CreateTopics sizes
// them), says which existed already, and the topic takes events at once;
// list and describe name what each topic is to evbus.
func TestTopicCommands(t *testing.T) {
	stack := evbustest.Start(t)
	_, adm := admin(t, stack)
	created := cli(t, stack, "", "topic", "create", "orders", "--partitions", "3", "--groups", "billing, notifications", "--retry-topics", "2", "--config", "retention.ms=86400000").ok(t, "topic create")
	want := []string{"orders", "orders.billing.dlt", "orders.billing.replay", "orders.notifications.dlt", "orders.notifications.replay",
		"orders.billing.retry-1", "orders.billing.retry-2", "orders.notifications.retry-1", "orders.notifications.retry-2"}
	for _, name := range want {
		if !strings.Contains(created.out, "created  "+name+"\n") {
			t.Errorf("topic create does not say it created %s:\n%s", name, created.out)
		}
	}
	parts, err := topicPartitions(t.Context(), adm, want...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range want {
		if parts[name] != 3 {
			t.Errorf("%s has %d partitions, want 3", name, parts[name])
		}
	}
	limits, err := bus.TopicMaxBytes(t.Context(), adm, "orders", "orders.billing.dlt", "orders.billing.retry-2")
	if err != nil {
		t.Fatal(err)
	}
	if limits["orders.billing.dlt"] != limits["orders"]+bus.DeadLetterHeadroom || limits["orders.billing.retry-2"] != limits["orders.billing.dlt"] {
		t.Errorf("max.message.bytes: %v, want the dead-letter and retry topics %d above the topic", limits, bus.DeadLetterHeadroom)
	}
	publish(t, stack, &Order{"o-1", 10}) // the topic takes events at once

	again := cli(t, stack, "", "topic", "create", "orders", "--groups", "audit,com.acme.ship").ok(t, "topic create again")
	if !strings.Contains(again.out, "exists   orders (3 partitions), left as it is") || !strings.Contains(again.out, "created  orders.audit.dlt") {
		t.Errorf("second topic create:\n%s", again.out)
	}

	list := cli(t, stack, "", "topic", "list").ok(t, "topic list").out
	for _, line := range []string{"orders.billing.dlt  3  1  dead letters of orders for group billing", "orders.billing.retry-2  3  1  retry stage 2 of orders for group billing", "13 topics", "orders.com.acme.ship.replay 3 1 replays of orders for group com.acme.ship"} {
		if !strings.Contains(strings.Join(strings.Fields(list), " "), strings.Join(strings.Fields(line), " ")) {
			t.Errorf("topic list lacks %q:\n%s", line, list)
		}
	}

	desc := cli(t, stack, "", "topic", "describe", "orders").ok(t, "topic describe").out
	flat := strings.Join(strings.Fields(desc), " ")
	for _, w := range []string{"partitions 3", "replication 1", "PARTITION LEADER REPLICAS IN-SYNC 0 0 0 0 1 0 0 0 2 0 0 0",
		"retention.ms 86400000 (set on the topic)", "cleanup.policy delete (the broker's default)",
		"orders.audit.dlt dead letters of group audit 3 partitions", "orders.com.acme.ship.dlt dead letters of group com.acme.ship 3 partitions", "orders.notifications.retry-1 retry stage 1 of group notifications"} {
		if !strings.Contains(flat, w) {
			t.Errorf("topic describe lacks %q:\n%s", w, desc)
		}
	}
	if d := cli(t, stack, "", "topic", "describe", "orders.billing.replay").ok(t, "describe a replay topic").out; !strings.Contains(d, "replays of orders for group billing") {
		t.Errorf("describe of a replay topic:\n%s", d)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"topic", "describe", "nope"}, 1, `topic "nope" does not exist`},
		{[]string{"topic", "create"}, 2, "missing topic name"},
		{[]string{"topic", "create", "x", "--retry-topics", "1"}, 2, "--retry-topics needs --groups"},
		{[]string{"topic", "create", "x", "--partitions", "0"}, 2, "--partitions 0"},
		{[]string{"topic", "create", "x", "--config", "retention"}, 2, "want key=value"},
		{[]string{"topic", "create", "bad name"}, 1, "invalid topic name \"bad name\""},
	} {
		r := cli(t, stack, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.want) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("evbus %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), r.code, r.err, tc.code, tc.want)
		}
	}
}
